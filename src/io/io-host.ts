// The one place output goes through. Results go to stdout (text, or one JSON
// object with --json); everything else (progress, logs, warnings) to stderr, so
// that `mlship ... --json | jq` always works.

import type { Writable } from 'node:stream';
import type { TaskRunner } from './progress.js';
import type { Prompter } from './prompts.js';
import type { Styler } from './style.js';

export interface IoHost {
  /** Human log line on stderr. */
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Shown only with --debug. */
  debug(message: string): void;
  /** The command's result: `text` for people, `data` with --json. Written once. */
  result(data: unknown, text: string): void;
  /**
   * A failed command's JSON answer (`{ ok: false, error }`) on stdout with --json, unless the
   * command already wrote its result: stdout carries one JSON object, whatever happens.
   */
  failure(error: unknown): void;
  readonly style: Styler;
  readonly json: boolean;
  readonly debugEnabled: boolean;
  readonly prompter: Prompter;
  readonly tasks: TaskRunner;
}

export interface Streams {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
}

export interface IoHostOptions {
  streams: Streams;
  json: boolean;
  debug: boolean;
  style: Styler;
  prompter: Prompter;
  tasks: TaskRunner;
}

export class StreamIoHost implements IoHost {
  readonly json: boolean;
  readonly debugEnabled: boolean;
  readonly style: Styler;
  readonly prompter: Prompter;
  readonly tasks: TaskRunner;
  private readonly streams: Streams;
  private wroteResult = false;

  constructor(options: IoHostOptions) {
    this.streams = options.streams;
    this.json = options.json;
    this.debugEnabled = options.debug;
    this.style = options.style;
    this.prompter = options.prompter;
    this.tasks = options.tasks;
  }

  info(message: string): void {
    this.streams.stderr.write(`${message}\n`);
  }

  warn(message: string): void {
    this.streams.stderr.write(`${this.style('warn', 'warning:')} ${message}\n`);
  }

  error(message: string): void {
    this.streams.stderr.write(`${this.style('fail', 'error:')} ${message}\n`);
  }

  debug(message: string): void {
    if (this.debugEnabled) this.streams.stderr.write(`${this.style('dim', `debug: ${message}`)}\n`);
  }

  failure(error: unknown): void {
    if (!this.json || this.wroteResult) return;
    this.wroteResult = true;
    this.streams.stdout.write(`${JSON.stringify({ ok: false, error }, null, 2)}\n`);
  }

  result(data: unknown, text: string): void {
    if (this.wroteResult) throw new Error('IoHost.result called twice');
    this.wroteResult = true;
    if (this.json) {
      this.streams.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    } else if (text.length > 0) {
      this.streams.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    }
  }
}
