import path from 'node:path';
import { type Command, Option } from 'commander';
import type { WrapOptions, WrapResult } from '../../core/wrap/wrap.js';
import type { IoHost } from '../../io/io-host.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';
import { parseInteger, serveDir } from './serve.js';

interface WrapFlags {
  entry?: string;
  out?: string;
  name?: string;
  runtime?: 'python' | 'node';
  example?: string;
  schema?: string;
  port?: number;
  workers?: number;
  batching: boolean;
  maxBatchSize?: number;
  maxLatencyMs?: number;
  maxBodyBytes?: number;
  maxQueue?: number;
  startupGrace?: number;
  baseImage?: string;
  weightsUrl?: string;
  weightsSha256?: string;
  bakeWeights?: boolean;
  service?: string;
  config: string;
  force: boolean;
  dryRun: boolean;
  build: boolean;
  run: boolean;
  hostPort?: number;
  detach: boolean;
  fromBakeoff?: string;
  bakeoff?: string;
}

const MARKS: Record<string, string> = {
  create: 'create   ',
  update: 'update   ',
  unchanged: 'unchanged',
  conflict: 'CONFLICT ',
  overwrite: 'overwrite',
};

function render(io: IoHost, r: WrapResult, cwd: string): string {
  const rel = path.relative(cwd, r.dir) || '.';
  const shown = r.files.filter((f) => f.action !== 'unchanged');
  const lines = shown.map(
    (f) => `  ${f.action === 'conflict' ? io.style('fail', MARKS[f.action]!) : MARKS[f.action]} ${f.path}`,
  );
  const unchanged = r.files.length - shown.length;
  if (unchanged) lines.push(io.style('dim', `  (${unchanged} file(s) unchanged)`));
  const head = r.dryRun
    ? `would write ${rel}/ (${r.kind}, ${r.runtime}); nothing written (--dry-run):`
    : `wrote ${rel}/ (${r.kind} model, ${r.runtime} runtime):`;
  const next = r.dryRun
    ? []
    : ['', `next: mlship serve ${rel}    (builds ${r.image}, runs it, sends the example)`];
  const diffs = r.files.flatMap((f) => (f.diff ? ['', f.diff.trimEnd()] : []));
  return [head, ...lines, ...next, ...diffs].join('\n');
}

/** `--from-bakeoff`: the locked environment and code of a candidate, as wrap's inputs. */
async function bakeoffInputs(ctx: CliContext, flags: WrapFlags) {
  const [{ fromBakeoff }, { createGit }, { exec }, { cacheDirFrom }, { UsageError }] = await Promise.all([
    import('../../core/wrap/from-bakeoff.js'),
    import('../../adapters/git.js'),
    import('../../adapters/exec.js'),
    import('../cache-dir.js'),
    import('../../io/errors.js'),
  ]);
  if (!flags.entry) {
    throw new UsageError('--from-bakeoff needs --entry <file in the repo>.py:<function>', {
      hint: 'e.g. --entry demo.py:predict: the function the service calls with each request body',
    });
  }
  return fromBakeoff(
    {
      cwd: ctx.cwd,
      candidate: flags.fromBakeoff!,
      cacheDir: path.resolve(ctx.cwd, cacheDirFrom(ctx.env)),
      ...(flags.bakeoff ? { config: flags.bakeoff } : {}),
      ...(flags.example ? { example: flags.example } : {}),
    },
    { git: createGit(exec) },
  );
}

