// Reads a real-world compose file into the stack model. Compose files in the
// wild use every syntax the spec allows (short and long forms, lists and maps,
// numbers where strings are expected), so each field is read defensively; what
// cannot be carried over becomes a warning at its file:line:column, never a crash.

import path from 'node:path';
import { type Document, isMap, isNode, isPair, isScalar, LineCounter, type Node, parseDocument } from 'yaml';
import type {
  BuildSpec,
  HealthCheck,
  PortMapping,
  ServiceRole,
  Stack,
  StackSecret,
  StackService,
  StackWarning,
  VolumeMount,
} from '../../config/stack-model.js';
import { ecsAccepts } from '../../config/sysctls.js';
import { ConfigError, type ConfigProblem } from '../../io/errors.js';

type Path = (string | number)[];

/** Service-level fields that carry over to the stack model as they are. */
const CARRIED = new Set([
  'image',
  'build',
  'command',
  'entrypoint',
  'environment',
  'ports',
  'expose',
  'volumes',
  'depends_on',
  'healthcheck',
  'deploy',
  'restart',
  'user',
  'working_dir',
  'stop_grace_period',
  'labels',
  'profiles',
  'secrets',
  'mem_limit',
  'cpus',
  'sysctls',
]);

/** Fields mlship reads but cannot carry, with why and what to do instead. */
const NOT_CARRIED: Record<string, { message: string; fix?: string }> = {
  container_name: {
    message: 'container names are derived from the stack and service names',
    fix: 'remove it',
  },
  networks: {
    message:
      'custom networks are not carried over: every service of the stack shares one network (awsvpc on ECS)',
    fix: 'remove it; services reach each other by service name',
  },
  network_mode: { message: 'network_mode is not carried over (ECS tasks use awsvpc)', fix: 'remove it' },
  env_file: {
    message: 'env_file is not read: its values could be secrets and would be copied into generated files',
    fix: 'list plain settings under environment:, and secrets under secrets:',
  },
  privileged: { message: 'privileged containers are not carried over (Fargate does not allow them)' },
  cap_add: { message: 'added capabilities are not carried over' },
  cap_drop: { message: 'dropped capabilities are not carried over' },
  devices: {
    message:
      'host devices are not carried over; GPUs are requested with deploy.resources.reservations.devices',
  },
  runtime: {
    message:
      'container runtimes are not carried over; GPUs are requested with deploy.resources.reservations.devices',
  },
  platform: { message: 'platform is not carried over; images are built for the machine that builds them' },
  hostname: { message: 'hostnames are not carried over; services are reached by service name' },
  extra_hosts: { message: 'extra host entries are not carried over' },
  dns: { message: 'DNS settings are not carried over' },
  ulimits: { message: 'ulimits are not carried over' },
  tmpfs: { message: 'tmpfs mounts are not carried over' },
  stop_signal: {
    message: 'stop_signal is not carried over: services get SIGTERM, then SIGKILL after the grace period',
  },
  links: {
    message: 'links are legacy and not carried over; services reach each other by service name',
    fix: 'remove it',
  },
  logging: {
    message: 'logging drivers are not carried over; mlship configures logs per target (awslogs on ECS)',
  },
  pid: { message: 'pid namespace sharing is not carried over' },
  ipc: { message: 'ipc namespace sharing is not carried over' },
  security_opt: { message: 'security options are not carried over' },
  init: { message: 'init is not carried over' },
  tty: { message: 'tty is not carried over' },
  stdin_open: { message: 'stdin_open is not carried over' },
  volumes_from: {
    message: 'volumes_from is not carried over',
    fix: 'mount the same named volume in both services',
  },
  shm_size: { message: 'shm_size is not carried over' },
  configs: {
    message: 'compose configs are not carried over',
    fix: 'mount the file as a read-only volume instead',
  },
  domainname: { message: 'domainname is not carried over' },
  mac_address: { message: 'mac_address is not carried over' },
};

export class ComposeReader {
  readonly warnings: StackWarning[] = [];
  private readonly lineCounter = new LineCounter();
  private readonly doc: Document;

