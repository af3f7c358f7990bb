// The stack's files on AWS: the local S3-compatible server (mlship.yaml `storage:`, or a
// MinIO-like compose service with a data volume) becomes the stack's S3 bucket. The
// storage service leaves the task definitions; its clients lose the local endpoint and
// static keys (the SDKs use the task role) and get S3_BUCKET; the task role may read and
// write the bucket's objects, but not mlship's own prefix.

import { imageBaseName } from '../../config/image-ref.js';
import type { Project } from '../../config/schema.js';
import type { Stack, StackService, StackWarning } from '../../config/stack-model.js';
import { serviceWarning } from '../../config/stack-model.js';

export interface ManagedStorage {
  /** The stack service it replaces. */
  service: string;
  versioning: boolean;
  expireUploadsDays?: number;
}

const STORAGE_IMAGES = new Set(['minio', 'localstack', 'moto', 'seaweedfs']);

function isStorage(svc: StackService, project: Project | undefined): boolean {
  if (project?.storage) return svc.role === 'storage' && svc.name === 'storage';
  const base = svc.image ? imageBaseName(svc.image) : undefined;
  return svc.role === 'storage' && Boolean(base && STORAGE_IMAGES.has(base));
}

/** The stack with its object storage managed: the service removed, its clients pointed at the bucket. */
export function manageStorage(
  stack: Stack,
  project: Project | undefined,
  bucket: string,
): { stack: Stack; storage?: ManagedStorage; warnings: StackWarning[] } {
  const svc = stack.services.find((s) => isStorage(s, project));
  if (!svc) return { stack, warnings: [] };
  const warnings: StackWarning[] = [];
  const hostOf = (v: string) => /^[a-z][a-z0-9+.-]*:\/\/([^:/?#]+)/i.exec(v)?.[1];
  const services = stack.services
    .filter((s) => s !== svc)
    .map((s) => {
      const endpoint = Object.entries(s.environment).filter(
        ([, v]) => hostOf(v) === svc.name || v === svc.name,
      );
      const keys = s.secretEnv.filter((k) =>
        /(ACCESS_?KEY|SECRET_?(ACCESS_?)?KEY|ROOT_(USER|PASSWORD))$/i.test(k),
      );
      const plainKeys = Object.keys(s.environment).filter((k) => /ACCESS_KEY_ID$|ROOT_USER$/i.test(k));
      const uses = endpoint.length > 0 || s.dependsOn.some((d) => d.service === svc.name);
      if (!uses) return s;
      const environment = { ...s.environment };
      for (const [k] of endpoint) delete environment[k];
      for (const k of plainKeys) delete environment[k];
      environment.S3_BUCKET = bucket;
      if (!project)
        warnings.push(
          serviceWarning(
            stack,
            s,
            'environment',
            `its ${svc.name} endpoint and keys are dropped: on ECS it reaches the stack's bucket ${bucket} (S3_BUCKET) with the task role`,
            'read the bucket name from S3_BUCKET and let the SDK find credentials',
          ),
        );
      return {
        ...s,
        environment,
        secretEnv: s.secretEnv.filter((k) => !keys.includes(k)),
        dependsOn: s.dependsOn.filter((d) => d.service !== svc.name),
      };
    });
  return {
    stack: { ...stack, services },
    storage: {
      service: svc.name,
      versioning: project?.storage?.versioning ?? false,
      ...(project?.storage?.expire_uploads_days
        ? { expireUploadsDays: project.storage.expire_uploads_days }
        : {}),
    },
    warnings,
  };
}
