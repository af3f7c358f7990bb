// The official compose-spec JSON schema (from ../shared/corpus) compiled once, for the tests
// that check a generated compose file against it; undefined (with the skip reason, a failure
// on CI) when the corpus is missing.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv } from 'ajv';
import { CORPUS } from './corpus.js';
import { requires } from './requires.js';

export function composeValidator() {
  const schemaFile = path.join(CORPUS, 'schema', 'compose-spec.json');
  if (!requires('the compose-spec schema', existsSync(schemaFile), `${schemaFile}, from ../shared/corpus`))
    return undefined;
  const ajv = new Ajv({ allErrors: true, strict: false });
  // The spec names its meta-schema by an https URL ajv does not register; draft-07 is ajv's default.
  const { $schema: _meta, ...schema } = JSON.parse(readFileSync(schemaFile, 'utf8')) as Record<
    string,
    unknown
  >;
  return ajv.compile(schema);
}
