import path from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { WrapChecks } from '../../core/wrap/checks.js';
import type { WrapCheckDeps } from '../../core/wrap/probe.js';
import type { UpgradeResult } from '../../core/wrap/upgrade.js';
import type { WrapOptions, WrapResult } from '../../core/wrap/wrap.js';
import type { IoHost } from '../../io/io-host.js';
import { renderCompileReport } from '../compile-report.js';
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
  upgrade: boolean;
  python?: string;
  check: boolean;
  build: boolean;
  run: boolean;
  hostPort?: number;
  detach: boolean;
  compile?: 'onnx';
  quantize?: 'int8';
  checkData?: string;
  tolerance?: number;
  allowNonFinite?: boolean;
  fromBakeoff?: string;
  bakeoff?: string;
  fetchAllow?: string[];
  output?: 'json' | 'image';
  labels?: string;
}

const MARKS: Record<string, string> = {
  create: 'create   ',
  update: 'update   ',
  unchanged: 'unchanged',
  conflict: 'CONFLICT ',
  overwrite: 'overwrite',
  kept: 'kept     ',
};

function fileLines(io: IoHost, files: WrapResult['files']): string[] {
  const shown = files.filter((f) => f.action !== 'unchanged');
  const lines = shown.map((f) => {
    const mark = MARKS[f.action]!;
    if (f.action === 'conflict') return `  ${io.style('fail', mark)} ${f.path}`;
    if (f.action === 'kept') return `  ${io.style('warn', mark)} ${f.path}  (you edited it)`;
    return `  ${mark} ${f.path}`;
  });
  const unchanged = files.length - shown.length;
  if (unchanged) lines.push(io.style('dim', `  (${unchanged} file(s) unchanged)`));
  return lines;
}

function checkLines(io: IoHost, checks: WrapChecks): string[] {
  return [
    ...checks.verified.map((l) => `${io.style('ok', 'checked')}      ${l}`),
    ...checks.unverified.map((l) => `${io.style('warn', 'not verified')} ${l}`),
  ];
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('a positive number, e.g. 1e-4');
  return n;
}

/** --compile/--quantize and their check, when asked for; the converter runs as the user. */
function convertOptions(flags: WrapFlags, cwd: string): WrapOptions['convert'] {
  if (!flags.compile && !flags.quantize) return undefined;
  return {
    ...(flags.compile ? { compile: flags.compile } : {}),
    ...(flags.quantize ? { quantize: flags.quantize } : {}),
    ...(flags.checkData ? { checkData: path.resolve(cwd, flags.checkData) } : {}),
    ...(flags.tolerance !== undefined ? { tolerance: flags.tolerance } : {}),
    ...(typeof process.getuid === 'function' ? { user: `${process.getuid()}:${process.getgid?.()}` } : {}),
  };
}

function render(io: IoHost, r: WrapResult, cwd: string): string {
  const rel = path.relative(cwd, r.dir) || '.';
  const head = r.dryRun
    ? `would write ${rel}/ (${r.kind}, ${r.runtime}); nothing written (--dry-run):`
    : `wrote ${rel}/ (${r.kind} model, ${r.runtime} runtime):`;
  // Numbers are written as zeros; files as stand-ins (a grey image, silence), which the text says.
  const zeros = r.example.generatedFrom?.startsWith('the file inputs') ? '' : ', all zeros';
  const example = r.example.generatedFrom
    ? [
        `${io.style('warn', 'example')}      none found: ${r.manifest.example} was written from ${r.example.generatedFrom}${zeros}; replace it with a real request (it is the warm-up call and the /docs example)`,
      ]
    : [];
  const next = r.dryRun
    ? []
    : ['', `next: mlship serve ${rel}    (builds ${r.image}, runs it, sends the example)`];
  const diffs = r.files.flatMap((f) => (f.diff ? ['', f.diff.trimEnd()] : []));
  const compiled = r.compile ? ['', ...renderCompileReport(r.compile)] : [];
  return [
    head,
    ...fileLines(io, r.files),
    ...checkLines(io, r.checks),
    ...example,
    ...compiled,
    ...next,
    ...diffs,
  ].join('\n');
}

