// What a wrapped service's log lines must say as CloudWatch metrics (embedded metric format)
// when it runs as a rollout's shadow: the same contract for the Python and the Node runtime.

import { expect } from 'vitest';

type Line = Record<string, unknown> | undefined;

/** The dimension sets of an embedded-metric line (undefined: the line is no metric). */
export function emfDimensions(line: Line): string[][] | undefined {
  return (line?._aws as { CloudWatchMetrics: { Dimensions: string[][] }[] } | undefined)?.CloudWatchMetrics[0]
    ?.Dimensions;
}

/**
 * The log lines of one mirrored request to candidate `service`: its 202 writes none (the stable
 * version logged and counted the request); its prediction, once done, writes one, a metric under
 * ModelVersion only, with its own latency.
 */
export function expectShadowLines(lines: Line[], service: string): void {
  expect(lines.map((l) => l?.msg)).toEqual(['shadow']);
  const predicted = lines[0];
  expect(emfDimensions(predicted)).toEqual([['Service', 'ModelVersion']]);
  expect(predicted).toMatchObject({
    Service: service,
    ModelVersion: 'candidate',
    Requests: 1,
    Errors5xx: 0,
    status: 200,
  });
  expect(Math.abs((predicted!.Latency as number) - (predicted!.duration_ms as number))).toBeLessThan(0.01);
}
