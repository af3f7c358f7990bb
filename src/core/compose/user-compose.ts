// A user's own compose file, accepted wherever mlship reads a stack
// (`mlship compose up -f docker-compose.yml`): run as written, watched until
// healthy. Nothing is generated; what mlship cannot reason about is left alone.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'yaml';
import type { Project } from '../../config/schema.js';
import type { StackWarning } from '../../config/stack-model.js';
import type { ComposeService } from '../../generators/compose-stack.js';
import { loadComposeStack } from '../stack/load-stack.js';
import type { ComposeGenerateResult } from './generate.js';

const COMPOSE_ONLY_KEYS = [
  'build',
  'ports',
  'environment',
  'volumes',
  'command',
  'expose',
  'restart',
  'networks',
];

/** Whether a stack file is a compose file rather than an mlship.yaml. */
export async function isComposeFile(file: string): Promise<boolean> {
  if (/(^|[-.])compose\.ya?ml$|^docker-compose/.test(path.basename(file))) return true;
  try {
    const doc = parse(await readFile(file, 'utf8')) as {
      services?: Record<string, Record<string, unknown> | null>;
    } | null;
    return Object.values(doc?.services ?? {}).some((s) => s && COMPOSE_ONLY_KEYS.some((k) => k in s));
  } catch {
    return false; // let the mlship loader report the problem with its line
  }
}

export async function userComposeStack(
  file: string,
  name?: string,
): Promise<ComposeGenerateResult & { warnings: StackWarning[] }> {
  const stack = await loadComposeStack(file, name);
  const services: Record<string, ComposeService> = {};
  for (const s of stack.services) {
    services[s.name] = {
      image: s.image ?? `${stack.name}-${s.name}`,
      ...(s.profiles.length ? { profiles: s.profiles } : {}),
      // Only the start period matters here: it sets how long `up` waits.
      healthcheck: {
        test: s.healthcheck?.test ?? [],
        interval: '',
        timeout: '',
        retries: 0,
        start_period: `${Math.round(s.healthcheck?.startPeriodSeconds ?? 0)}s`,
      },
      restart: s.restart === 'always' ? 'unless-stopped' : 'on-failure',
      labels: s.labels,
      // What it publishes on the host, in the short syntax, for the pre-flight of `up`.
      ports: s.ports
        .filter((p) => p.published !== undefined && p.protocol === 'tcp')
        .map(
          (p) =>
            `${p.hostIp ? `${p.hostIp.includes(':') ? `[${p.hostIp}]` : p.hostIp}:` : ''}${p.published}:${p.container}`,
        ),
    };
  }
  const composeFile = path.resolve(file);
  const project = { version: 1, name: stack.name, services: {} } as unknown as Project;
  return {
    composeFile,
    outDir: path.dirname(composeFile),
    written: [],
    envFile: { path: path.join(path.dirname(composeFile), '.env'), created: [], kept: [] },
    stack: { compose: { services }, files: [], envVariables: [], endpoints: [], profiles: [] },
    project,
    wrapped: {},
    warnings: stack.warnings,
  };
}
