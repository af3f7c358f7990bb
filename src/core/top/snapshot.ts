// One screen of `mlship top`, as data: what the renderer draws and `--json` prints. The same
// shape for the local stack (scrapes of the services' /metrics) and for ECS (CloudWatch).

export type ServiceRole = 'model' | 'worker' | 'proxy' | 'other';

export interface TopService {
  name: string;
  role: ServiceRole;
  /** The versions (image tags) its replicas report, when it has metrics. */
  versions: string[];
  replicas: { running: number; desired: number };
  /** Prediction requests answered per second over the window (models; the proxy on ECS). */
  requestsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  /** 5xx answers as a share (0..1) of the requests in the window. */
  errorRate?: number;
  inFlight?: number;
  /** Why a model's numbers are missing (its /metrics could not be read, no data yet). */
  note?: string;
}

export interface TopQueue {
  /** The model service whose worker consumes it. */
  service: string;
  name: string;
  /** Messages waiting (ApproximateNumberOfMessages). */
  waiting: number;
  /** Being worked on (ApproximateNumberOfMessagesNotVisible). */
  inFlight: number;
  deadLetters: number;
}

export interface TopSnapshot {
  stack: string;
  /** "local", or the AWS region. */
  where: string;
  /** ISO time of the newest reading. */
  at: string;
  /** The window the rates are over, in seconds. */
  windowSeconds: number;
  services: TopService[];
  queues: TopQueue[];
  /** Whole-stack remarks (e.g. "CloudWatch metrics lag by about a minute"). */
  notes: string[];
}

/** Where snapshots come from: each call measures since the previous one (the first waits `warmupMs`). */
export interface TopSource {
  snapshot(warmupMs: number): Promise<TopSnapshot>;
}

/** Queue counts, as core/jobs declares them (SQS on AWS, ElasticMQ locally). */
export interface QueueCounts {
  queueUrl(name: string): Promise<string | undefined>;
  counts(url: string): Promise<{ visible: number; inFlight: number }>;
}

export interface StackQueue {
  service: string;
  name: string;
  deadLetter: string;
}

/** Each queue's counts; a queue that does not exist (yet) is left out. */
export async function queueCounts(queues: StackQueue[], sqs: QueueCounts): Promise<TopQueue[]> {
  const out: TopQueue[] = [];
  for (const q of queues) {
    const [url, dlq] = await Promise.all([sqs.queueUrl(q.name), sqs.queueUrl(q.deadLetter)]);
    if (!url) continue;
    const [c, d] = await Promise.all([
      sqs.counts(url),
      dlq ? sqs.counts(dlq) : Promise.resolve({ visible: 0, inFlight: 0 }),
    ]);
    out.push({
      service: q.service,
      name: q.name,
      waiting: c.visible,
      inFlight: c.inFlight,
      deadLetters: d.visible + d.inFlight,
    });
  }
  return out;
}
