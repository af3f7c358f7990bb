// A full-screen view on the terminal (`mlship top`): the alternate screen with the cursor
// hidden, keys read one by one (raw mode), and a restore that always runs — on `q`, on
// Ctrl-C (which raw mode delivers as a byte, not SIGINT), on a signal, on an error and at
// process exit — and runs once. A shell left in raw mode (no echo, no line editing) is the
// bug this file exists to prevent.

export type KeyAction = 'quit' | 'interrupt' | 'refresh';

/** What a chunk of key bytes asks for: q/Q or Ctrl-D quits, Ctrl-C interrupts, r/space/Enter reads again now. */
export function keyAction(chunk: string): KeyAction | undefined {
  let action: KeyAction | undefined;
  for (const ch of chunk) {
    if (ch === '\u0003') return 'interrupt';
    if (ch === 'q' || ch === 'Q' || ch === '\u0004') return 'quit';
    if (ch === 'r' || ch === ' ' || ch === '\r') action = 'refresh';
  }
  return action;
}

export interface KeyInput {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
  setEncoding(encoding: BufferEncoding): unknown;
  on(event: 'data', listener: (chunk: string) => void): unknown;
  off(event: 'data', listener: (chunk: string) => void): unknown;
  resume(): unknown;
  pause(): unknown;
}

export interface ScreenOutput {
  write(text: string): unknown;
}

const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';

export interface Screen {
  /** Replaces what is shown with these lines. */
  draw(lines: string[]): void;
  /** Back to the shell's screen and line mode; safe to call more than once. */
  restore(): void;
}

/** Takes over the terminal; keys go to `onKey`. */
export function openScreen(
  input: KeyInput,
  output: ScreenOutput,
  onKey: (action: KeyAction) => void,
): Screen {
  const raw = Boolean(input.isTTY && input.setRawMode);
  const listener = (chunk: string) => {
    const action = keyAction(chunk);
    if (action) onKey(action);
  };
  if (raw) {
    input.setRawMode!(true);
    input.setEncoding('utf8');
    input.on('data', listener);
    input.resume();
  }
  output.write(ENTER);
  let restored = false;
  return {
    draw(lines) {
      if (restored) return;
      // Home, each line cleared to its end, then everything below cleared: no flicker, no leftovers.
      output.write(`\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\r\n')}\x1b[J`);
    },
    restore() {
      if (restored) return;
      restored = true;
      output.write(LEAVE);
      if (raw) {
        input.off('data', listener);
        input.setRawMode!(false);
        input.pause();
      }
    },
  };
}
