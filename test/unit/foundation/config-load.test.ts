import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { closest, loadProject, parseYamlConfig } from '../../../src/config/load.js';
import { ProjectSchema } from '../../../src/config/schema.js';
import { ConfigError, type ConfigProblem, UsageError } from '../../../src/io/errors.js';

function problemsOf(text: string, file = 'mlship.yaml'): ConfigProblem[] {
  try {
    parseYamlConfig(file, text, ProjectSchema);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('config loading', () => {
  it('loads a valid file and fills defaults', async () => {
    const project = await loadProject('fixtures/config/valid.yaml');
    expect(project.name).toBe('pose-pipeline');
    expect(project.version).toBe(1);
    expect(project.services.detector).toMatchObject({
      gpu: true,
      port: 8080,
      runtime: 'python',
      startup_grace_seconds: 120,
    });
    expect(project.services['pose-2d']).toMatchObject({
      gpu: false,
      startup_grace_seconds: 60,
      depends_on: ['detector'],
    });
    expect(project.base_images?.python).toBe('registry.internal/python:3.11-slim');
  });

  it('reports every problem of a broken file at once, each with line, column, path and fix', () => {
    const problems = problemsOf(
      readFileSync('fixtures/config/broken.yaml', 'utf8'),
      'fixtures/config/broken.yaml',
    );
    const brief = problems.map((p) => `${p.line}:${p.column} ${p.path}`);
    expect(brief).toEqual([
      '2:7 name',
      '3:1 servces',
      '6:12 services.detector.entry',
      '7:11 services.detector.port',
      '8:10 services.detector.gpu',
      '9:14 services.detector.runtime',
      '10:5 services.detector.memroy',
      '11:3 services.Bad_Name',
      '14:15 aws.account_id',
    ]);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p]));
    expect(byPath.servces?.fix).toBe('did you mean "services"?');
    expect(byPath['services.detector.memroy']?.fix).toBe('did you mean "memory"?');
    expect(byPath['services.detector.runtime']?.fix).toBe('use one of "python", "node"');
    expect(byPath['services.detector.port']?.fix).toBe('use a value <= 65535');
    expect(byPath['aws.account_id']?.fix).toBe('quote it: "123456789012"');
    expect(byPath['services.detector.entry']?.fix).toBe('write it like "predict.py:predict"');
    for (const p of problems) expect(p.file).toBe('fixtures/config/broken.yaml');
  });

  it('reports a missing required field at the parent mapping', () => {
    const problems = problemsOf('version: 1\nservices: {}\n');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({
      path: 'name',
      message: 'required field is missing',
      line: 1,
      column: 1,
    });
    expect(problems[0]?.fix).toMatch(/add "name"/);
  });

  it('reports YAML syntax errors and duplicate keys with their own line', () => {
    const problems = problemsOf('name: a\nname: b\nservices:\n  x: [\n');
    expect(problems.map((p) => p.line)).toEqual([2, 5]);
    expect(problems[0]?.message).toMatch(/unique/);
    expect(problems[0]?.fix).toMatch(/repeated key/);
  });

  it('lists allowed keys when no close match exists', () => {
    const problems = problemsOf('name: a\nservices:\n  m:\n    zzzzzz: 1\n');
    expect(problems[0]).toMatchObject({ path: 'services.m.zzzzzz', line: 4, column: 5 });
    expect(problems[0]?.fix).toMatch(/allowed here: path, image, runtime/);
  });

  it('says how to create a missing file', async () => {
    await expect(loadProject('does/not/exist.yaml')).rejects.toBeInstanceOf(UsageError);
    await expect(loadProject('does/not/exist.yaml')).rejects.toMatchObject({
      hint: expect.stringMatching(/mlship init/),
    });
  });

  it('an empty file is a missing name, not a crash', () => {
    expect(problemsOf('').map((p) => p.path)).toEqual(['name']);
  });

  it('suggests close words only', () => {
    expect(closest('servces', ['services', 'name'])).toBe('services');
    expect(closest('xyz', ['services', 'name'])).toBeUndefined();
  });
});
