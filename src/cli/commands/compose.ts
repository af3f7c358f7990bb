import path from 'node:path';
import { type Command, Option } from 'commander';
import type { Stack } from '../../config/stack-model.js';
import type { IoHost } from '../../io/io-host.js';
import type { Register } from '../context.js';
import { examples } from '../examples.js';

function renderStack(io: IoHost, stack: Stack): string {
  const lines = [
    `stack ${stack.name} (${stack.services.length} service${stack.services.length === 1 ? '' : 's'}) from ${stack.file}`,
  ];
  for (const s of stack.services) {
    const what =
      s.image ??
      (s.build ? `build ${s.build.context}${s.build.target ? ` (target ${s.build.target})` : ''}` : '?');
    const ports = s.ports
      .map((p) => (p.published ? `${p.published}→${p.container}` : `${p.container}`))
      .join(', ');
    const extra = [
      s.gpus ? `gpu ${s.gpus}` : '',
      s.healthcheck ? 'healthcheck' : '',
      s.secretEnv.length ? `secrets: ${s.secretEnv.join(', ')}` : '',
    ].filter(Boolean);
    lines.push(
      `  ${io.style('bold', s.name.padEnd(14))} ${s.role.padEnd(9)} ${what}${ports ? `  ports ${ports}` : ''}${extra.length ? `  [${extra.join('; ')}]` : ''}`,
    );
  }
  if (stack.warnings.length) {
    lines.push(
      '',
      `${stack.warnings.length} thing${stack.warnings.length === 1 ? '' : 's'} not carried over:`,
    );
    for (const w of stack.warnings) {
      lines.push(
        `  ${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? io.style('dim', ` (fix: ${w.fix})`) : ''}`,
      );
    }
  }
  return lines.join('\n');
}

interface StackFlags {
  file: string;
  out?: string;
}

function withStackFlags(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'project config', 'mlship.yaml')
    .option('-o, --out <dir>', 'where the stack files are (default: deploy/compose beside mlship.yaml)');
}

async function composeDeps(holder: Parameters<Register>[1]) {
  const ctx = holder.get();
  const [{ detectCompose, composeRunner }, { exec }] = await Promise.all([
    import('../../adapters/compose.js'),
    import('../../adapters/exec.js'),
  ]);
  const { EnvironmentError } = await import('../../io/errors.js');
  const cli = await detectCompose(exec);
  if (!cli) {
    throw new EnvironmentError(
      'COMPOSE_MISSING',
      'neither `docker compose` (v2 plugin) nor `docker-compose` (v1) was found',
      {
        hint: 'install the compose plugin (docker-compose-plugin) or docker-compose',
      },
    );
  }
  return { ctx, cli, compose: composeRunner(exec), engine: await ctx.engine() };
}

type Ctx = ReturnType<Parameters<Register>[1]['get']>;

async function userStack(ctx: Ctx, file: string) {
  const { isComposeFile, userComposeStack } = await import('../../core/compose/user-compose.js');
  if (!(await isComposeFile(file))) return undefined;
  const user = await userComposeStack(file);
  for (const w of user.warnings) ctx.io.warn(`${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}`);
  return user;
}

/**
 * The stack to run: a user's compose file as it is, or the one generated from mlship.yaml,
 * planned first and written by `write` once the pre-flight has passed.
 */
async function stackToRun(ctx: Ctx, flags: StackFlags, force: boolean) {
  const user = await userStack(ctx, flags.file);
  if (user) return { planned: user };
  const { generateCompose } = await import('../../core/compose/generate.js');
  const options = { configFile: flags.file, ...(flags.out ? { outDir: flags.out } : {}), force };
  return {
    planned: await generateCompose({ ...options, dryRun: true }),
    write: () => generateCompose({ ...options, dryRun: false }),
  };
}

/** The stack to inspect or stop: nothing is generated. */
async function stackToInspect(ctx: Ctx, flags: StackFlags) {
  const user = await userStack(ctx, flags.file);
  if (user) return user;
  const { locateStack } = await import('../../core/compose/generate.js');
  return locateStack(flags.file, flags.out);
}

function renderStatus(
  io: IoHost,
  rows: { service: string; state: string; health?: string | undefined; url?: string }[],
): string {
  if (rows.length === 0) return 'no containers';
  return rows
    .map((r) => {
      const h = r.health ?? '-';
      const tone = h === 'healthy' ? 'ok' : h === 'unhealthy' || r.state === 'exited' ? 'fail' : 'warn';
      return `  ${r.service.padEnd(14)} ${r.state.padEnd(9)} ${io.style(tone, h.padEnd(16))} ${r.url ?? ''}`.trimEnd();
    })
    .join('\n');
}

