// A test that needs a tool the machine may lack: locally it is skipped with the reason
// printed; on CI (`CI` set) a missing tool is an error, so CI can never pass by skipping.
// Use: `const has = requires('docker-compose', available, 'install docker-compose');
// it.skipIf(!has)(...)` — never a silent `return` inside a test.

import { CI } from './docker.js';

export function requires(tool: string, available: boolean, fix: string): boolean {
  if (available) return true;
  if (CI) throw new Error(`CI is set but ${tool} is missing (${fix}); tests must not skip on CI`);
  console.warn(`skipping the tests that need ${tool}: it is missing (${fix})`);
  return false;
}