  constructor(
    private readonly file: string,
    text: string,
  ) {
    this.doc = parseDocument(text, {
      lineCounter: this.lineCounter,
      prettyErrors: false,
      uniqueKeys: true,
      merge: true,
    });
  }

  private at(p: Path, key = false): { line: number; column: number } {
    let node: unknown;
    if (key && p.length > 0) {
      const parent = p.length > 1 ? this.doc.getIn(p.slice(0, -1), true) : this.doc.contents;
      if (isMap(parent)) {
        const pair = parent.items.find(
          (i) => isPair(i) && isScalar(i.key) && String(i.key.value) === String(p[p.length - 1]),
        );
        if (pair && isNode(pair.key)) node = pair.key;
      }
    }
    for (let n = p.length; node === undefined && n >= 0; n--) {
      const candidate = n === 0 ? this.doc.contents : this.doc.getIn(p.slice(0, n), true);
      if (isNode(candidate)) node = candidate;
    }
    const offset = (node as Node | undefined)?.range?.[0] ?? 0;
    const pos = this.lineCounter.linePos(offset);
    return { line: pos.line, column: pos.col };
  }

  warn(p: Path, message: string, fix?: string, onKey = true): void {
    this.warnings.push({
      file: this.file,
      ...this.at(p, onKey),
      path: p.map(String).join('.'),
      message,
      ...(fix ? { fix } : {}),
    });
  }

  syntaxProblems(): ConfigProblem[] {
    return this.doc.errors.map((e) => {
      const pos = this.lineCounter.linePos(e.pos[0]);
      return {
        file: this.file,
        line: pos.line,
        column: pos.col,
        path: '',
        message: `YAML syntax: ${e.message.split('\n')[0]}`,
        fix: 'check indentation and quoting on this line',
      };
    });
  }

  data(): unknown {
    // Interpolation (${VAR}) is left as written: values are not resolved from this
    // machine's environment, so a generated file never captures a local secret.
    return this.doc.toJS({ maxAliasCount: 1000 });
  }

  location(p: Path): { file: string; line: number; column: number } {
    return { file: this.file, ...this.at(p, true) };
  }
}

// --- value parsers ------------------------------------------------------------

const DURATION_UNITS: Record<string, number> = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Compose durations: "1m30s", "10s", "500ms", or a number of seconds. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (!text) return undefined;
  let total = 0;
  let rest = text;
  const re = /^(\d+(?:\.\d+)?)(us|ms|s|m|h)/;
  while (rest) {
    const m = re.exec(rest);
    if (!m) return undefined;
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  b: 1,
  k: 1024,
  kb: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
};

/** Compose byte sizes: "512m", "1.5G", "50M", 1048576. */
export function parseBytes(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? '').toLowerCase().replace(/i?b?$/, (s) => (s.startsWith('i') ? '' : s));
  const factor = unit === '' ? 1 : (SIZE_UNITS[unit] ?? SIZE_UNITS[`${unit}b`]);
  return factor === undefined ? undefined : Math.round(Number(m[1]) * factor);
}

function str(value: unknown): string | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'object' ? undefined : String(value);
}

/** Splits a shell-form command the way compose does (quotes respected, no expansion). */
export function splitCommand(value: unknown): string[] | undefined {
  if (Array.isArray(value)) return value.map((v) => String(v));
  if (typeof value !== 'string') return undefined;
  const out: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let any = false;
  for (const ch of value) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      any = true;
    } else if (/\s/.test(ch)) {
      if (cur || any) out.push(cur);
      cur = '';
      any = false;
    } else {
      cur += ch;
    }
  }
  if (cur || any) out.push(cur);
  return out;
}

const SECRET_NAME = /(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)(_FILE)?$/i;

/** Whether an environment variable name looks like it holds a secret. */
export function looksSecret(name: string): boolean {
  return SECRET_NAME.test(name) && !/_FILE$/i.test(name);
}

