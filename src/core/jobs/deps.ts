// What `mlship jobs` (and the compose smoke job) need from a queue and an object store,
// declared by core and implemented in adapters/aws/jobs-aws.ts over the SDK's SQS and S3
// clients: the same code against the local stack's servers and against AWS, where only
// the endpoints and credentials differ.

import type { Clock } from '../../io/clock.js';

export interface QueuedMessage {
  receipt: string;
  body: string;
}

export interface JobQueue {
  /** The queue's URL, or undefined when there is no such queue. */
  queueUrl(name: string): Promise<string | undefined>;
  /** Sends up to 10 bodies in one SendMessageBatch; the ids that SQS refused. */
  sendBatch(url: string, entries: { id: string; body: string }[]): Promise<{ id: string; reason: string }[]>;
  /** ApproximateNumberOfMessages (waiting) and ApproximateNumberOfMessagesNotVisible (being worked on). */
  counts(url: string): Promise<{ visible: number; inFlight: number }>;
  /** Up to 10 messages, invisible to others for `visibilitySeconds`. */
  receive(url: string, max: number, waitSeconds: number, visibilitySeconds: number): Promise<QueuedMessage[]>;
  deleteBatch(url: string, receipts: string[]): Promise<void>;
  /** Visible again at once. */
  release(url: string, receipts: string[]): Promise<void>;
}

export interface StoredObject {
  key: string;
  lastModified: number;
}

export interface JobStore {
  putJson(key: string, value: unknown): Promise<void>;
  /** The parsed object, or undefined when there is none. */
  getJson<T>(key: string): Promise<T | undefined>;
  /** Every object under the prefix (paged through). */
  list(prefix: string): Promise<StoredObject[]>;
  delete(key: string): Promise<void>;
}

/** Where a stack's jobs go: the queue of each worker and the bucket results land in. */
export interface JobTarget {
  /** "local" (the compose stack) or the AWS region. */
  where: string;
  stack: string;
  bucket: string;
  queueName(service: string): string;
  deadLetterName(service: string): string;
}

export interface JobsDeps {
  queue: JobQueue;
  store: JobStore;
  clock: Clock;
  log(line: string): void;
  /** Progress of a long step (sending, waiting): done of total. */
  progress?(label: string, done: number, total: number): void;
}
