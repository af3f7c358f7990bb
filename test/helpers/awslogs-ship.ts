// The awslogs driver's job, done by a test: a local container's log lines (stdout and stderr,
// with the engine's timestamps) put into CloudWatch Logs (moto) under the group and stream the
// container's task definition names (`<awslogs-stream-prefix>/<container>/<task id>`), as ECS
// ships a task's output. `deploy ecs --local` runs the containers without the driver (the
// engine's awslogs driver would need AWS's endpoint; see docs/rollout.md).

import { spawnSync } from 'node:child_process';
import * as logsSdk from '@aws-sdk/client-cloudwatch-logs';
import type { ContainerDefinition } from '@aws-sdk/client-ecs';

/** PutLogEvents takes at most 10,000 events (and 1 MB) per call, in chronological order. */
const BATCH = 2_000;

/** The container's log lines with the engine's timestamps, oldest first. */
export function timedLogLines(container: string): { timestamp: number; message: string }[] {
  const r = spawnSync('docker', ['logs', '--timestamps', container], {
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`docker logs ${container}: ${r.stderr}`);
  const events: { timestamp: number; message: string }[] = [];
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n')) {
    const space = line.indexOf(' ');
    const timestamp = Date.parse(line.slice(0, space));
    if (space > 0 && Number.isFinite(timestamp) && line.slice(space + 1).trim())
      events.push({ timestamp, message: line.slice(space + 1) });
  }
  return events.sort((a, b) => a.timestamp - b.timestamp);
}

/**
 * Ships `container`'s lines as the awslogs driver of `def` would, for a task `taskId`; returns
 * the stream's name and how many events it put.
 */
export async function shipAsAwslogs(
  client: logsSdk.CloudWatchLogsClient,
  def: ContainerDefinition,
  container: string,
  taskId: string,
): Promise<{ stream: string; events: number }> {
  const options = def.logConfiguration?.options ?? {};
  const group = options['awslogs-group'];
  if (def.logConfiguration?.logDriver !== 'awslogs' || !group)
    throw new Error(`${def.name} does not log with awslogs`);
  const stream = `${options['awslogs-stream-prefix']}/${def.name}/${taskId}`;
  await client
    .send(new logsSdk.CreateLogGroupCommand({ logGroupName: group }))
    .catch((e: { name?: string }) => {
      if (e.name !== 'ResourceAlreadyExistsException') throw e;
    });
  await client.send(new logsSdk.CreateLogStreamCommand({ logGroupName: group, logStreamName: stream }));
  const events = timedLogLines(container);
  for (let i = 0; i < events.length; i += BATCH)
    await client.send(
      new logsSdk.PutLogEventsCommand({
        logGroupName: group,
        logStreamName: stream,
        logEvents: events.slice(i, i + BATCH),
      }),
    );
  return { stream, events: events.length };
}