function roleOf(name: string, image: string | undefined): ServiceRole {
  const ref = `${image ?? ''} ${name}`.toLowerCase();
  if (/\b(nginx|traefik|haproxy|caddy|envoy)\b|proxy/.test(ref)) return 'proxy';
  if (/\b(postgres|postgis|mysql|mariadb|mongo|redis|mssql|sqlserver)\b|(^| )db\b/.test(ref))
    return 'database';
  if (/\b(minio|localstack|seaweedfs)\b|moto/.test(ref)) return 'storage';
  if (/front|web|ui\b|angular|react|vue/.test(ref)) return 'frontend';
  return 'other';
}

// --- the reader ------------------------------------------------------------------

/** A port in the long syntax (`target`, `published`, ...), or undefined when it has no numeric target. */
function longPort(e: Record<string, unknown>): PortMapping | undefined {
  const container = Number(e.target);
  if (!Number.isInteger(container)) return undefined;
  const published = e.published === undefined ? undefined : Number.parseInt(String(e.published), 10);
  return {
    container,
    ...(published !== undefined && Number.isInteger(published) ? { published } : {}),
    protocol: e.protocol === 'udp' ? 'udp' : 'tcp',
    ...(typeof e.host_ip === 'string' ? { hostIp: e.host_ip } : {}),
    ...(typeof e.name === 'string' ? { name: e.name } : {}),
    ...(e.app_protocol === 'http' || e.app_protocol === 'http2' || e.app_protocol === 'grpc'
      ? { appProtocol: e.app_protocol }
      : {}),
  };
}

/** "8000", "8000-8002": the ports of a range; undefined when absent, null when unreadable. */
function portRange(s: string | undefined): number[] | undefined | null {
  if (s === undefined || s === '') return undefined;
  const [a, b] = s.split('-').map((x) => Number.parseInt(x, 10));
  if (a === undefined || Number.isNaN(a)) return null;
  return b === undefined || Number.isNaN(b)
    ? [a]
    : Array.from({ length: Math.max(0, b - a + 1) }, (_, k) => a + k);
}

/** Short syntax: [HOST_IP:][HOST[-HOST]:]CONTAINER[-CONTAINER][/PROTOCOL]; undefined when unreadable. */
function shortPorts(text: string): PortMapping[] | undefined {
  const [spec, proto] = text.split('/');
  const protocol = proto === 'udp' ? 'udp' : 'tcp';
  const parts = (spec ?? '').split(':');
  const containerPart = parts.pop() ?? '';
  const hostPart = parts.pop();
  const hostIp = parts.length ? parts.join(':').replace(/^\[|\]$/g, '') : undefined;
  const containers = portRange(containerPart);
  const hosts = portRange(hostPart);
  if (!containers || hosts === null || (hosts && hosts.length !== containers.length && hosts.length !== 1))
    return undefined;
  return containers.map((container, k) => {
    const published = hosts ? (hosts.length === 1 ? hosts[0] : hosts[k]) : undefined;
    return {
      container,
      ...(published !== undefined ? { published } : {}),
      protocol,
      ...(hostIp ? { hostIp } : {}),
    };
  });
}

function readPorts(r: ComposeReader, base: Path, ports: unknown, expose: unknown): PortMapping[] {
  const out: PortMapping[] = [];
  const list = Array.isArray(ports) ? ports : ports === undefined ? [] : [ports];
  list.forEach((entry, i) => {
    const p = [...base, 'ports', i];
    if (entry && typeof entry === 'object') {
      const port = longPort(entry as Record<string, unknown>);
      if (port) out.push(port);
      else r.warn(p, 'port without a numeric target is skipped', undefined, false);
      return;
    }
    const text = String(entry);
    const read = shortPorts(text);
    if (read) out.push(...read);
    else r.warn(p, `cannot read port "${text}"; skipped`, 'use "HOST:CONTAINER" or the long syntax', false);
  });
  const exposed = Array.isArray(expose) ? expose : expose === undefined ? [] : [expose];
  exposed.forEach((e, i) => {
    const [num, proto] = String(e).split('/');
    const container = Number.parseInt(num ?? '', 10);
    if (!Number.isInteger(container)) {
      r.warn([...base, 'expose', i], `cannot read exposed port "${String(e)}"; skipped`);
      return;
    }
    if (!out.some((o) => o.container === container))
      out.push({ container, protocol: proto === 'udp' ? 'udp' : 'tcp' });
  });
  return out;
}

