import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  importCompose,
  looksSecret,
  parseBytes,
  parseDuration,
  splitCommand,
} from '../../../src/core/stack/compose-import.js';
import { ConfigError } from '../../../src/io/errors.js';
import { CORPUS, corpusFiles } from '../../helpers/corpus.js';

const files = corpusFiles('compose', /\.ya?ml$/);

describe('compose import: every file of the public corpus', () => {
  it.skipIf(!files.length)('finds the corpus', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
  });

  it.each(files.map((f) => [path.basename(f), f]))(
    '%s loads without a crash; warnings are located',
    (_name, file) => {
      const text = readFileSync(file, 'utf8');
      const stack = importCompose(file, text);
      expect(stack.services.length).toBeGreaterThan(0);
      const lines = text.split('\n').length;
      for (const w of stack.warnings) {
        expect(w.file).toBe(file);
        expect(w.line).toBeGreaterThanOrEqual(1);
        expect(w.line).toBeLessThanOrEqual(lines);
        expect(w.path).toMatch(/^[\w.-]+/);
        // The warning points at the field it names.
        const key = w.path.split('.').pop()!;
        if (!/^\d+$/.test(key)) expect(text.split('\n')[w.line - 1]).toContain(key);
      }
      for (const s of stack.services) {
        expect(s.image ?? s.build).toBeDefined();
        for (const p of s.ports) expect(Number.isInteger(p.container)).toBe(true);
      }
    },
  );
});

describe('compose import: what is carried over', () => {
  const read = (name: string) => {
    const file = path.join(CORPUS, 'compose', name);
    return importCompose(file, readFileSync(file, 'utf8'));
  };

  it.runIf(files.length)(
    'nginx-golang-postgres: build target, healthcheck, conditions, secrets, read-only binds',
    () => {
      const stack = read('nginx-golang-postgres.yaml');
      const byName = Object.fromEntries(stack.services.map((s) => [s.name, s]));
      expect(byName.backend?.build).toEqual({ context: 'backend', target: 'builder' });
      expect(byName.backend?.dependsOn).toEqual([{ service: 'db', condition: 'healthy' }]);
      expect(byName.db?.healthcheck).toEqual({
        test: ['CMD', 'pg_isready'],
        intervalSeconds: 10,
        timeoutSeconds: 5,
        retries: 5,
      });
      expect(byName.db?.role).toBe('database');
      expect(byName.db?.environment).toEqual({
        POSTGRES_DB: 'example',
        POSTGRES_PASSWORD_FILE: '/run/secrets/db-password',
      });
      expect(byName.db?.secrets).toEqual([{ name: 'db-password', target: '/run/secrets/db-password' }]);
      expect(byName.db?.ports).toEqual([{ container: 5432, protocol: 'tcp' }]);
      expect(byName.proxy?.role).toBe('proxy');
      expect(byName.proxy?.volumes).toEqual([
        {
          type: 'bind',
          source: './proxy/nginx.conf',
          target: '/etc/nginx/conf.d/default.conf',
          readOnly: true,
        },
      ]);
      expect(byName.proxy?.ports).toEqual([{ container: 80, published: 80, protocol: 'tcp' }]);
      expect(stack.volumes).toEqual(['db-data']);
      expect(stack.secrets).toEqual([
        { name: 'db-password', source: { kind: 'file', path: 'db/password.txt' } },
      ]);
    },
  );

  it.runIf(files.length)(
    'elasticsearch-logstash-kibana: udp ports, container_name and networks warned at their lines',
    () => {
      const stack = read('elasticsearch-logstash-kibana.yaml');
      const logstash = stack.services.find((s) => s.name === 'logstash')!;
      expect(logstash.ports).toContainEqual({ container: 5000, published: 5000, protocol: 'udp' });
      expect(logstash.command).toEqual([
        'logstash',
        '-f',
        '/usr/share/logstash/pipeline/logstash-nginx.config',
      ]);
      const warned = stack.warnings.map((w) => `${w.line} ${w.path}`);
      expect(warned).toContain('4 services.elasticsearch.container_name');
      expect(warned).toContain('16 services.elasticsearch.networks');
    },
  );
});

