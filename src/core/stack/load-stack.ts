// Reads a user's compose file into the stack model (`mlship compose import`,
// and any command that takes `--file compose.yaml`).

import { readFile } from 'node:fs/promises';
import type { Stack } from '../../config/stack-model.js';
import { UsageError } from '../../io/errors.js';
import { importCompose } from './compose-import.js';

export async function loadComposeStack(file: string, stackName?: string): Promise<Stack> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'ENOENT' ? `compose file ${file} not found` : `cannot read ${file}: ${(e as Error).message}`,
      {
        hint: 'pass the path of an existing compose file (compose.yaml, docker-compose.yml)',
      },
    );
  }
  return importCompose(file, text, stackName);
}
