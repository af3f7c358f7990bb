// The restore task run on this engine instead of ECS, its containers as the ECS agent runs
// them (fetch and restore side by side, their shared task volume a directory of this
// machine): the same images, commands and environment, the secrets
// resolved from the stack's secret, the AWS endpoint and credentials handed in. moto never
// runs a task, so the tests and the benchmark restore into a database container this way:
// the target reached the way the restore task reaches it.

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RegisterTaskDefinitionCommandInput } from '@aws-sdk/client-ecs';
import type { ContainerClient, ContainerSpec } from '../../adapters/docker/engine.js';
import type { RestoreOutcome, RestoreRunner } from './deps.js';
import { type RestoreTaskSpec, restoreTaskDefinition } from './restore-task.js';

export const LOCAL_RESTORE_LABEL = 'dev.mlship.data-restore';
const PART_LABEL = 'dev.mlship.data-container';
const DIR_LABEL = 'dev.mlship.data-dir';

export interface LocalRestoreOptions extends Omit<RestoreTaskSpec, 'roleArn' | 'logGroup'> {
  /** The network the target database is on (the restore container joins it). */
  network: string;
  /** The value of a task definition's `valueFrom` (the database secret's keys). */
  secretValue(valueFrom: string): Promise<string>;
  /** AWS_ENDPOINT_URL, credentials and region for the fetch container. */
  awsEnvironment: Record<string, string>;
}

export function localRestoreRunner(
  engine: Pick<ContainerClient, 'start' | 'listByLabel' | 'container'>,
  opts: LocalRestoreOptions,
): RestoreRunner {
  const definition = (): RegisterTaskDefinitionCommandInput =>
    restoreTaskDefinition({ ...opts, roleArn: 'local', logGroup: 'local' });
  async function specOf(
    name: 'fetch' | 'restore',
    dir: string,
    extra: Record<string, string>,
  ): Promise<ContainerSpec> {
    const c = definition().containerDefinitions!.find((x) => x.name === name)!;
    const env: Record<string, string> = { ...extra };
    for (const e of c.environment ?? []) env[e.name!] = e.value ?? '';
    for (const s of c.secrets ?? []) env[s.name!] = await opts.secretValue(s.valueFrom!);
    if (name === 'fetch') Object.assign(env, opts.awsEnvironment);
    return {
      image: c.image!,
      entrypoint: c.entryPoint!,
      cmd: c.command!,
      env,
      network: opts.network,
      // An emulator on this machine's loopback (moto) is reached as the host.
      extraHosts: ['host.docker.internal:host-gateway'],
      mounts: [{ type: 'bind', source: dir, target: c.mountPoints![0]!.containerPath! }],
      labels: { [LOCAL_RESTORE_LABEL]: opts.stack, [PART_LABEL]: name, [DIR_LABEL]: dir },
    };
  }
  async function finish(id: string): Promise<{ exitCode: number; lines: string[] }> {
    const handle = engine.container(id);
    const { exitCode } = await handle.wait();
    const logs = (await handle.logs(100_000)).split('\n').filter((l) => l.length);
    await handle.remove();
    return { exitCode, lines: logs };
  }
  const partsOf = async (dir: string) =>
    (await engine.listByLabel(LOCAL_RESTORE_LABEL, opts.stack)).filter((c) => c.labels[DIR_LABEL] === dir);
  return {
    where: `a local container on network ${opts.network}`,
    async inFlight() {
      const list = await engine.listByLabel(LOCAL_RESTORE_LABEL, opts.stack);
      return list.filter((c) => c.labels[PART_LABEL] === 'restore').map((c) => c.id);
    },
    // Both at once, as ECS starts them (the restore depends on the fetch's START).
    async start(run) {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'mlship-restore-'));
      await engine.start(await specOf('fetch', dir, { MLSHIP_DUMP_URL: run.dumpUrl }));
      const restore = await engine.start(
        await specOf('restore', dir, {
          MLSHIP_REPLACE: run.replace ? '1' : '0',
          MLSHIP_ROW_HASH: run.rowHash,
        }),
      );
      return restore.id;
    },
    // Until the restore ends; then the fetch is stopped, as ECS stops a task whose essential
    // container exited.
    async wait(id): Promise<RestoreOutcome> {
      const dir = (await engine.listByLabel(LOCAL_RESTORE_LABEL, opts.stack)).find((c) => c.id === id)
        ?.labels[DIR_LABEL];
      const restored = await finish(id);
      let lines: string[] = [];
      for (const c of dir ? await partsOf(dir) : []) {
        if (c.labels[PART_LABEL] !== 'fetch') continue;
        await engine.container(c.id).kill();
        lines = (await finish(c.id)).lines;
      }
      if (dir) await rm(dir, { recursive: true, force: true });
      return { exitCode: restored.exitCode, lines: [...lines, ...restored.lines] };
    },
  };
}
