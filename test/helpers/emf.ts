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
 * A mirrored request of candidate `service`: its 202 is no metric (the stable version counted the
 * request); its prediction, once done, counts under ModelVersion only, with its own latency.
 */
export function expectShadowMetrics(accepted: Line, predicted: Line, service: string): void {
  expect(accepted).toMatchObject({ status: 202 });
  expect(accepted).not.toHaveProperty('_aws');
  expect(accepted).not.toHaveProperty('Requests');
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
