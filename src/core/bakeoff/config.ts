// Loads the bakeoff configuration: bakeoff.yaml, or the `bakeoff:` section of
// mlship.yaml (same schema; problems are located in whichever file it came from).

import path from 'node:path';
import { type BakeoffConfig, BakeoffSchema } from '../../config/bakeoff-schema.js';
import { parseYamlConfig, readConfigText } from '../../config/load.js';
import { ProjectSchema } from '../../config/schema.js';
import { UsageError } from '../../io/errors.js';
import { exists } from '../../io/files.js';

export async function findBakeoffConfig(cwd: string, given: string | undefined): Promise<string> {
  if (given) return given;
  for (const candidate of ['bakeoff.yaml', 'bakeoff.yml', 'mlship.yaml']) {
    if (await exists(path.join(cwd, candidate))) return candidate;
  }
  throw new UsageError('no bakeoff.yaml here (and no mlship.yaml with a bakeoff: section)', {
    hint: 'pass the config file, e.g. `mlship bakeoff path/to/bakeoff.yaml`; docs/bakeoff.md has an example',
  });
}

export async function loadBakeoffConfig(file: string): Promise<BakeoffConfig> {
  const text = await readConfigText(file);
  if (path.basename(file) === 'mlship.yaml') {
    const project = parseYamlConfig(file, text, ProjectSchema);
    if (!project.bakeoff) {
      throw new UsageError(`${file} has no bakeoff: section`, {
        hint: 'add one (same fields as bakeoff.yaml), or pass a bakeoff.yaml',
      });
    }
    return project.bakeoff;
  }
  return parseYamlConfig(file, text, BakeoffSchema);
}
