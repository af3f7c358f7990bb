// After the whole docker tier: nothing labelled by mlship that this run created
// may be left behind. Containers that existed before the run are not judged (and
// never touched: another test run may be using the same engine).

import { execFileSync } from 'node:child_process';

function managedContainers(): Map<string, string> {
  try {
    const out = execFileSync(
      'docker',
      [
        'ps',
        '-a',
        '--filter',
        'label=dev.mlship.managed',
        '--format',
        '{{.ID}} {{.Image}} {{.Names}} {{.Status}}',
      ],
      { encoding: 'utf8' },
    );
    return new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => [l.split(' ')[0]!, l]),
    );
  } catch {
    return new Map(); // no engine: the tests themselves report that
  }
}

let before = new Map<string, string>();

export function setup(): void {
  before = managedContainers();
}

export function teardown(): void {
  const left = [...managedContainers()].filter(([id]) => !before.has(id)).map(([, line]) => line);
  if (left.length === 0) return;
  throw new Error(
    `containers labelled dev.mlship.managed were left behind by this test run (a test run sharing this engine would show here too):\n${left.join('\n')}`,
  );
}
