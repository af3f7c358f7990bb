// The stack model: what `compose` runs and what `deploy` translates. Built from
// mlship.yaml or imported from a user's compose file; either way the same shape,
// so every later step works with one model and never with raw YAML.

export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** Something in the input that mlship cannot carry over, located precisely. */
export interface StackWarning extends SourceLocation {
  /** Field path such as `services.web.cap_add`. */
  path: string;
  message: string;
  fix?: string;
}

export interface PortMapping {
  container: number;
  /** Host/published port; undefined when only exposed to the other services. */
  published?: number;
  protocol: 'tcp' | 'udp';
  hostIp?: string;
  /** Name used by Service Connect and in generated configs. */
  name?: string;
  appProtocol?: 'http' | 'http2' | 'grpc';
}

export interface VolumeMount {
  type: 'bind' | 'volume' | 'tmpfs';
  /** Host path (bind, relative to the stack file) or named volume. */
  source?: string;
  target: string;
  readOnly: boolean;
}

export interface HealthCheck {
  /** Docker form: ["CMD", ...] or ["CMD-SHELL", "..."]. */
  test: string[];
  intervalSeconds?: number;
  timeoutSeconds?: number;
  retries?: number;
  startPeriodSeconds?: number;
}

export interface BuildSpec {
  context: string;
  dockerfile?: string;
  target?: string;
  args?: Record<string, string>;
}

export type ServiceRole =
  | 'model'
  | 'worker'
  | 'proxy'
  | 'database'
  | 'storage'
  | 'queue'
  | 'frontend'
  | 'other';

/** Where a model service's weights come from (mlship.yaml stacks: the wrapped service's manifest). */
export interface ModelWeights {
  /** A local file that deploy uploads to the stack's bucket (locally it is mounted read-only). */
  local?: { path: string; target: string };
  /** Where the service already downloads them from (weights.url, or wrap --weights-url). */
  url?: string;
  sha256?: string;
}

export interface StackService {
  name: string;
  role: ServiceRole;
  weights?: ModelWeights;
  image?: string;
  build?: BuildSpec;
  command?: string[];
  entrypoint?: string[];
  /** Plain settings. Values of `secretEnv` names are never stored here. */
  environment: Record<string, string>;
  /** Environment variable names whose values are secrets (sources kept out of files). */
  secretEnv: string[];
  /** Secrets read from a given reference (e.g. a key of the stack's database secret), by variable. */
  secretFrom?: Record<string, string>;
  /** mlship's own settings of a compose service (`x-mlship:`), e.g. `aws.kind` of a database. */
  extensions?: { aws?: Record<string, unknown> };
  /** File secrets (compose `secrets:`), by name, with the path they are mounted at. */
  secrets: { name: string; target: string }[];
  ports: PortMapping[];
  volumes: VolumeMount[];
  dependsOn: { service: string; condition: 'started' | 'healthy' | 'completed' }[];
  healthcheck?: HealthCheck;
  cpus?: number;
  memoryBytes?: number;
  /** GPUs requested: a count, or "all". */
  gpus?: number | 'all';
  restart?: 'no' | 'always' | 'on-failure' | 'unless-stopped';
  user?: string;
  workingDir?: string;
  stopGraceSeconds?: number;
  /**
   * Kernel settings of the service's own namespaces (compose's `sysctls`, ECS's `systemControls`,
   * a pod's securityContext): namespaced ones only (config/sysctls.ts).
   */
  sysctls?: Record<string, string>;
  labels: Record<string, string>;
  profiles: string[];
  /** Where the service is defined, for messages. */
  origin?: SourceLocation;
  /** Where each of its top-level fields is (by compose key), for messages about that field. */
  fieldOrigins?: Record<string, SourceLocation>;
}

export interface StackSecret {
  name: string;
  /** Where the value comes from: a local file, an environment variable, or an external store. */
  source: { kind: 'file'; path: string } | { kind: 'environment'; variable: string } | { kind: 'external' };
}

export interface Stack {
  name: string;
  /** The file the stack was read from. */
  file: string;
  services: StackService[];
  volumes: string[];
  secrets: StackSecret[];
  warnings: StackWarning[];
}

/**
 * A warning about a service's field, located where that field (else the service) was written,
 * for translations of the stack (ECS, Kubernetes).
 */
export function serviceWarning(
  stack: Pick<Stack, 'file'>,
  svc: StackService,
  field: string,
  message: string,
  fix?: string,
): StackWarning {
  const at = svc.fieldOrigins?.[field.split('.')[0] ?? ''] ?? svc.origin;
  return {
    file: at?.file ?? stack.file,
    line: at?.line ?? 1,
    column: at?.column ?? 1,
    path: `services.${svc.name}${field ? `.${field}` : ''}`,
    message,
    ...(fix ? { fix } : {}),
  };
}
