#!/usr/bin/env node
// Checks the Node version before loading anything that needs a newer one, so an
// old Node gets one clear line instead of a syntax error.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(
    `mlship needs Node.js >= 22.12 (this is ${process.version}); install Node 22 LTS or newer and run it again.\n`,
  );
  process.exit(3);
}
const { main } = await import('../dist/cli/main.js');
await main();
