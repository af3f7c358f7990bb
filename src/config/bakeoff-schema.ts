// The bakeoff.yaml schema, also used for the `bakeoff:` section of mlship.yaml.
// One schema, three uses (type, located validation, JSON Schema), like schema.ts.

import { z } from 'zod';

const NAME = /^[a-z][a-z0-9-]{0,62}$/;
const CandidateName = z.string().regex(NAME, {
  message: 'must start with a letter and use only lowercase letters, digits and "-" (e.g. "yolo-v8")',
});

export const BakeoffMemory = z
  .string()
  .regex(/^\d+(\.\d+)?(Mi|Gi|M|G)$/, { message: 'must be a size such as "512Mi" or "4Gi"' });

const Duration = z
  .string()
  .regex(/^\d+(\.\d+)?(s|m|h)$/, { message: 'must be a duration such as "90s", "15m" or "1h"' });

const Version = z
  .string()
  .regex(/^\d+(\.\d+){0,2}$/, { message: 'must be a version such as "3.11" or "2.3.1" (quote it)' });

export const RANK_METRICS = ['run_time', 'build_time', 'peak_memory', 'gpu_memory', 'image_size'] as const;
export type RankMetric = (typeof RANK_METRICS)[number];

/** A metric the score command printed, as `rank_by` names it: `score.<name>`. */
export const SCORE_METRIC = /^score\.[A-Za-z_][A-Za-z0-9_.-]{0,62}$/;

const RankKeyName = z
  .string()
  .refine((k) => (RANK_METRICS as readonly string[]).includes(k) || SCORE_METRIC.test(k), {
    message: `must be one of ${RANK_METRICS.join(', ')}, or a score metric "score.<name>"`,
  });

export const RankKeySchema = z
  .union(
    [
      z.enum(RANK_METRICS),
      z
        .record(RankKeyName, z.enum(['asc', 'desc'], { message: 'must be "asc" (lower wins) or "desc"' }))
        .refine((o) => Object.keys(o).length === 1, {
          message: 'one metric per entry, e.g. "score.pck: desc"',
        }),
    ],
    {
      message: `must be one of ${RANK_METRICS.join(', ')}, or a metric with its direction such as "score.pck: desc" (a score needs its direction: is higher better?)`,
    },
  )
  .describe('A metric (lower wins), or {metric: asc|desc}; scores are "score.<name>" and need a direction.');

export const ScoreSchema = z
  .strictObject({
    run: z
      .string()
      .min(1)
      .describe(
        'Command (sh -c) that prints one JSON object of named metrics, e.g. {"pck": 0.83}; outputs in /workspace/outputs, inputs in /workspace/inputs, the config directory in /workspace/bakeoff.',
      ),
    image: z.string().min(1).optional().describe("Scoring image; default: the candidate's own image."),
    timeout: Duration.default('5m').describe('Time limit of the score command.'),
  })
  .describe('Scores a candidate that ran: after its run, on its outputs.');