function renderUpgrade(io: IoHost, r: UpgradeResult, cwd: string): string {
  const rel = path.relative(cwd, r.dir) || '.';
  const versions = `templates ${r.from ?? '(before versions were recorded)'} → ${r.to}`;
  const head = r.dryRun
    ? `would upgrade ${rel}/ (${versions}); nothing written (--dry-run):`
    : `upgraded ${rel}/ (${versions}):`;
  const kept = r.kept.length
    ? [
        '',
        `your edits were kept in ${r.kept.length} file(s): ${r.kept.join(', ')}`,
        `  see what the current templates would change there: mlship wrap --upgrade ${rel} --dry-run`,
        `  take the current templates anyway (your edits are lost): mlship wrap --upgrade ${rel} --force`,
      ]
    : [];
  const obsolete = r.obsolete.length ? [`no longer generated, left in place: ${r.obsolete.join(', ')}`] : [];
  const diffs = r.files.flatMap((f) => (f.diff ? ['', f.diff.trimEnd()] : []));
  return [head, ...fileLines(io, r.files), ...kept, ...obsolete, ...diffs].join('\n');
}

/** Flags that choose what is rendered: --upgrade renders with the recorded ones instead. */
const SPEC_FLAGS: [keyof WrapFlags, string][] = [
  ['entry', '--entry'],
  ['name', '--name'],
  ['runtime', '--runtime'],
  ['example', '--example'],
  ['schema', '--schema'],
  ['port', '--port'],
  ['workers', '--workers'],
  ['maxBatchSize', '--max-batch-size'],
  ['maxLatencyMs', '--max-latency-ms'],
  ['maxBodyBytes', '--max-body-bytes'],
  ['maxQueue', '--max-queue'],
  ['startupGrace', '--startup-grace'],
  ['baseImage', '--base-image'],
  ['weightsUrl', '--weights-url'],
  ['weightsSha256', '--weights-sha256'],
  ['bakeWeights', '--bake-weights'],
  ['service', '--service'],
  ['python', '--python'],
  ['compile', '--compile'],
  ['quantize', '--quantize'],
  ['checkData', '--check-data'],
  ['tolerance', '--tolerance'],
  ['allowNonFinite', '--allow-non-finite'],
  ['fromBakeoff', '--from-bakeoff'],
  ['bakeoff', '--bakeoff'],
  ['fetchAllow', '--fetch-allow'],
  ['output', '--output'],
  ['labels', '--labels'],
];

/** The checks' view of the machine: the project's Python, and the engine for a built image. */
function checkDeps(ctx: CliContext, flags: WrapFlags, exec: WrapCheckDeps['exec']): WrapCheckDeps {
  return {
    ...(exec ? { exec } : {}),
    ...(ctx.env.VIRTUAL_ENV ? { virtualEnv: ctx.env.VIRTUAL_ENV } : {}),
    // A path is relative to where mlship runs; a bare name (python3.11) is looked up on PATH.
    ...(flags.python
      ? { python: flags.python.includes(path.sep) ? path.resolve(ctx.cwd, flags.python) : flags.python }
      : {}),
    image: async () => {
      const engine = await ctx.engine();
      await engine.ping(2000);
      return engine;
    },
  };
}

