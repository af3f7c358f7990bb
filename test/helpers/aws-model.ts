// Validates request objects against the AWS API's own model, as botocore ships it
// (botocore comes with moto in .venv; .ci/run installs it): required members,
// unknown members, enums, types and numeric ranges, recursively.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { CI } from './docker.js';

interface Shape {
  type: string;
  members?: Record<string, { shape: string }>;
  required?: string[];
  member?: { shape: string };
  key?: { shape: string };
  value?: { shape: string };
  enum?: string[];
  min?: number;
  max?: number;
}

export interface ServiceModel {
  shapes: Record<string, Shape>;
}

export function loadServiceModel(service: string): ServiceModel | undefined {
  const lib = path.resolve('.venv/lib');
  const py = existsSync(lib) ? readdirSync(lib).find((d) => d.startsWith('python')) : undefined;
  const dir = py ? path.join(lib, py, 'site-packages/botocore/data', service) : undefined;
  if (!dir || !existsSync(dir)) {
    if (CI)
      throw new Error(
        `CI is set but botocore's ${service} model is missing (.venv from requirements-dev.txt)`,
      );
    console.warn(
      `skipping checks against botocore's ${service} model: .venv has no botocore (requirements-dev.txt)`,
    );
    return undefined;
  }
  const version = readdirSync(dir).sort().pop()!;
  const file = path.join(dir, version, 'service-2.json.gz');
  const raw = existsSync(file)
    ? gunzipSync(readFileSync(file))
    : readFileSync(path.join(dir, version, 'service-2.json'));
  return JSON.parse(raw.toString('utf8')) as ServiceModel;
}

/** Every problem of `value` against `shapeName`, as "path: problem" lines. */
export function validateShape(model: ServiceModel, shapeName: string, value: unknown, at = '$'): string[] {
  const shape = model.shapes[shapeName];
  if (!shape) return [`${at}: unknown shape ${shapeName}`];
  const problems: string[] = [];
  switch (shape.type) {
    case 'structure': {
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return [`${at}: expected an object`];
      const v = value as Record<string, unknown>;
      for (const r of shape.required ?? []) if (v[r] === undefined) problems.push(`${at}.${r}: required`);
      for (const [k, member] of Object.entries(v)) {
        const m = shape.members?.[k];
        if (!m) problems.push(`${at}.${k}: not a member of ${shapeName}`);
        else if (member !== undefined) problems.push(...validateShape(model, m.shape, member, `${at}.${k}`));
      }
      break;
    }
    case 'list':
      if (!Array.isArray(value)) return [`${at}: expected a list`];
      if (shape.min !== undefined && value.length < shape.min)
        problems.push(`${at}: fewer than ${shape.min} items`);
      value.forEach((item, i) => {
        problems.push(...validateShape(model, shape.member!.shape, item, `${at}[${i}]`));
      });
      break;
    case 'map':
      if (typeof value !== 'object' || value === null) return [`${at}: expected a map`];
      for (const [k, item] of Object.entries(value)) {
        problems.push(...validateShape(model, shape.key!.shape, k, `${at}{key}`));
        problems.push(...validateShape(model, shape.value!.shape, item, `${at}.${k}`));
      }
      break;
    case 'string':
      if (typeof value !== 'string') return [`${at}: expected a string`];
      if (shape.enum && !shape.enum.includes(value))
        problems.push(`${at}: "${value}" is not one of ${shape.enum.join(', ')}`);
      if (shape.min !== undefined && value.length < shape.min)
        problems.push(`${at}: shorter than ${shape.min}`);
      if (shape.max !== undefined && value.length > shape.max)
        problems.push(`${at}: longer than ${shape.max}`);
      break;
    case 'integer':
    case 'long':
      if (!Number.isInteger(value)) return [`${at}: expected an integer`];
      if (shape.min !== undefined && (value as number) < shape.min)
        problems.push(`${at}: below ${shape.min}`);
      if (shape.max !== undefined && (value as number) > shape.max)
        problems.push(`${at}: above ${shape.max}`);
      break;
    case 'boolean':
      if (typeof value !== 'boolean') problems.push(`${at}: expected a boolean`);
      break;
    default:
      break;
  }
  return problems;
}