export const registerWrap: Register = (program: Command, holder) => {
  program
    .command('wrap')
    .description('step 2: turn a model into a production-grade microservice (FastAPI, or Node for ONNX)')
    .argument('[model]', 'serialized model: .joblib/.pkl (scikit-learn), .onnx, .pt (TorchScript)')
    .option(
      '--entry <file.py:function>',
      'wrap your own predict function instead (an optional load() runs once)',
    )
    .option('-o, --out <dir>', 'output directory (default: <name>-service)')
    .option('--name <name>', 'service name (default: from the model file name)')
    .addOption(new Option('--runtime <runtime>', 'serving runtime').choices(['python', 'node']))
    .option('--example <file.json>', 'one example request body (default: example.json next to the model)')
    .option(
      '--schema <file.py:Class>',
      'your own pydantic request model instead of the one inferred from the example',
    )
    .option('--port <port>', 'port inside the container (default 8080)', parseInteger('--port', 1, 65535))
    .option(
      '--workers <n>',
      'server worker processes (default: one per CPU, at most 8)',
      parseInteger('--workers', 1, 64),
    )
    .option('--batching', 'adaptive micro-batching (max batch 32, max wait 10 ms unless set below)', false)
    .option(
      '--max-batch-size <n>',
      'hard limit of inputs per model call (turns batching on)',
      parseInteger('--max-batch-size', 2, 4096),
    )
    .option(
      '--max-latency-ms <ms>',
      'longest an input waits for a batch to fill (turns batching on)',
      parseInteger('--max-latency-ms', 0, 60000),
    )
    .option(
      '--max-body-bytes <n>',
      'largest request body (413 above; default 1 MiB)',
      parseInteger('--max-body-bytes', 1024),
    )
    .option(
      '--max-queue <n>',
      'requests per worker before 503 + Retry-After (default 256)',
      parseInteger('--max-queue', 1),
    )
    .option(
      '--startup-grace <s>',
      'seconds the model may take to load (healthcheck start period; default 60)',
      parseInteger('--startup-grace', 0, 3600),
    )
    .option('--base-image <ref>', 'base image (private mirrors, air-gapped machines)')
    .option(
      '--weights-url <url>',
      'download weights at start-up from s3:// or https:// instead of mounting them',
    )
    .option('--weights-sha256 <hex>', 'checksum of the downloaded weights (default: of the local model file)')
    .option('--bake-weights', 'copy the weights into the image (default: mounted read-only at run time)')
    .option('--service <name>', 'take defaults from this service of mlship.yaml')
    .option(
      '-c, --config <file>',
      'project config (base images, service defaults), when it exists',
      'mlship.yaml',
    )
    .option('--force', 'overwrite files you changed since the last wrap', false)
    .option('--dry-run', 'show what would be written, write nothing', false)
    .option('--build', 'build the image after writing', false)
    .option('--run', 'build, run, wait until ready and send the example (like mlship serve)', false)
    .option(
      '--host-port <port>',
      'with --run: host port (0 = any free port)',
      parseInteger('--host-port', 0, 65535),
    )
    .option('-d, --detach', 'with --run: leave the service running and return', false)
    .option(
      '--from-bakeoff <candidate>',
      "build on what passed in the bake-off: bakeoff.lock's base image and pip freeze, the repo at its commit (with --entry file-in-repo.py:function)",
    )
    .option('--bakeoff <file>', 'with --from-bakeoff: the bake-off config (default: bakeoff.yaml here)')
    .addHelpText(
      'after',
      examples([
        ['mlship wrap fixtures/wrap/iris/model.joblib --out iris-service --run', 'the Quick start'],
        ['mlship wrap --entry predict.py:predict --out svc', 'your own function (load() runs once)'],
        ['mlship wrap model.onnx --runtime node --batching', 'Node + onnxruntime-node, micro-batching'],
        [
          'mlship wrap model.joblib --weights-url s3://bucket/model.joblib',
          'weights downloaded and checked at start-up',
        ],
        [
          'mlship wrap --weights-url https://host/m.onnx --weights-sha256 <hex> --example in.json',
          'no local copy',
        ],
        ['mlship wrap model.joblib --dry-run', 'see the plan first'],
      ]),
    )
    .action(async (model: string | undefined, flags: WrapFlags) => {
      const ctx = holder.get();
      const { runWrap } = await import('../../core/wrap/wrap.js');
      let service: WrapOptions['service'];
      let baseImages: WrapOptions['baseImages'];
      // mlship.yaml, when there is one, gives the project's base images (mirrors,
      // air-gapped machines) and the defaults of the service being wrapped: the one
      // named by --service, else the one whose path is the output directory.
      const configPath = path.resolve(ctx.cwd, flags.config);
      const { existsSync } = await import('node:fs');
      if (flags.service || existsSync(configPath)) {
        const { loadProject } = await import('../../config/load.js');
        const { UsageError } = await import('../../io/errors.js');
        const project = await loadProject(configPath);
        baseImages = project.base_images;
        let name = flags.service;
        if (!name && flags.out) {
          const out = path.resolve(ctx.cwd, flags.out);
          name = Object.entries(project.services).find(
            ([n, s]) => path.resolve(path.dirname(configPath), s.path ?? `services/${n}`) === out,
          )?.[0];
        }
        if (name) {
          const config = project.services[name];
          if (!config) {
            throw new UsageError(`no service "${name}" in ${flags.config}`, {
              hint: `services there: ${Object.keys(project.services).join(', ') || '(none)'}`,
            });
          }
          service = { name, config };
        }
      }
      const batchingOn =
        flags.batching || flags.maxBatchSize !== undefined || flags.maxLatencyMs !== undefined;
      const fromBakeoff = flags.fromBakeoff ? await bakeoffInputs(ctx, flags) : {};
      const result = await runWrap({
        ...fromBakeoff,
        cwd: ctx.cwd,
        ...(model !== undefined ? { model } : {}),
        ...(flags.entry !== undefined ? { entry: flags.entry } : {}),
        ...(flags.out !== undefined ? { out: flags.out } : {}),
        ...(flags.name !== undefined ? { name: flags.name } : {}),
        ...(flags.runtime !== undefined ? { runtime: flags.runtime } : {}),
        ...(flags.example !== undefined ? { example: flags.example } : {}),
        ...(flags.schema !== undefined ? { schema: flags.schema } : {}),
        ...(flags.port !== undefined ? { port: flags.port } : {}),
        ...(flags.workers !== undefined ? { workers: flags.workers } : {}),
        ...(batchingOn
          ? { batching: { maxBatchSize: flags.maxBatchSize ?? 32, maxLatencyMs: flags.maxLatencyMs ?? 10 } }
          : {}),
        ...(flags.maxBodyBytes !== undefined ? { maxBodyBytes: flags.maxBodyBytes } : {}),
        ...(flags.maxQueue !== undefined ? { maxQueue: flags.maxQueue } : {}),
        ...(flags.startupGrace !== undefined ? { startupGraceSeconds: flags.startupGrace } : {}),
        ...(flags.baseImage !== undefined ? { baseImage: flags.baseImage } : {}),
        ...(flags.weightsUrl !== undefined ? { weightsUrl: flags.weightsUrl } : {}),
        ...(flags.weightsSha256 !== undefined ? { weightsSha256: flags.weightsSha256 } : {}),
        ...(flags.bakeWeights !== undefined ? { bakeWeights: flags.bakeWeights } : {}),
        ...(service ? { service } : {}),
        ...(baseImages ? { baseImages } : {}),
        force: flags.force,
        dryRun: flags.dryRun,
      });
      const text = render(ctx.io, result, ctx.cwd);
      if (flags.dryRun || !(flags.build || flags.run)) {
        ctx.io.result({ ok: true, ...result }, text);
        return;
      }
      ctx.io.info(text);
      if (flags.run) {
        await serveDir(ctx, result.dir, {
          build: true,
          env: [],
          detach: flags.detach,
          ...(flags.hostPort !== undefined ? { port: flags.hostPort } : {}),
        });
        return;
      }
      const { buildService } = await import('../../core/serve/serve.js');
      const built = await buildService(
        { dir: result.dir },
        { engine: await ctx.engine(), tasks: ctx.io.tasks },
      );
      ctx.io.result(
        { ok: true, ...result, build: built },
        `${text}\nbuilt ${result.image} (${built.cachedSteps}/${built.steps.length} steps cached)`,
      );
    });
};
