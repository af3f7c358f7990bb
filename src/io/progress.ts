// Progress for multi-step work. listr2's live renderer only on an interactive
// terminal that is not CI; everywhere else one plain line per state change, so
// logs stay readable in CI and in files.

import type { Writable } from 'node:stream';
import type { Styler } from './style.js';

export interface TaskControl {
  /** Replace the task's title (e.g. "building detector (step 3/9)"). */
  title(text: string): void;
  /** A line of task output (shown under the task, or as a plain line). */
  output(line: string): void;
}

export interface TaskSpec {
  title: string;
  run(control: TaskControl): Promise<void>;
}

export interface TaskOutcome {
  title: string;
  ok: boolean;
  error?: unknown;
  ms: number;
}

export interface RunTasksOptions {
  /** true, or the maximum number of tasks at once. */
  concurrent?: boolean | number;
  /** Stop scheduling new tasks after the first failure (default true). */
  exitOnError?: boolean;
}

export interface TaskRunner {
  run(tasks: TaskSpec[], options?: RunTasksOptions): Promise<TaskOutcome[]>;
}

function limitOf(concurrent: boolean | number | undefined, n: number): number {
  if (concurrent === true) return Math.max(1, n);
  if (typeof concurrent === 'number') return Math.max(1, concurrent);
  return 1;
}

/** Runs tasks with a concurrency limit, collecting every outcome. */
export async function runPool(
  tasks: TaskSpec[],
  options: RunTasksOptions,
  controlFor: (task: TaskSpec, index: number) => TaskControl,
  hooks: {
    start?(task: TaskSpec, index: number): void;
    end?(outcome: TaskOutcome, index: number): void;
  } = {},
): Promise<TaskOutcome[]> {
  const limit = limitOf(options.concurrent, tasks.length);
  const exitOnError = options.exitOnError ?? true;
  const outcomes: TaskOutcome[] = new Array(tasks.length);
  let next = 0;
  let failed = false;
  async function worker(): Promise<void> {
    while (next < tasks.length && !(failed && exitOnError)) {
      const index = next++;
      const task = tasks[index]!;
      hooks.start?.(task, index);
      const t0 = performance.now();
      try {
        await task.run(controlFor(task, index));
        outcomes[index] = { title: task.title, ok: true, ms: performance.now() - t0 };
      } catch (error) {
        failed = true;
        outcomes[index] = { title: task.title, ok: false, error, ms: performance.now() - t0 };
      }
      hooks.end?.(outcomes[index]!, index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return outcomes.filter(Boolean);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

/** One line per event on stderr; used in CI, pipes and non-TTY terminals. */
export class PlainTaskRunner implements TaskRunner {
  constructor(
    private readonly stderr: Writable,
    private readonly style: Styler,
  ) {}

  run(tasks: TaskSpec[], options: RunTasksOptions = {}): Promise<TaskOutcome[]> {
    const titles = tasks.map((t) => t.title);
    return runPool(
      tasks,
      options,
      (_task, i) => ({
        title: (text) => {
          titles[i] = text;
        },
        output: (line) => this.stderr.write(`  ${this.style('dim', `${titles[i]}:`)} ${line}\n`),
      }),
      {
        start: (_task, i) => this.stderr.write(`${this.style('accent', '•')} ${titles[i]}\n`),
        end: (outcome, i) => {
          const mark = outcome.ok ? this.style('ok', '✓') : this.style('fail', '✗');
          const why = outcome.ok
            ? ''
            : `: ${outcome.error instanceof Error ? outcome.error.message : String(outcome.error)}`;
          this.stderr.write(`${mark} ${titles[i]} ${this.style('dim', `(${seconds(outcome.ms)})`)}${why}\n`);
        },
      },
    );
  }
}

/** listr2's live renderer; loaded only when used (it is not cheap to import). */
export class ListrTaskRunner implements TaskRunner {
  async run(tasks: TaskSpec[], options: RunTasksOptions = {}): Promise<TaskOutcome[]> {
    const { Listr } = await import('listr2');
    const outcomes: TaskOutcome[] = [];
    const list = new Listr(
      tasks.map((spec) => ({
        title: spec.title,
        task: async (_ctx: unknown, task: { title: string; output: string }) => {
          const t0 = performance.now();
          try {
            await spec.run({
              title: (text) => {
                task.title = text;
              },
              output: (line) => {
                task.output = line;
              },
            });
            outcomes.push({ title: spec.title, ok: true, ms: performance.now() - t0 });
          } catch (error) {
            outcomes.push({ title: spec.title, ok: false, error, ms: performance.now() - t0 });
            throw error;
          }
        },
      })),
      {
        concurrent: options.concurrent ?? false,
        exitOnError: options.exitOnError ?? true,
        rendererOptions: { collapseErrors: false },
      },
    );
    try {
      await list.run();
    } catch {
      // Failures are reported through the outcomes; the caller decides what they mean.
    }
    return outcomes;
  }
}

export function wantsLiveProgress(env: NodeJS.ProcessEnv, stderrIsTTY: boolean): boolean {
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  return stderrIsTTY && !ci && env.TERM !== 'dumb';
}
