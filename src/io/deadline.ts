// A deadline for a request that keeps the process alive while it waits. AbortSignal.timeout's
// timer is unref'd: when the request itself holds nothing open (a connection the engine's port
// proxy accepted before the container listens can leave fetch pending with no live handle),
// Node finds nothing left to do and exits mid-await ("unsettled top-level await") instead of
// timing the request out. This timer is ref'd, so the deadline always fires; call `done()`
// once the answer (body included) is read.

export interface Deadline {
  signal: AbortSignal;
  done(): void;
}

export function deadline(ms: number): Deadline {
  const abort = new AbortController();
  const timer = setTimeout(
    () => abort.abort(new DOMException(`no answer within ${Math.round(ms / 1000)} s`, 'TimeoutError')),
    ms,
  );
  return { signal: abort.signal, done: () => clearTimeout(timer) };
}
