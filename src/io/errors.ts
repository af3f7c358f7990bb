// Typed errors with stable codes. Core and adapters throw these; only `main`
// renders them and turns them into an exit code (STYLE: fail once, at the edge).

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  environment: 3,
  interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export type ErrorKind = 'failed' | 'usage' | 'environment' | 'interrupted';

const exitCodeOf: Record<ErrorKind, ExitCodeValue> = {
  failed: ExitCode.failed,
  usage: ExitCode.usage,
  environment: ExitCode.environment,
  interrupted: ExitCode.interrupted,
};

export interface MlshipErrorOptions {
  /** What the user should do about it, one sentence. */
  hint?: string;
  /** Extra lines shown under the message (build output, log tail, ...). */
  details?: string[];
  cause?: unknown;
}

export class MlshipError extends Error {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly details: string[];

  constructor(code: string, kind: ErrorKind, message: string, options: MlshipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.kind = kind;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  get exitCode(): ExitCodeValue {
    return exitCodeOf[this.kind];
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details.length ? { details: this.details } : {}),
    };
  }
}

export class UsageError extends MlshipError {
  constructor(message: string, options: MlshipErrorOptions = {}) {
    super('USAGE', 'usage', message, options);
  }
}

/** One problem in a config file, located precisely enough for an editor to jump to it. */
export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Field path such as `services.detector.port`; empty for whole-file problems. */
  path: string;
  message: string;
  fix?: string;
}

export function formatProblem(p: ConfigProblem): string {
  const where = `${p.file}:${p.line}:${p.column}`;
  const field = p.path ? ` ${p.path}:` : '';
  const fix = p.fix ? ` (fix: ${p.fix})` : '';
  return `${where}${field} ${p.message}${fix}`;
}

export class ConfigError extends MlshipError {
  readonly problems: ConfigProblem[];
  constructor(file: string, problems: ConfigProblem[]) {
    const n = problems.length;
    super('CONFIG_INVALID', 'usage', `${file} has ${n} problem${n === 1 ? '' : 's'}`, {
      details: problems.map(formatProblem),
      hint: 'fix the fields listed above; `mlship validate` re-checks the file',
    });
    this.problems = problems;
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), problems: this.problems };
  }
}

export class FileExistsError extends MlshipError {
  constructor(file: string) {
    super('FILE_EXISTS', 'usage', `${file} already exists`, {
      hint: 'pass --force to overwrite it, or choose another path',
    });
  }
}

export class DockerUnavailableError extends MlshipError {
  constructor(where: string, reason: string, hint?: string) {
    super('DOCKER_UNAVAILABLE', 'environment', `Docker engine not reachable at ${where}: ${reason}`, {
      hint:
        hint ??
        'start the engine (`sudo systemctl start docker`, or `sudo dockerd &`, or start Docker Desktop), or point DOCKER_HOST at a running one',
    });
  }
}

export class ImageNotFoundError extends MlshipError {
  constructor(image: string, hint?: string) {
    super('IMAGE_NOT_FOUND', 'failed', `image ${image} not found`, {
      hint: hint ?? `build it first, or pull it with \`docker pull ${image}\``,
    });
  }
}

export class BuildFailedError extends MlshipError {
  readonly step: string | undefined;
  constructor(message: string, step: string | undefined, output: string[]) {
    super(
      'BUILD_FAILED',
      'failed',
      step ? `image build failed at ${step}: ${message}` : `image build failed: ${message}`,
      {
        details: output,
        hint: 'the output of the failing step is shown above; fix the Dockerfile or the files it copies',
      },
    );
    this.step = step;
  }
}

export class RegistryAuthError extends MlshipError {
  constructor(registry: string, reason: string) {
    super('REGISTRY_AUTH_FAILED', 'environment', `registry ${registry} refused the credentials: ${reason}`, {
      hint: 'log in again (for ECR, mlship fetches a fresh token; check your AWS credentials and region)',
    });
  }
}

export class EngineError extends MlshipError {
  constructor(message: string, options: MlshipErrorOptions = {}) {
    super('ENGINE_ERROR', 'failed', message, options);
  }
}

export class CredentialsError extends MlshipError {
  constructor(message: string, hint?: string) {
    super('CREDENTIALS_MISSING', 'environment', message, {
      hint: hint ?? 'configure AWS credentials (aws configure, AWS_PROFILE, or aws sso login) and a region',
    });
  }
}

/** A tool or service the machine lacks (exit 3). */
export class EnvironmentError extends MlshipError {
  constructor(code: string, message: string, options: MlshipErrorOptions = {}) {
    super(code, 'environment', message, options);
  }
}

export class OperationFailedError extends MlshipError {
  constructor(code: string, message: string, options: MlshipErrorOptions = {}) {
    super(code, 'failed', message, options);
  }
}

export function isMlshipError(e: unknown): e is MlshipError {
  return e instanceof MlshipError;
}
