// The JSON Schema published for editors (schema/mlship.schema.json), generated
// from the zod schema so the two cannot drift (a test checks the committed file).

import { z } from 'zod';
import { ProjectSchema, SCHEMA_ID } from './schema.js';

export function projectJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ProjectSchema, { io: 'input', target: 'draft-2020-12' }) as Record<
    string,
    unknown
  >;
  return { $id: SCHEMA_ID, title: 'mlship.yaml', ...schema };
}

export function projectJsonSchemaText(): string {
  return `${JSON.stringify(projectJsonSchema(), null, 2)}\n`;
}
