// Where `mlship jobs` finds a stack's queues and bucket: the local compose stack (the queue
// and storage servers published on 127.0.0.1, the storage password from the stack's .env)
// or AWS (the deploy's names: the same queue names, the stack's bucket in the region).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { deadLetterQueueName, jobQueueName } from '../../config/job-queues.js';
import { loadProject } from '../../config/load.js';
import type { Project } from '../../config/schema.js';
import { UsageError } from '../../io/errors.js';
import { parseEnv } from '../compose/generate.js';
import { stackBucketName } from '../deploy/weights.js';
import type { JobTarget } from './deps.js';

export interface LocalEndpoints {
  sqs: string;
  s3: string;
  accessKeyId: string;
  secretAccessKey: string;
}

function targetOf(project: Project, where: string, bucket: string): JobTarget {
  return {
    where,
    stack: project.name,
    bucket,
    queueName: (service) => jobQueueName(project.name, service),
    deadLetterName: (service) => deadLetterQueueName(project.name, service),
  };
}

/** The service must exist and have a worker. */
export function checkWorkerService(project: Project, service: string, file: string): void {
  const svc = project.services[service];
  if (!svc) {
    throw new UsageError(`${file} has no service ${service}`, {
      hint: `services: ${Object.keys(project.services).join(', ') || 'none'}`,
    });
  }
  if (!svc.worker) {
    throw new UsageError(`service ${service} has no worker`, {
      hint: `add \`worker: {}\` under services.${service} (and \`queue: {}\` at the top level) in ${file}`,
    });
  }
}

export async function localJobTarget(
  configFile: string,
  outDir?: string,
): Promise<{ project: Project; target: JobTarget; endpoints: LocalEndpoints }> {
  const project = await loadProject(configFile);
  if (!project.queue || !project.storage) {
    throw new UsageError(`${configFile} has no ${project.queue ? 'storage' : 'queue'}: section`, {
      hint: 'jobs need `queue: {}` and `storage: {}` in mlship.yaml, and a service with `worker: {}`',
    });
  }
  const dir = path.resolve(outDir ?? path.join(path.dirname(path.resolve(configFile)), 'deploy', 'compose'));
  const env = parseEnv(await readFile(path.join(dir, '.env'), 'utf8').catch(() => ''));
  const secret = env.get('STORAGE_PASSWORD');
  if (!secret) {
    throw new UsageError(`no STORAGE_PASSWORD in ${path.join(dir, '.env')}`, {
      hint: 'start the local stack first: `mlship compose up`',
    });
  }
  return {
    project,
    target: targetOf(project, 'local', project.storage.bucket),
    endpoints: {
      sqs: `http://127.0.0.1:${project.queue.host_port}`,
      s3: `http://127.0.0.1:${project.storage.host_port}`,
      accessKeyId: 'mlship',
      secretAccessKey: secret,
    },
  };
}

export function awsJobTarget(project: Project, region: string, accountId: string): JobTarget {
  return targetOf(project, region, stackBucketName(project.name, accountId, region));
}