export const InputSchema = z
  .union(
    [
      z.string().min(1),
      z.strictObject({
        source: z.string().min(1).describe('Host path, relative to the config file.'),
        target: z
          .string()
          .regex(/^\//, { message: 'must be an absolute path inside the container (e.g. "/data/in.jpg")' })
          .describe('Where the file or directory appears in the container.'),
      }),
    ],
    { message: 'must be a host path, or {source, target}' },
  )
  .describe('Input file or directory, mounted read-only (a plain path lands in /workspace/inputs/<name>).');

export const CandidateSchema = z
  .strictObject({
    repo: z
      .string()
      .min(1)
      .describe('Git URL, or a local path to a git repository (relative to the config file).'),
    ref: z
      .string()
      .min(1)
      .default('HEAD')
      .describe('Branch, tag or commit; resolved to a commit that the report and bakeoff.lock record.'),
    python: Version.default('3.11').describe('Python version of the candidate image.'),
    framework: z
      .enum(['torch', 'tensorflow', 'none'])
      .default('none')
      .describe(
        'Deep learning framework that mlship installs from the matrix (torch wheels from the right index).',
      ),
    framework_version: Version.optional().describe(
      'Framework version ("2.3" picks the newest 2.3.x in the matrix); default: the newest for the Python version.',
    ),
    cuda: z
      .union([z.literal('auto'), z.literal('none'), Version], {
        message: 'must be "auto", "none" or a CUDA version such as "12.1"',
      })
      .default('auto')
      .describe(
        'CUDA version; "auto" picks the newest the framework and the host driver support (CPU wheels when no GPU is requested).',
      ),
    compiles_cuda: z
      .boolean()
      .optional()
      .describe(
        'Force the devel image (nvcc); default: detected from .cu files, CUDAExtension or nvcc in the repo.',
      ),
    base_image: z
      .string()
      .min(1)
      .optional()
      .describe('Base image for this candidate, bypassing the resolver.'),
    system_packages: z
      .array(
        z.string().regex(/^[a-z0-9][a-z0-9+.:=~-]*$/, { message: 'must be a Debian/Ubuntu package name' }),
      )
      .default([])
      .describe('apt packages installed before the Python dependencies.'),
    setup: z
      .array(z.string().min(1))
      .optional()
      .describe(
        'Shell commands run in the repo after it is copied in; default: install requirements.txt (in its own cached layer).',
      ),
    run: z.string().min(1).describe('The example command, run with sh -c in the repo directory.'),
    inputs: z.array(InputSchema).default([]),
    outputs: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Paths or globs (relative to the repo directory, or absolute) the example must produce; copied out.',
      ),
    timeout: Duration.default('15m').describe('Run time limit of the example (the build is not counted).'),
    memory: BakeoffMemory.optional().describe('Memory limit of the example container, e.g. "8Gi".'),
    gpus: z
      .union([z.literal('all'), z.number().int().min(0)], { message: 'must be a number of GPUs or "all"' })
      .default(0)
      .describe('GPUs for the example: 0 (none), a count, or "all".'),
    env: z
      .record(
        z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be a valid environment variable name' }),
        z.string(),
      )
      .default({}),
    score: ScoreSchema.optional().describe("This candidate's score command (replaces the bakeoff's)."),
  })
  .describe('A candidate model repository and how to run its example.');

export const RankSchema = z
  .array(RankKeySchema)
  .min(1)
  .default(['run_time', 'peak_memory'])
  .describe(
    'Metrics that rank the candidates that passed, most important first: built-ins (lower wins) or {"score.<name>": desc}.',
  );

export const BakeoffSchema = z
  .strictObject({
    $schema: z.string().optional(),
    version: z.literal(1).default(1).describe('Bakeoff config format version.'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('Candidates run at once (default: half the CPUs; GPU candidates limited by the GPU count).'),
    rank_by: RankSchema,
    base_images: z
      .strictObject({
        python: z
          .string()
          .min(1)
          .optional()
          .describe('Replaces python:<version>-slim; "{python}" is replaced by the version.'),
        cuda: z
          .string()
          .min(1)
          .optional()
          .describe('Replaces the nvidia/cuda tag; "{cuda}" and "{flavor}" (runtime/devel) are replaced.'),
      })
      .optional()
      .describe('Base-image overrides, for mirrors and air-gapped machines.'),
    score: ScoreSchema.optional(),
    weights_cache: z
      .union([z.string().min(1), z.literal(false)])
      .optional()
      .describe(
        'Host directory mounted into every candidate as its download cache (HF_HOME, TORCH_HOME, XDG_CACHE_HOME); default <cache-dir>/weights; false: none.',
      ),
    torch_index: z
      .strictObject({
        cuda: z
          .string()
          .regex(/\{tag\}/, { message: 'must contain "{tag}" (replaced by cu121, cu128, …)' })
          .describe('CUDA wheel index, e.g. https://mirror.local/whl/{tag}'),
        cpu: z.string().min(1).describe('CPU wheel index, e.g. https://mirror.local/whl/cpu'),
      })
      .optional()
      .describe('The torch wheel index (private mirrors); default download.pytorch.org.'),
    gpu_probe_image: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Image of the short-lived container that asks the engine's host for its GPUs (nvidia-smi); default: the Python base image.",
      ),
    candidates: z
      .record(CandidateName, CandidateSchema)
      .refine((c) => Object.keys(c).length > 0, { message: 'list at least one candidate' })
      .describe('Candidate repositories, by name.'),
  })
  .describe('mlship bakeoff configuration (bakeoff.yaml, or the bakeoff: section of mlship.yaml).');

export type BakeoffConfig = z.output<typeof BakeoffSchema>;
export type Candidate = z.output<typeof CandidateSchema>;
export type CandidateInput = z.output<typeof InputSchema>;
export type RankKey = z.output<typeof RankKeySchema>;
export type ScoreConfig = z.output<typeof ScoreSchema>;
