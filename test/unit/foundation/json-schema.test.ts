import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { projectJsonSchema, projectJsonSchemaText } from '../../../src/config/json-schema.js';

describe('published JSON Schema', () => {
  it('schema/mlship.schema.json is current (regenerate: npm run build && npm run schema)', () => {
    expect(readFileSync('schema/mlship.schema.json', 'utf8')).toBe(projectJsonSchemaText());
  });

  it('accepts the valid fixture and rejects the broken one, like the runtime validation', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(projectJsonSchema());
    expect(validate(parse(readFileSync('fixtures/config/valid.yaml', 'utf8')))).toBe(true);
    expect(validate(parse(readFileSync('fixtures/config/broken.yaml', 'utf8')))).toBe(false);
    const paths = new Set((validate.errors ?? []).map((e) => e.instancePath));
    expect(paths).toContain('/services/detector/port');
    expect(paths).toContain('/aws/account_id');
  });
});