/** mlship.yaml's base images and, for the service being wrapped, its settings. */
async function projectDefaults(
  ctx: CliContext,
  flags: WrapFlags,
): Promise<Pick<WrapOptions, 'service' | 'baseImages'>> {
  // mlship.yaml, when there is one, gives the project's base images (mirrors,
  // air-gapped machines) and the defaults of the service being wrapped: the one
  // named by --service, else the one whose path is the output directory.
  const configPath = path.resolve(ctx.cwd, flags.config);
  const { existsSync } = await import('node:fs');
  if (!flags.service && !existsSync(configPath)) return {};
  const { loadProject } = await import('../../config/load.js');
  const { UsageError } = await import('../../io/errors.js');
  const project = await loadProject(configPath);
  let name = flags.service;
  if (!name && flags.out) {
    const out = path.resolve(ctx.cwd, flags.out);
    name = Object.entries(project.services).find(
      ([n, s]) => path.resolve(path.dirname(configPath), s.path ?? `services/${n}`) === out,
    )?.[0];
  }
  const baseImages = project.base_images ? { baseImages: project.base_images } : {};
  if (!name) return baseImages;
  const config = project.services[name];
  if (!config) {
    throw new UsageError(`no service "${name}" in ${flags.config}`, {
      hint: `services there: ${Object.keys(project.services).join(', ') || '(none)'}`,
    });
  }
  return { ...baseImages, service: { name, config } };
}

async function upgrade(ctx: CliContext, dir: string | undefined, flags: WrapFlags) {
  const { UsageError } = await import('../../io/errors.js');
  const given = SPEC_FLAGS.filter(([k]) => flags[k] !== undefined).map(([, f]) => f);
  if (flags.batching) given.push('--batching');
  if (!flags.check) given.push('--no-check');
  if (given.length) {
    throw new UsageError(
      `--upgrade renders with the settings recorded in mlship-wrap.json, not ${given.join(', ')}`,
      {
        hint: 'to change settings, wrap again: mlship wrap <model> --out <dir> [flags]',
      },
    );
  }
  const [{ runUpgrade }, { VERSION }] = await Promise.all([
    import('../../core/wrap/upgrade.js'),
    import('../version.js'),
  ]);
  return runUpgrade({
    cwd: ctx.cwd,
    dir: dir ?? flags.out ?? '.',
    force: flags.force,
    dryRun: flags.dryRun,
    mlshipVersion: VERSION,
  });
}