export const registerCompose: Register = (program: Command, holder) => {
  const compose = program
    .command('compose')
    .description(
      'step 3: run the stack locally (model services, NGINX, PostgreSQL, object storage, front end)',
    );

  withStackFlags(compose.command('generate'))
    .description('write compose.yaml, nginx.conf, the front-end page and a git-ignored .env from mlship.yaml')
    .option('--force', 'replace a compose.yaml that mlship did not write', false)
    .option('--dry-run', 'show what would be written', false)
    .addHelpText(
      'after',
      examples([
        ['mlship compose generate', 'deploy/compose/compose.yaml and friends'],
        ['mlship compose generate --dry-run --json', 'the compose object, written nowhere'],
      ]),
    )
    .action(async (flags: StackFlags & { force: boolean; dryRun: boolean }) => {
      const ctx = holder.get();
      const { generateCompose, renderComposeYaml } = await import('../../core/compose/generate.js');
      const r = await generateCompose({
        configFile: flags.file,
        ...(flags.out ? { outDir: flags.out } : {}),
        force: flags.force,
        dryRun: flags.dryRun,
      });
      const rel = (p: string) => path.relative(ctx.cwd, p) || p;
      const text = flags.dryRun
        ? renderComposeYaml(r.stack)
        : [
            ...r.written.map((w) => `wrote ${rel(w)}`),
            ...(r.envFile.created.length
              ? [
                  `generated ${r.envFile.created.join(', ')} in ${rel(r.envFile.path)} (git-ignored, mode 600)`,
                ]
              : []),
            `next: mlship compose up${flags.file === 'mlship.yaml' ? '' : ` -f ${flags.file}`}`,
          ].join('\n');
      ctx.io.result(
        {
          ok: true,
          composeFile: r.composeFile,
          written: r.written,
          env: { created: r.envFile.created, kept: r.envFile.kept },
          compose: r.stack.compose,
        },
        text,
      );
    });

  withStackFlags(compose.command('up'))
    .description(
      'generate, build, start, wait until every service is healthy, then smoke-test each model through the proxy',
    )
    .option(
      '--timeout <seconds>',
      'how long to wait for healthy (default: the longest start-up grace + 120 s)',
    )
    .option('--no-build', 'do not build images first')
    .option('--no-smoke', 'skip the smoke test through the proxy')
    .addOption(
      new Option(
        '--profile <profile>',
        'for stacks with GPU services: run the gpu or the cpu variants (default: gpu when the engine has the NVIDIA runtime)',
      ).choices(['gpu', 'cpu']),
    )
    .option('--force', 'replace a compose.yaml that mlship did not write', false)
    .option(
      '--keep-on-failure',
      'when up fails, leave what it started for inspection (default: stop and remove it)',
      false,
    )
    .addHelpText(
      'after',
      examples([
        ['mlship compose up', 'the whole stack, healthy and smoke-tested'],
        ['mlship compose up --timeout 900', 'for models that take long to load'],
        ['mlship compose up --json', 'services, URLs and smoke-test results as JSON'],
      ]),
    )
    .action(
      async (
        flags: StackFlags & {
          timeout?: string;
          build: boolean;
          smoke: boolean;
          force: boolean;
          keepOnFailure: boolean;
          profile?: string;
        },
      ) => {
        const ctx = holder.get();
        const [stack, engine, { composeUp, preflightUp }, { hostPorts }, { exec }] = await Promise.all([
          stackToRun(ctx, flags, flags.force),
          ctx.engine(),
          import('../../core/compose/run.js'),
          import('../../adapters/host-ports.js'),
          import('../../adapters/exec.js'),
        ]);
        const profile = (flags.profile ??
          ((await engine.info()).runtimes.includes('nvidia') ? 'gpu' : 'cpu')) as 'gpu' | 'cpu';
        const host = hostPorts(exec);
        // A taken port is reported before looking for docker compose, which takes a second or more (v1).
        await preflightUp({ engine, host }, stack.planned, { profile, configFile: flags.file });
        // The S3 client (for the bucket) loads only once nothing stands in the way.
        const [{ cli, compose: runner }, { ensureBucket }] = await Promise.all([
          composeDeps(holder),
          import('../../adapters/aws/s3.js'),
        ]);
        const fileArg = flags.file === 'mlship.yaml' ? '' : ` -f ${flags.file}`;
        const r = await composeUp(
          {
            engine,
            host,
            ensureBucket,
            jobApis: async (e) => {
              const { createJobApis } = await import('../../adapters/aws/jobs-apis.js');
              return createJobApis({
                region: 'us-east-1',
                bucket: e.bucket,
                endpoints: { sqs: e.sqs, s3: e.s3 },
                credentials: { accessKeyId: 'mlship', secretAccessKey: e.secret },
              });
            },
            compose: runner,
            cli,
            tasks: ctx.io.tasks,
            fetch: globalThis.fetch,
            log: (l) => ctx.io.info(l),
            sleep: (ms) => new Promise((res) => setTimeout(res, ms)),
            now: () => performance.now(),
          },
          stack.planned,
          {
            build: flags.build,
            smoke: flags.smoke,
            profile,
            keepOnFailure: flags.keepOnFailure,
            configFile: flags.file,
            downCommand: `mlship compose down${fileArg}`,
            ...(stack.write ? { write: stack.write } : {}),
            ...(flags.timeout ? { timeoutSeconds: Number(flags.timeout) } : {}),
          },
        );
        const lines = [
          `stack ${r.project} is up${r.profile ? ` (profile ${r.profile})` : ''}: every service healthy after ${r.secondsToHealthy.toFixed(1)} s (${r.compose})`,
          renderStatus(ctx.io, r.services),
          ...r.smoke.map(
            (s) =>
              `smoke ${s.service}: ${s.url} → ${s.status} in ${Math.round(s.ms)} ms${s.prediction !== undefined ? `, prediction ${JSON.stringify(s.prediction)}` : ''}`,
          ),
          ...(r.queues?.smoke ?? []).map(
            (j) =>
              `smoke job ${j.service}-worker: ${j.done} of ${j.items} results in ${j.seconds} s (job ${j.job})`,
          ),
          ...(r.storage
            ? [
                `storage: bucket ${r.storage.bucket} at ${r.storage.endpoint} (S3 API, ${r.storage.created ? 'created' : 'exists'})`,
              ]
            : []),
          ...(r.proxyUrl ? [`open ${r.proxyUrl}/`] : []),
        ];
        ctx.io.result({ ok: true, ...r }, lines.join('\n'));
      },
    );

  withStackFlags(compose.command('down'))
    .description('stop and remove the stack; --volumes also removes its data volumes')
    .option('--volumes', 'remove named volumes too (database and storage data)', false)
    .addHelpText(
      'after',
      examples([
        ['mlship compose down', 'stop, keep data'],
        ['mlship compose down --volumes', 'stop and delete data'],
      ]),
    )
    .action(async (flags: StackFlags & { volumes: boolean }) => {
      const { ctx, cli, compose: runner, engine } = await composeDeps(holder);
      const { composeDown } = await import('../../core/compose/run.js');
      const stack = await stackToInspect(ctx, flags);
      const r = await composeDown({ engine, compose: runner, cli }, stack, { volumes: flags.volumes });
      ctx.io.result(
        { ok: true, ...r },
        `stack ${r.project} is down${r.removedVolumes ? ' (volumes removed)' : ''}; no containers left`,
      );
    });

  withStackFlags(compose.command('ps'))
    .description("the stack's services with state, health and URLs")
    .addHelpText(
      'after',
      examples([
        ['mlship compose ps', 'health of every service'],
        ['mlship compose ps --json', 'for scripts'],
      ]),
    )
    .action(async (flags: StackFlags) => {
      const ctx = holder.get();
      const { composePs } = await import('../../core/compose/run.js');
      const stack = await stackToInspect(ctx, flags);
      const rows = await composePs({ engine: await ctx.engine() }, stack);
      ctx.io.result({ ok: true, project: stack.project.name, services: rows }, renderStatus(ctx.io, rows));
    });

  withStackFlags(compose.command('logs'))
    .description('the last log lines of the stack, or of one service')
    .argument('[service]', 'one service')
    .option('--tail <n>', 'lines per service', '100')
    .addHelpText(
      'after',
      examples([
        ['mlship compose logs iris', "the model service's logs"],
        ['mlship compose logs --tail 20', 'every service'],
      ]),
    )
    .action(async (service: string | undefined, flags: StackFlags & { tail: string }) => {
      const { ctx, cli, compose: runner } = await composeDeps(holder);
      const stack = await stackToInspect(ctx, flags);
      const r = await runner({ cli, name: stack.project.name, file: stack.composeFile, dir: stack.outDir }, [
        'logs',
        '--no-color',
        '--tail',
        flags.tail,
        ...(service ? [service] : []),
      ]);
      ctx.io.result({ ok: r.exitCode === 0, logs: r.stdout }, r.stdout);
      if (r.exitCode !== 0) process.exitCode = 1;
    });
  compose
    .command('import')
    .description("read a compose file into mlship's stack model; report what cannot be carried over")
    .argument('<file>', 'compose file (compose.yaml, docker-compose.yml)')
    .option('--name <name>', 'stack name (default: the compose name, or the folder name)')
    .addHelpText(
      'after',
      examples([
        ['mlship compose import docker-compose.yml', 'services, roles, ports, and warnings with file:line'],
        ['mlship compose import compose.yaml --json', 'the stack model as JSON, for tools'],
      ]),
    )
    .action(async (file: string, opts: { name?: string }) => {
      const ctx = holder.get();
      const { loadComposeStack } = await import('../../core/stack/load-stack.js');
      const rel = path.relative(ctx.cwd, path.resolve(ctx.cwd, file)) || file;
      const stack = await loadComposeStack(rel, opts.name);
      ctx.io.result({ ok: true, stack }, renderStack(ctx.io, stack));
    });
};
