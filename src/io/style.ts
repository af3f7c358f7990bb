// Colour decisions: FORCE_COLOR wins, then NO_COLOR (https://no-color.org), then
// whether the stream is a terminal. Only the io layer colours text.

import { Chalk, type ChalkInstance } from 'chalk';

export type Tone = 'plain' | 'ok' | 'warn' | 'fail' | 'dim' | 'bold' | 'accent';

export interface Styler {
  (tone: Tone, text: string): string;
  readonly enabled: boolean;
}

export type ColorLevel = 0 | 1 | 2 | 3;

export function colorLevel(env: NodeJS.ProcessEnv, isTTY: boolean): ColorLevel {
  const force = env.FORCE_COLOR;
  if (force !== undefined) {
    if (force === '0' || force === 'false') return 0;
    const n = Number.parseInt(force, 10);
    return (n >= 1 && n <= 3 ? n : 1) as ColorLevel;
  }
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 0;
  if (!isTTY || env.TERM === 'dumb') return 0;
  return 1;
}

export function createStyler(level: ColorLevel): Styler {
  const chalk: ChalkInstance = new Chalk({ level });
  const paint: Record<Tone, (s: string) => string> = {
    plain: (s) => s,
    ok: chalk.green,
    warn: chalk.yellow,
    fail: chalk.red,
    dim: chalk.dim,
    bold: chalk.bold,
    accent: chalk.cyan,
  };
  const styler = ((tone: Tone, text: string) => paint[tone](text)) as Styler;
  Object.defineProperty(styler, 'enabled', { value: level > 0 });
  return styler;
}
