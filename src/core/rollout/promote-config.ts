// A promoted candidate becomes the stable service in mlship.yaml too, so that the next
// `compose up` or `deploy ecs` keeps it instead of bringing the old version back: the
// service's `path` (or `image`) and the candidate's environment overrides, edited in the
// YAML document (comments and layout kept), then validated before the file is replaced.

import { readFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { Rollout } from '../../config/rollout-schema.js';
import { ProjectSchema } from '../../config/schema.js';
import { OperationFailedError } from '../../io/errors.js';
import { writeFileAtomic } from '../../io/files.js';

/** What changed, as `services.<name>.<field>: value` lines (empty when nothing had to). */
export async function promoteInConfig(configFile: string, rollout: Rollout): Promise<string[]> {
  const text = await readFile(configFile, 'utf8');
  const doc = parseDocument(text);
  const at = ['services', rollout.service];
  const changed: string[] = [];
  const set = (field: string, value: unknown) => {
    if (doc.getIn([...at, field]) === value) return;
    doc.setIn([...at, field], value);
    changed.push(
      `services.${rollout.service}.${field}: ${typeof value === 'string' ? value : JSON.stringify(value)}`,
    );
  };
  const c = rollout.candidate;
  if (c.path) {
    set('path', c.path);
    if (doc.hasIn([...at, 'image'])) {
      doc.deleteIn([...at, 'image']);
      changed.push(`services.${rollout.service}.image: removed (built from path now)`);
    }
  } else if (c.image) set('image', c.image);
  for (const [k, v] of Object.entries(c.env)) {
    if (doc.getIn([...at, 'env', k]) === v) continue;
    doc.setIn([...at, 'env', k], v);
    changed.push(`services.${rollout.service}.env.${k}: ${v}`);
  }
  if (!changed.length) return [];
  const next = doc.toString();
  const parsed = ProjectSchema.safeParse(parseDocument(next).toJS());
  if (!parsed.success) {
    throw new OperationFailedError(
      'PROMOTE_CONFIG_INVALID',
      `${configFile} would not be valid after the promotion`,
      {
        details: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
        hint: `set services.${rollout.service} by hand to the candidate's ${c.path ? `path ${c.path}` : `image ${c.image}`}`,
      },
    );
  }
  await writeFileAtomic(configFile, next);
  return changed;
}
