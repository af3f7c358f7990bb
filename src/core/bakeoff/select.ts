// Step 1 of a bakeoff: which candidates run (`--only`), that their inputs exist, and
// under `--frozen` that the lock covers them: every usage problem before any work.

import { access } from 'node:fs/promises';
import type { BakeoffConfig } from '../../config/bakeoff-schema.js';
import { UsageError } from '../../io/errors.js';
import { inputMounts } from './container-spec.js';
import { readLock } from './lock.js';
import type { BakeoffOptions, Selection } from './prepared.js';

async function checkInputs(
  config: BakeoffConfig,
  names: string[],
  configDir: string,
  file: string,
): Promise<void> {
  const missing: string[] = [];
  for (const name of names) {
    for (const m of inputMounts(config.candidates[name]!, configDir)) {
      try {
        await access(m.source!);
      } catch {
        missing.push(`candidates.${name}.inputs: ${m.source} does not exist`);
      }
    }
  }
  if (missing.length) {
    throw new UsageError(`${file}: ${missing.length} input${missing.length === 1 ? '' : 's'} not found`, {
      details: missing,
      hint: 'input paths are relative to the config file',
    });
  }
}

export async function selectCandidates(o: BakeoffOptions): Promise<Selection> {
  const all = Object.keys(o.config.candidates);
  const unknown = (o.only ?? []).filter((n) => !all.includes(n));
  if (unknown.length) {
    throw new UsageError(`unknown candidate${unknown.length === 1 ? '' : 's'}: ${unknown.join(', ')}`, {
      hint: `candidates in ${o.configFile}: ${all.join(', ')}`,
    });
  }
  const names = o.only?.length ? all.filter((n) => o.only!.includes(n)) : all;
  await checkInputs(o.config, names, o.configDir, o.configFile);
  if (!o.frozen) return { all, names };
  const lock = await readLock(o.lockFile);
  const missing = names.filter((n) => !lock.candidates[n]);
  if (missing.length) {
    throw new UsageError(`${o.lockFile} has no entry for ${missing.join(', ')}`, {
      hint: 'run without --frozen to record them (the lock only covers candidates whose image was built)',
    });
  }
  return { all, names, lock };
}