describe('compose import: syntax variants and secrets', () => {
  const yaml = `
name: Demo Stack
services:
  api:
    build:
      context: ./api
      args: [VERSION=1.2, EMPTY=]
    command: python -m api --workers "2"
    environment:
      DB_PASSWORD: hunter2
      API_TOKEN: \${API_TOKEN}
      LOG_LEVEL: info
      RETRIES: 3
    ports: ["127.0.0.1:8080:80", "9000-9001:7000-7001", {target: 50051, published: "50051", app_protocol: grpc, name: rpc}]
    volumes: [weights:/weights:ro, /data]
    depends_on: { db: { condition: service_started }, ghost: { condition: service_healthy } }
    deploy:
      replicas: 3
      resources:
        limits: { cpus: "1.5", memory: 2g }
        reservations:
          devices: [{ driver: nvidia, count: 2, capabilities: [gpu] }]
    healthcheck: { test: curl -f localhost/readyz, interval: 1m30s, start_period: 500ms }
    stop_grace_period: 1m
    cap_add: [SYS_ADMIN]
    mystery_field: true
  db:
    image: postgres:16.4
    restart: on-failure:3
x-shared: { a: 1 }
volumes: { weights: {} }
`;
  const stack = importCompose('compose.yaml', yaml);
  const api = stack.services.find((s) => s.name === 'api')!;

  it('reads both syntaxes of every carried field', () => {
    expect(stack.name).toBe('demo-stack');
    expect(api.build).toEqual({ context: './api', args: { VERSION: '1.2', EMPTY: '' } });
    expect(api.command).toEqual(['python', '-m', 'api', '--workers', '2']);
    expect(api.ports).toEqual([
      { container: 80, published: 8080, protocol: 'tcp', hostIp: '127.0.0.1' },
      { container: 7000, published: 9000, protocol: 'tcp' },
      { container: 7001, published: 9001, protocol: 'tcp' },
      { container: 50051, published: 50051, protocol: 'tcp', name: 'rpc', appProtocol: 'grpc' },
    ]);
    expect(api.volumes).toEqual([
      { type: 'volume', source: 'weights', target: '/weights', readOnly: true },
      { type: 'volume', target: '/data', readOnly: false },
    ]);
    expect(api.cpus).toBe(1.5);
    expect(api.memoryBytes).toBe(2 * 1024 ** 3);
    expect(api.gpus).toBe(2);
    expect(api.healthcheck).toEqual({
      test: ['CMD-SHELL', 'curl -f localhost/readyz'],
      intervalSeconds: 90,
      startPeriodSeconds: 0.5,
    });
    expect(api.stopGraceSeconds).toBe(60);
    expect(stack.services.find((s) => s.name === 'db')?.restart).toBe('on-failure');
  });

  it('keeps secret values out of the model and warns about plain-text ones', () => {
    expect(api.environment).toEqual({ LOG_LEVEL: 'info', RETRIES: '3' });
    expect(api.secretEnv).toEqual(['DB_PASSWORD', 'API_TOKEN']);
    expect(JSON.stringify(stack)).not.toContain('hunter2');
    const w = stack.warnings.find((x) => x.path === 'services.api.environment.DB_PASSWORD');
    expect(w).toMatchObject({ line: 10, message: expect.stringMatching(/plain text/) });
    expect(stack.warnings.some((x) => x.path === 'services.api.environment.API_TOKEN')).toBe(false);
  });

  it('warns, with lines, about what is not carried and about unknown references', () => {
    const warned = Object.fromEntries(stack.warnings.map((w) => [w.path, w.line]));
    expect(warned['services.api.cap_add']).toBe(25);
    expect(warned['services.api.mystery_field']).toBe(26);
    expect(warned['services.api.deploy.replicas']).toBe(18);
    expect(warned['services.api.depends_on']).toBe(16);
    expect(stack.warnings.find((w) => w.path === 'services.api.depends_on')?.message).toMatch(
      /unknown service "ghost"/,
    );
    expect(Object.keys(warned).some((k) => k.startsWith('x-'))).toBe(false);
  });

  it('broken YAML is a located ConfigError, not a crash', () => {
    expect(() => importCompose('bad.yaml', 'services:\n  a: [\n')).toThrow(ConfigError);
  });
});

describe('compose value parsers', () => {
  it('durations, sizes, commands, secret names', () => {
    expect(parseDuration('1m30s')).toBe(90);
    expect(parseDuration('250ms')).toBe(0.25);
    expect(parseDuration('1h')).toBe(3600);
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseBytes('512m')).toBe(512 * 1024 ** 2);
    expect(parseBytes('1.5G')).toBe(1.5 * 1024 ** 3);
    expect(parseBytes('2Gi')).toBe(2 * 1024 ** 3);
    expect(parseBytes(1000)).toBe(1000);
    expect(parseBytes('lots')).toBeUndefined();
    expect(splitCommand(`sh -c 'echo "a b"; exit 0'`)).toEqual(['sh', '-c', 'echo "a b"; exit 0']);
    expect(splitCommand(['a', 1])).toEqual(['a', '1']);
    expect(looksSecret('POSTGRES_PASSWORD')).toBe(true);
    expect(looksSecret('POSTGRES_PASSWORD_FILE')).toBe(false);
    expect(looksSecret('AWS_SECRET_ACCESS_KEY')).toBe(true);
    expect(looksSecret('HF_TOKEN')).toBe(true);
    expect(looksSecret('LOG_LEVEL')).toBe(false);
  });
});
