import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planEcs } from '../../../src/core/deploy/plan.js';
import { parseScale } from '../../../src/core/deploy/scale.js';
import { UsageError } from '../../../src/io/errors.js';

async function plan() {
  const dir = path.join(os.tmpdir(), `mlship-scale-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'compose.yaml'),
    [
      'name: shop',
      'services:',
      '  api:',
      '    image: shop/api:dev',
      '  llm:',
      '    image: shop/llm:dev',
      '    deploy: { resources: { reservations: { devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }] } } }',
      '  embed:',
      '    image: shop/embed:dev',
      '    deploy: { resources: { reservations: { devices: [{ driver: nvidia, count: 1, capabilities: [gpu] }] } } }',
      '',
    ].join('\n'),
  );
  return planEcs({
    file: path.join(dir, 'compose.yaml'),
    region: 'eu-west-1',
    accountId: '123456789012',
    imageTag: 'x',
    force: true,
    writeFiles: false,
  });
}

describe('deploy ecs --scale', () => {
  it('names services, or a GPU service by any container of the shared GPU task', async () => {
    const p = await plan();
    expect([...parseScale('api=2,llm=0', p)]).toEqual([
      ['api', 2],
      ['shop-gpu', 0],
    ]);
    expect([...parseScale('llm=0,embed=0', p)]).toEqual([['shop-gpu', 0]]);
  });

  it('refuses what it cannot do, with the fix', async () => {
    const p = await plan();
    const err = (text: string) => {
      try {
        parseScale(text, p);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return `${(e as UsageError).message} | ${(e as UsageError).hint}`;
      }
      throw new Error('no error');
    };
    expect(err('api')).toBe('--scale "api" is not <service>=<tasks> | e.g. --scale web=2,llm=0');
    expect(err('api=-1')).toContain('is not <service>=<tasks>');
    expect(err('web=1')).toBe('--scale: no service web in stack shop | one of: shop-gpu, llm, embed, api');
    expect(err('llm=0,embed=1')).toBe(
      '--scale names shop-gpu twice with different counts | GPU services share the task shop-gpu: scale it once',
    );
    expect(err('')).toContain('--scale needs at least one');
  });
});
