import path from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { ServeResult } from '../../core/serve/serve.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';

export interface ServeFlags {
  build: boolean;
  image?: string;
  port?: number;
  env: string[];
  detach: boolean;
}

export function parseInteger(
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): (v: string) => number {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be an integer from ${min} to ${max}, not "${v}"`);
    }
    return n;
  };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export function renderServed(io: IoHost, r: ServeResult, detach: boolean): string {
  return [
    `${io.style('ok', 'ready')} in ${(r.readyMs / 1000).toFixed(1)} s: ${r.url}  (docs: ${r.url}/docs)`,
    `example:    ${JSON.stringify(r.example)}`,
    `prediction: ${JSON.stringify(r.prediction)}`,
    `try:        curl -s -X POST ${r.url}/predict -H 'content-type: application/json' -d '${JSON.stringify(r.example)}'`,
    detach
      ? `stop:       docker rm -f ${r.containerId.slice(0, 12)}`
      : 'Ctrl-C stops and removes the container.',
  ].join('\n');
}

/** Runs a wrapped service; shared by `mlship serve` and `mlship wrap --run`. */
export async function serveDir(ctx: CliContext, dir: string, flags: ServeFlags): Promise<void> {
  const { serve } = await import('../../core/serve/serve.js');
  const env: Record<string, string> = {};
  for (const pair of flags.env) {
    const eq = pair.indexOf('=');
    if (eq < 1) {
      const { UsageError } = await import('../../io/errors.js');
      throw new UsageError(`--env "${pair}" must be KEY=VALUE`);
    }
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  // Ctrl-C removes the container (a registered cleanup): its exit code is then ours, not news.
  let removedByUs = false;
  const running = await serve(
    {
      dir,
      build: flags.build,
      ...(flags.image ? { image: flags.image } : {}),
      ...(flags.port !== undefined ? { hostPort: flags.port } : {}),
      env,
    },
    {
      engine: await ctx.engine(),
      tasks: ctx.io.tasks,
      onCleanup: (name, fn) =>
        ctx.cleanup.add(name, () => {
          removedByUs = true;
          return fn();
        }),
    },
  );
  ctx.io.result({ ok: true, ...running.result }, renderServed(ctx.io, running.result, flags.detach));
  if (flags.detach) {
    running.release();
    return;
  }
  // Foreground: stay until the container stops; Ctrl-C removes it (registered cleanup).
  const { exitCode } = await running.handle.wait();
  running.release();
  await running.handle.remove();
  if (exitCode !== 0 && !removedByUs) ctx.io.warn(`the service exited with code ${exitCode}`);
}

export const registerServe: Register = (program: Command, holder) => {
  program
    .command('serve')
    .description(
      'step 2: run a wrapped service locally, wait until ready, send the example, print the prediction',
    )
    .argument('[dir]', 'directory written by `mlship wrap`', '.')
    .option('--build', 'rebuild the image first (otherwise only when it is missing)', false)
    .option('--image <ref>', 'image to run (default: the one mlship wrap named)')
    .option(
      '-p, --port <port>',
      'host port (default: the service port; 0 = any free port)',
      parseInteger('--port', 0, 65535),
    )
    .option('-e, --env <KEY=VALUE>', 'environment variable for the service (repeatable)', collect, [])
    .option('-d, --detach', 'leave the service running and return', false)
    .addHelpText(
      'after',
      examples([
        ['mlship serve iris-service', 'build if needed, run, send the example'],
        ['mlship serve iris-service --port 0 --detach', 'any free port, keep it running'],
        ['mlship serve svc -e WORKERS=1 -e BATCH_MAX_SIZE=64', 'override settings at run time'],
      ]),
    )
    .action(async (dir: string, flags: ServeFlags) => {
      const ctx = holder.get();
      await serveDir(ctx, path.resolve(ctx.cwd, dir), flags);
    });
};