function readVolumes(r: ComposeReader, base: Path, volumes: unknown): VolumeMount[] {
  if (volumes === undefined) return [];
  if (!Array.isArray(volumes)) {
    r.warn([...base, 'volumes'], 'volumes must be a list; ignored', undefined, true);
    return [];
  }
  const out: VolumeMount[] = [];
  volumes.forEach((entry, i) => {
    const p = [...base, 'volumes', i];
    if (entry && typeof entry === 'object') {
      const e = entry as Record<string, unknown>;
      const type = e.type === 'bind' || e.type === 'tmpfs' ? e.type : 'volume';
      if (typeof e.target !== 'string') {
        r.warn(p, 'volume without a target is skipped', undefined, false);
        return;
      }
      if (e.type === 'npipe' || e.type === 'cluster') {
        r.warn(p, `volume type ${String(e.type)} is not supported; skipped`, undefined, false);
        return;
      }
      out.push({
        type,
        ...(typeof e.source === 'string' ? { source: e.source } : {}),
        target: e.target,
        readOnly: e.read_only === true,
      });
      return;
    }
    const text = String(entry);
    const parts = text.split(':');
    if (parts.length === 1) {
      out.push({ type: 'volume', target: parts[0]!, readOnly: false }); // anonymous volume
      return;
    }
    const [source, target, mode] = parts;
    const isPath = /^[./~]/.test(source ?? '');
    out.push({
      type: isPath ? 'bind' : 'volume',
      source: source!,
      target: target!,
      readOnly: (mode ?? '').split(',').includes('ro'),
    });
  });
  return out;
}

/**
 * A field compose lets one write as a map or as a list of "key=value" (environment, build args,
 * labels, sysctls): each entry with where it is. A list item without "=" has no value.
 */
function keyValueEntries(
  raw: unknown,
  p: Path,
): { key: string; value: unknown; at: Path; inList: boolean }[] {
  if (Array.isArray(raw))
    return raw.map((item, i) => {
      const text = String(item);
      const eq = text.indexOf('=');
      return {
        key: eq < 0 ? text : text.slice(0, eq),
        value: eq < 0 ? undefined : text.slice(eq + 1),
        at: [...p, i],
        inList: true,
      };
    });
  if (raw && typeof raw === 'object')
    return Object.entries(raw).map(([key, value]) => ({ key, value, at: [...p, key], inList: false }));
  return [];
}

function readEnvironment(
  r: ComposeReader,
  base: Path,
  env: unknown,
): { environment: Record<string, string>; secretEnv: string[] } {
  const environment: Record<string, string> = {};
  const secretEnv: string[] = [];
  const put = (key: string, value: unknown, p: Path) => {
    if (looksSecret(key)) {
      secretEnv.push(key);
      if (value !== undefined && value !== null && String(value) !== '' && !String(value).startsWith('${')) {
        r.warn(
          p,
          `${key} looks like a secret written in plain text; its value is not carried over`,
          'move it to a secret (compose secrets, or Secrets Manager/SSM on ECS)',
        );
      }
      return;
    }
    environment[key] = value === null || value === undefined ? '' : String(value);
  };
  for (const { key, value, at } of keyValueEntries(env, [...base, 'environment'])) put(key, value, at);
  return { environment, secretEnv };
}

