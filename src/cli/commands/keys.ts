// `mlship keys create|list|revoke`: the API keys of the stack's proxy (proxy.auth: api_key).
// A created key is printed once (stdout, or `key` with --json); list shows ids, names and
// prefixes only. After a change, the running local proxy reloads.

import path from 'node:path';
import type { Command } from 'commander';
import { realClock } from '../../io/clock.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';

interface KeysFlags {
  file: string;
  out?: string;
}

async function stack(ctx: CliContext, flags: KeysFlags) {
  const [{ loadProject }, { keysFile }, { UsageError }] = await Promise.all([
    import('../../config/load.js'),
    import('../../core/keys/keys.js'),
    import('../../io/errors.js'),
  ]);
  const configFile = path.resolve(ctx.cwd, flags.file);
  const project = await loadProject(configFile);
  if (project.proxy?.auth !== 'api_key') {
    throw new UsageError(`${flags.file}: the proxy does not ask for API keys`, {
      hint: 'set proxy.auth: api_key in mlship.yaml, then `mlship compose up`',
    });
  }
  const dir = path.resolve(flags.out ?? path.join(path.dirname(configFile), 'deploy', 'compose'));
  return { project, file: keysFile(dir) };
}

/** The pids of the NGINX workers serving (a worker of the old configuration is "shutting down"). */
const NGINX_WORKERS = `for p in /proc/[0-9]*; do c=$(tr '\\0' ' ' < "$p/cmdline" 2>/dev/null); case "$c" in "nginx: worker process is shutting down"*) ;; "nginx: worker process"*) echo "\${p#/proc/}" ;; esac; done`;

/** SIGHUP to the running proxy, when the stack runs; what was reloaded. */
async function reload(ctx: CliContext, project: string, dir: string): Promise<string[]> {
  const [{ detectCompose, composeRunner }, { exec }, { reloadProxy }] = await Promise.all([
    import('../../adapters/compose.js'),
    import('../../adapters/exec.js'),
    import('../../core/keys/keys.js'),
  ]);
  const cli = await detectCompose(exec);
  if (!cli) return [];
  const engine = await ctx.engine();
  const run = composeRunner(exec);
  const composeProject = { cli, name: project, file: path.join(dir, 'compose.yaml'), dir };
  return reloadProxy(
    {
      listByLabel: (label, value) => engine.listByLabel(label, value),
      hangUp: (service) => run(composeProject, ['kill', '-s', 'SIGHUP', service], { timeoutMs: 30_000 }),
      workers: async (service) => {
        const r = await run(composeProject, ['exec', '-T', service, 'sh', '-c', NGINX_WORKERS], {
          timeoutMs: 30_000,
        });
        return r.exitCode === 0 ? new Set(r.stdout.split('\n').filter((l) => /^\d+$/.test(l))) : undefined;
      },
      clock: realClock,
    },
    project,
  );
}

function withFlags(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'project config', 'mlship.yaml')
    .option('-o, --out <dir>', 'where the stack files are (default: deploy/compose beside mlship.yaml)');
}

export const registerKeys: Register = (program: Command, holder) => {
  const keys = program
    .command('keys')
    .description(
      "API keys of the stack's proxy (proxy.auth: api_key): kept as a secret, never in mlship.yaml",
    );
  withFlags(keys.command('create'))
    .description('create a key (printed once) and reload the running proxy')
    .requiredOption('--name <name>', 'what the key is for, e.g. ci, frontend, partner-a')
    .addHelpText(
      'after',
      examples([
        ['mlship keys create --name ci', 'a new key, printed once'],
        ['curl -H "Authorization: Bearer $KEY" http://127.0.0.1:8080/api/iris/predict ...', 'use it'],
      ]),
    )
    .action(async (flags: KeysFlags & { name: string }) => {
      const ctx = holder.get();
      const { createKey } = await import('../../core/keys/keys.js');
      const { project, file } = await stack(ctx, flags);
      const k = await createKey(file, flags.name);
      const reloaded = await reload(ctx, project.name, path.dirname(path.dirname(path.dirname(file))));
      ctx.io.result(
        { ok: true, id: k.id, name: k.name, created: k.created, key: k.key, reloaded },
        [
          k.key,
          ctx.io.style(
            'dim',
            `key ${k.id} (${k.name}): shown this once; ${reloaded.length ? 'the running proxy accepts it now' : 'the proxy accepts it when the stack runs'}. On ECS: mlship deploy ecs --apply`,
          ),
        ].join('\n'),
      );
    });
  withFlags(keys.command('list'))
    .description('the keys by id, name, creation time and first characters (never the keys)')
    .action(async (flags: KeysFlags) => {
      const ctx = holder.get();
      const { listKeys } = await import('../../core/keys/keys.js');
      const { file } = await stack(ctx, flags);
      const list = await listKeys(file);
      ctx.io.result(
        { ok: true, keys: list },
        list.length
          ? list.map((k) => `${k.id.padEnd(10)} ${k.name.padEnd(20)} ${k.created}  ${k.prefix}`).join('\n')
          : 'no keys: every request to /api/ is refused (mlship keys create --name <name>)',
      );
    });
  withFlags(keys.command('revoke'))
    .description('revoke a key by id or name; the running proxy refuses it within seconds')
    .argument('<key>', 'id or name of the key')
    .action(async (idOrName: string, flags: KeysFlags) => {
      const ctx = holder.get();
      const { revokeKey } = await import('../../core/keys/keys.js');
      const { project, file } = await stack(ctx, flags);
      const k = await revokeKey(file, idOrName);
      const reloaded = await reload(ctx, project.name, path.dirname(path.dirname(path.dirname(file))));
      ctx.io.result(
        { ok: true, revoked: k, reloaded },
        `revoked ${k.id} (${k.name})${reloaded.length ? `; ${reloaded.join(', ')} reloaded: it is refused now` : ''}. On ECS: mlship deploy ecs --apply rolls the proxy with the new keys`,
      );
    });
};
