// After the whole docker tier: nothing labelled by mlship may be left running or
// stopped. Leftovers are removed (so the machine stays clean) and fail the run.

import { execFileSync } from 'node:child_process';

function managedContainers(): string[] {
  try {
    const out = execFileSync(
      'docker',
      ['ps', '-a', '--filter', 'label=dev.mlship.managed', '--format', '{{.ID}} {{.Image}} {{.Names}}'],
      {
        encoding: 'utf8',
      },
    );
    return out.split('\n').filter(Boolean);
  } catch {
    return []; // no engine: the tests themselves report that
  }
}

export function setup(): void {
  // Leftovers from an earlier interrupted run are not this run's fault: clear them.
  for (const line of managedContainers())
    execFileSync('docker', ['rm', '-f', '-v', line.split(' ')[0]!], { stdio: 'ignore' });
}

export function teardown(): void {
  const left = managedContainers();
  if (left.length === 0) return;
  for (const line of left)
    execFileSync('docker', ['rm', '-f', '-v', line.split(' ')[0]!], { stdio: 'ignore' });
  throw new Error(
    `containers labelled dev.mlship.managed were left behind by the tests:\n${left.join('\n')}`,
  );
}