function readHealthcheck(r: ComposeReader, base: Path, hc: unknown): HealthCheck | undefined {
  if (!hc || typeof hc !== 'object') return undefined;
  const h = hc as Record<string, unknown>;
  if (h.disable === true) return undefined;
  let test: string[] | undefined;
  if (typeof h.test === 'string') test = ['CMD-SHELL', h.test];
  else if (Array.isArray(h.test)) test = h.test.map(String);
  if (!test || test[0] === 'NONE') return undefined;
  if (test[0] !== 'CMD' && test[0] !== 'CMD-SHELL') {
    r.warn(
      [...base, 'healthcheck', 'test'],
      'healthcheck test must start with CMD or CMD-SHELL; read as a shell command',
      undefined,
      false,
    );
    test = ['CMD-SHELL', test.join(' ')];
  }
  const seconds = (k: string) => parseDuration(h[k]);
  const interval = seconds('interval');
  const timeout = seconds('timeout');
  const start = seconds('start_period');
  return {
    test,
    ...(interval !== undefined ? { intervalSeconds: interval } : {}),
    ...(timeout !== undefined ? { timeoutSeconds: timeout } : {}),
    ...(typeof h.retries === 'number' ? { retries: h.retries } : {}),
    ...(start !== undefined ? { startPeriodSeconds: start } : {}),
  };
}

function readBuild(r: ComposeReader, base: Path, build: unknown): BuildSpec | undefined {
  if (build === undefined) return undefined;
  if (typeof build === 'string') return { context: build };
  if (!build || typeof build !== 'object') return undefined;
  const b = build as Record<string, unknown>;
  const args: Record<string, string> = {};
  for (const { key, value, inList } of keyValueEntries(b.args, [])) {
    if (!inList || key) args[key] = value === null || value === undefined ? '' : String(value);
  }
  for (const k of Object.keys(b)) {
    if (!['context', 'dockerfile', 'target', 'args', 'labels'].includes(k)) {
      r.warn([...base, 'build', k], `build.${k} is not carried over`);
    }
  }
  return {
    context: typeof b.context === 'string' ? b.context : '.',
    ...(typeof b.dockerfile === 'string' ? { dockerfile: b.dockerfile } : {}),
    ...(typeof b.target === 'string' ? { target: b.target } : {}),
    ...(Object.keys(args).length ? { args } : {}),
  };
}

function readDeploy(r: ComposeReader, base: Path, deploy: unknown, svc: StackService): void {
  if (!deploy || typeof deploy !== 'object') return;
  const d = deploy as Record<string, Record<string, unknown> | undefined>;
  const res = d.resources as Record<string, Record<string, unknown> | undefined> | undefined;
  const limits = res?.limits;
  if (limits?.cpus !== undefined) svc.cpus = Number(limits.cpus);
  if (limits?.memory !== undefined) {
    const bytes = parseBytes(limits.memory);
    if (bytes === undefined)
      r.warn(
        [...base, 'deploy', 'resources', 'limits', 'memory'],
        `cannot read memory "${String(limits.memory)}"`,
      );
    else svc.memoryBytes = bytes;
  }
  const devices = res?.reservations?.devices;
  if (Array.isArray(devices)) {
    for (const dev of devices as Record<string, unknown>[]) {
      const caps = Array.isArray(dev.capabilities) ? dev.capabilities.map(String) : [];
      if (caps.includes('gpu')) {
        if (dev.count === 'all') svc.gpus = 'all';
        else if (typeof dev.count === 'number') svc.gpus = dev.count;
        else if (Array.isArray(dev.device_ids)) svc.gpus = dev.device_ids.length;
        else svc.gpus = 'all'; // compose's default for a GPU reservation without count
      }
    }
  }
  for (const k of Object.keys(d)) {
    if (k !== 'resources')
      r.warn(
        [...base, 'deploy', k],
        `deploy.${k} is not carried over`,
        'scale and placement are set per target (ECS services)',
      );
  }
}

