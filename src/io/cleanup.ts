// Cleanups registered by running operations (containers to remove, temp dirs).
// main wires SIGINT/SIGTERM to `runAll`, so Ctrl-C never leaves a container behind.

export type Cleanup = () => Promise<void> | void;

export class CleanupRegistry {
  private readonly entries = new Map<number, { name: string; fn: Cleanup }>();
  private nextId = 0;

  /** Registers a cleanup; returns a function that unregisters it (call when done normally). */
  add(name: string, fn: Cleanup): () => void {
    const id = this.nextId++;
    this.entries.set(id, { name, fn });
    return () => {
      this.entries.delete(id);
    };
  }

  get size(): number {
    return this.entries.size;
  }

  /** Runs every cleanup (newest first), each bounded by `timeoutMs`; never throws. */
  async runAll(timeoutMs = 5000, onError?: (name: string, error: unknown) => void): Promise<void> {
    const all = [...this.entries.values()].reverse();
    this.entries.clear();
    await Promise.all(
      all.map(async ({ name, fn }) => {
        let timer: NodeJS.Timeout | undefined;
        try {
          await Promise.race([
            Promise.resolve().then(fn),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`cleanup timed out after ${timeoutMs} ms`)),
                timeoutMs,
              );
            }),
          ]);
        } catch (error) {
          onError?.(name, error);
        } finally {
          if (timer) clearTimeout(timer);
        }
      }),
    );
  }
}
