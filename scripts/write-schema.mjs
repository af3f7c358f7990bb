#!/usr/bin/env node
// Regenerates schema/mlship.schema.json from the zod schema (run `npm run build` first).
// A unit test fails when the committed file is out of date.
import { writeFileSync } from 'node:fs';
import { projectJsonSchemaText } from '../dist/config/json-schema.js';

const out = new URL('../schema/mlship.schema.json', import.meta.url);
writeFileSync(out, projectJsonSchemaText());
process.stderr.write(`wrote ${out.pathname}\n`);