/** Reads compose text into a stack; throws ConfigError only when the YAML itself is broken. */
export function importCompose(file: string, text: string, stackName?: string): Stack {
  const r = new ComposeReader(file, text);
  const syntax = r.syntaxProblems();
  if (syntax.length) throw new ConfigError(file, syntax);
  const data = (r.data() ?? {}) as Record<string, unknown>;
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(file, [
      { file, line: 1, column: 1, path: '', message: 'a compose file is a mapping with a services: key' },
    ]);
  }
  warnTopLevel(r, data);
  const services: StackService[] = [];
  for (const [name, raw] of Object.entries((data.services ?? {}) as Record<string, unknown>)) {
    const svc = readService(r, name, raw);
    if (svc) services.push(svc);
  }
  // References to services that do not exist are the user's bug: say so.
  const names = new Set(services.map((s) => s.name));
  for (const s of services) {
    for (const d of s.dependsOn) {
      if (!names.has(d.service))
        r.warn(['services', s.name, 'depends_on'], `depends on unknown service "${d.service}"`);
    }
  }
  const volumes = data.volumes && typeof data.volumes === 'object' ? Object.keys(data.volumes) : [];
  const name =
    stackName ??
    (typeof data.name === 'string' ? data.name : path.basename(path.dirname(path.resolve(file))))
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '');
  return {
    name: name || 'stack',
    file,
    services,
    volumes,
    secrets: readTopSecrets(data.secrets),
    warnings: r.warnings,
  };
}

/** Top-level keys that are not the compose spec's, a missing services: section, and configs:. */
function warnTopLevel(r: ComposeReader, data: Record<string, unknown>): void {
  if (!data.services || typeof data.services !== 'object') {
    r.warn(['services'], 'no services: section; the stack is empty', 'add services:');
  }
  for (const key of Object.keys(data)) {
    if (
      !['services', 'volumes', 'secrets', 'networks', 'version', 'name', 'configs'].includes(key) &&
      !key.startsWith('x-')
    ) {
      r.warn([key], `top-level ${key} is not part of the compose spec; ignored`);
    }
  }
  if (data.configs)
    r.warn(
      ['configs'],
      'compose configs are not carried over',
      'mount the files as read-only volumes instead',
    );
}

function readTopSecrets(raw: unknown): StackSecret[] {
  const secrets: StackSecret[] = [];
  for (const [name, def] of Object.entries((raw ?? {}) as Record<string, Record<string, unknown> | null>)) {
    if (def && typeof def.file === 'string') secrets.push({ name, source: { kind: 'file', path: def.file } });
    else if (def && typeof def.environment === 'string')
      secrets.push({ name, source: { kind: 'environment', variable: def.environment } });
    else secrets.push({ name, source: { kind: 'external' } });
  }
  return secrets;
}

/** One service of the compose file; undefined (with a warning) when it is not a mapping. */
function readService(r: ComposeReader, name: string, raw: unknown): StackService | undefined {
  const base: Path = ['services', name];
  if (!raw || typeof raw !== 'object') {
    r.warn(base, 'service definition is not a mapping; skipped');
    return undefined;
  }
  const s = raw as Record<string, unknown>;
  const image = str(s.image);
  const build = readBuild(r, base, s.build);
  if (!image && !build)
    r.warn(base, 'service has neither image nor build; it cannot be run', 'add image: or build:');
  const { environment, secretEnv } = readEnvironment(r, base, s.environment);
  const svc: StackService = {
    name,
    role: roleOf(name, image),
    ...(image ? { image } : {}),
    ...(build ? { build } : {}),
    environment,
    secretEnv,
    secrets: readServiceSecrets(s.secrets),
    ports: readPorts(r, base, s.ports, s.expose),
    volumes: readVolumes(r, base, s.volumes),
    dependsOn: readDependsOn(s.depends_on),
    labels: readLabels(s.labels),
    profiles: Array.isArray(s.profiles) ? s.profiles.map(String) : [],
    origin: r.location(base),
    fieldOrigins: Object.fromEntries(Object.keys(s).map((k) => [k, r.location([...base, k])])),
  };
  readProcess(r, base, s, svc);
  readDeploy(r, base, s.deploy, svc);
  for (const key of Object.keys(s)) {
    if (CARRIED.has(key) || key.startsWith('x-')) continue;
    const known = NOT_CARRIED[key];
    if (known) r.warn([...base, key], known.message, known.fix);
    else r.warn([...base, key], `${key} is not carried over`);
  }
  return svc;
}