/** --build and --run: the steps after writing, shared by wrap and --upgrade. */
async function afterWrite(
  ctx: CliContext,
  flags: WrapFlags,
  result: { dir: string; image: string; dryRun: boolean },
  text: string,
): Promise<void> {
  if (result.dryRun || !(flags.build || flags.run)) {
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
  const built = await buildService({ dir: result.dir }, { engine: await ctx.engine(), tasks: ctx.io.tasks });
  ctx.io.result(
    { ok: true, ...result, build: built },
    `${text}\nbuilt ${result.image} (${built.cachedSteps}/${built.steps.length} steps cached)`,
  );
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
    .argument(
      '[model]',
      'serialized model: .joblib/.pkl (scikit-learn), .onnx, .pt (TorchScript); with --upgrade, the service directory',
    )
    .option(
      '--entry <file.py:function>',
      'wrap your own predict function instead (an optional load() runs once)',
    )
    .option('-o, --out <dir>', 'output directory (default: <name>-service)')
    .option('--name <name>', 'service name (default: from the model file name)')
    .addOption(new Option('--runtime <runtime>', 'serving runtime').choices(['python', 'node']))
    .option(
      '--example <file.json>',
      'one example request body, or a list of them (the first is the example; their number ranges are hints) (default: example.json next to the model)',
    )
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
    .option(
      '--upgrade',
      'render an already-wrapped service again with the current templates and its recorded settings; files you edited are kept and listed',
      false,
    )
    .option(
      '--python <path>',
      'the Python that loads the model before anything is written (default: an active virtualenv, a .venv or venv near the model, python3)',
    )
    .option('--no-check', 'check the model file format only: do not load the model or import your code')
    .option('--build', 'build the image after writing', false)
    .option('--run', 'build, run, wait until ready and send the example (like mlship serve)', false)
    .option(
      '--host-port <port>',
      'with --run: host port (0 = any free port)',
      parseInteger('--host-port', 0, 65535),
    )
    .option('-d, --detach', 'with --run: leave the service running and return', false)
    .addOption(
      new Option(
        '--compile <format>',
        'serve a converted model (scikit-learn, LightGBM, XGBoost → ONNX), checked equal',
      ).choices(['onnx']),
    )
    .addOption(
      new Option(
        '--quantize <type>',
        'dynamic int8 quantization of an ONNX neural network, checked equal',
      ).choices(['int8']),
    )
    .option('--check-data <file>', 'check --compile/--quantize on these request bodies (.jsonl, .json, .csv)')
    .option(
      '--tolerance <x>',
      'largest |original − converted| / max(1, |original|) allowed (default 1e-4; 0.05 with --quantize)',
      positiveNumber,
    )
    .option('--allow-non-finite', 'accept NaN and Infinity in inputs (default: 422 naming the field)')
    .option(
      '--from-bakeoff <candidate>',
      "build on what passed in the bake-off: bakeoff.lock's base image and pip freeze, the repo at its commit (with --entry file-in-repo.py:function)",
    )
    .option('--bakeoff <file>', 'with --from-bakeoff: the bake-off config (default: bakeoff.yaml here)')
    .option(
      '--fetch-allow <prefix...>',
      'files in: s3://bucket/ or https://host/ prefixes a reference may be fetched from (default: none)',
    )
    .addOption(
      new Option('--output <kind>', 'what the model answers: image (PNG/JPEG/WebP) or json').choices([
        'json',
        'image',
      ]),
    )
    .option('--labels <file>', 'class names, one per line, in the order of the model outputs')
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
        ['mlship wrap --upgrade iris-service', 'bring a wrapped service to the current templates'],
        ['mlship wrap model.joblib --compile onnx --check-data sample.jsonl', 'ONNX Runtime, proven equal'],
        ['mlship wrap --from-bakeoff detr --entry demo.py:predict', 'the bake-off winner, as it passed'],
        [
          'mlship wrap classifier.onnx --labels labels.txt',
          'an image model: multipart, base64 or allow-listed URLs',
        ],
      ]),
    )
    .action(async (model: string | undefined, flags: WrapFlags) => {
      const ctx = holder.get();
      if (flags.upgrade) {
        const r = await upgrade(ctx, model, flags);
        await afterWrite(ctx, flags, r, renderUpgrade(ctx.io, r, ctx.cwd));
        return;
      }
      const [{ runWrap }, { exec }, { VERSION }] = await Promise.all([
        import('../../core/wrap/wrap.js'),
        import('../../adapters/exec.js'),
        import('../version.js'),
      ]);
      const convert = convertOptions(flags, ctx.cwd);
      const batchingOn =
        flags.batching || flags.maxBatchSize !== undefined || flags.maxLatencyMs !== undefined;
      // The candidate's base image, name, example and locked tree; explicit flags still win.
      const fromBakeoff = flags.fromBakeoff ? await bakeoffInputs(ctx, flags) : {};
      const result = await runWrap(
        {
          cwd: ctx.cwd,
          ...(await projectDefaults(ctx, flags)),
          ...fromBakeoff,
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
          ...(flags.allowNonFinite ? { allowNonFinite: true } : {}),
          ...(convert ? { convert } : {}),
          media: {
            ...(flags.fetchAllow ? { fetchAllow: flags.fetchAllow } : {}),
            ...(flags.output ? { output: flags.output } : {}),
            ...(flags.labels ? { labels: flags.labels } : {}),
          },
          force: flags.force,
          dryRun: flags.dryRun,
          formatsOnly: !flags.check,
          mlshipVersion: VERSION,
        },
        // The converter image (--compile/--quantize) needs the engine: connected only when it runs.
        { ...checkDeps(ctx, flags, exec), converter: () => ctx.engine() },
      );
      await afterWrite(ctx, flags, result, render(ctx.io, result, ctx.cwd));
    });
};
