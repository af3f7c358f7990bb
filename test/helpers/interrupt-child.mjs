// A child process for test/docker/interrupt.test.ts: starts two long-running
// containers through the compiled adapter, with mlship's signal handling, then
// waits to be interrupted. Prints "started" when both containers run.
import { DockerEngine } from '../../dist/adapters/docker/engine.js';
import { CleanupRegistry } from '../../dist/io/cleanup.js';
import { installSignalHandlers } from '../../dist/io/signals.js';

const [image, runLabel] = process.argv.slice(2);
const cleanup = new CleanupRegistry();
installSignalHandlers(
  process,
  cleanup,
  (l) => process.stderr.write(`${l}\n`),
  (c) => process.exit(c),
);
const engine = await DockerEngine.connect(undefined, cleanup);
const labels = { 'dev.mlship.run': runLabel };
await engine.start({ image, labels, cmd: ['sleep', '300'] });
await engine.start({ image, labels, cmd: ['sleep', '300'] });
process.stdout.write('started\n');
setInterval(() => undefined, 1000);