/** How the container runs: x-mlship, command, entrypoint, health check, restart, user, limits. */
function readProcess(r: ComposeReader, base: Path, s: Record<string, unknown>, svc: StackService): void {
  const ext = s['x-mlship'];
  if (ext && typeof ext === 'object' && typeof (ext as { aws?: unknown }).aws === 'object') {
    svc.extensions = { aws: (ext as { aws: Record<string, unknown> }).aws };
  }
  const command = splitCommand(s.command);
  if (command) svc.command = command;
  const entrypoint = splitCommand(s.entrypoint);
  if (entrypoint) svc.entrypoint = entrypoint;
  const hc = readHealthcheck(r, base, s.healthcheck);
  if (hc) svc.healthcheck = hc;
  const restart = str(s.restart);
  if (restart) {
    const norm = restart.startsWith('on-failure') ? 'on-failure' : restart;
    if (norm === 'no' || norm === 'always' || norm === 'on-failure' || norm === 'unless-stopped')
      svc.restart = norm;
    else
      r.warn(
        [...base, 'restart'],
        `unknown restart policy "${restart}"`,
        'use no, always, on-failure or unless-stopped',
      );
  }
  if (s.user !== undefined) svc.user = String(s.user);
  if (typeof s.working_dir === 'string') svc.workingDir = s.working_dir;
  const grace = parseDuration(s.stop_grace_period);
  if (grace !== undefined) svc.stopGraceSeconds = grace;
  if (s.mem_limit !== undefined) {
    const bytes = parseBytes(s.mem_limit);
    if (bytes !== undefined) svc.memoryBytes = bytes;
  }
  if (s.cpus !== undefined) svc.cpus = Number(s.cpus);
  const sysctls = readSysctls(r, [...base, 'sysctls'], s.sysctls);
  if (Object.keys(sysctls).length) svc.sysctls = sysctls;
}

/**
 * `sysctls:` as a map or a list of "name=value": the namespaced settings a container (an ECS
 * task) can have; any other is a warning at its line, and left out.
 */
function readSysctls(r: ComposeReader, p: Path, raw: unknown): Record<string, string> {
  if (raw !== undefined && (!raw || typeof raw !== 'object'))
    r.warn(p, 'sysctls must be a mapping or a list; ignored');
  const out: Record<string, string> = {};
  for (const { key, value, at, inList } of keyValueEntries(raw, p)) {
    const name = key.trim();
    if (ecsAccepts(name)) out[name] = inList ? String(value ?? '').trim() : String(value);
    else
      r.warn(
        at,
        `sysctl ${name} is not a namespaced setting a container can have (ECS accepts net.*, fs.mqueue.* and kernel.msg*/sem/shm*); not carried over`,
        'set it on the host, or remove it',
        !inList,
      );
  }
  return out;
}

function readDependsOn(raw: unknown): StackService['dependsOn'] {
  if (Array.isArray(raw)) return raw.map((d) => ({ service: String(d), condition: 'started' as const }));
  if (!raw || typeof raw !== 'object') return [];
  return Object.entries(raw as Record<string, { condition?: string } | null>).map(([dep, v]) => ({
    service: dep,
    condition:
      v?.condition === 'service_healthy'
        ? 'healthy'
        : v?.condition === 'service_completed_successfully'
          ? 'completed'
          : 'started',
  }));
}

function readServiceSecrets(raw: unknown): StackService['secrets'] {
  if (!Array.isArray(raw)) return [];
  return raw.map((sec) => {
    if (!sec || typeof sec !== 'object') return { name: String(sec), target: `/run/secrets/${String(sec)}` };
    const source = String((sec as { source?: unknown }).source);
    return { name: source, target: String((sec as { target?: unknown }).target ?? `/run/secrets/${source}`) };
  });
}

function readLabels(raw: unknown): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const { key, value, inList } of keyValueEntries(raw, [])) {
    if (!inList) labels[key] = String(value);
    else if (key) labels[key] = String(value ?? '');
  }
  return labels;
}
