import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadProject } from '../../../src/config/load.js';
import { runInit, schemaReference, slugify } from '../../../src/core/init/init.js';
import { FileExistsError, UsageError } from '../../../src/io/errors.js';
import { writeNewFile } from '../../../src/io/files.js';
import { type Choice, DefaultsPrompter, type Prompter } from '../../../src/io/prompts.js';

function scripted(answers: (string | boolean)[]): Prompter & { asked: string[] } {
  const asked: string[] = [];
  const next = () => answers.shift();
  return {
    interactive: true,
    asked,
    async input(m: string, d: string) {
      asked.push(m);
      return (next() as string | undefined) ?? d;
    },
    async confirm(m: string, d: boolean) {
      asked.push(m);
      return (next() as boolean | undefined) ?? d;
    },
    async select<T extends string>(m: string, _c: Choice<T>[], d: T) {
      asked.push(m);
      return ((next() as T | undefined) ?? d) as T;
    },
  };
}

describe('init', () => {
  it('non-interactive: writes a valid file from defaults and flags, without asking', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'My_Model v2-'));
    const file = path.join(dir, 'mlship.yaml');
    await runInit(
      { dir, file, force: false, entry: 'predict.py:predict', pythonImage: 'mirror/python:3.11-slim' },
      { prompter: new DefaultsPrompter(), writeNewFile },
    );
    const project = await loadProject(file);
    expect(project.name).toMatch(/^my-model-v2-/);
    expect(project.services.model).toMatchObject({
      entry: 'predict.py:predict',
      runtime: 'python',
      gpu: false,
      port: 8080,
    });
    expect(project.base_images?.python).toBe('mirror/python:3.11-slim');
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(
      `# yaml-language-server: $schema=${path.relative(dir, path.resolve('schema/mlship.schema.json'))}`,
    );
  });

  it('the $schema reference resolves, as an editor resolves it, to the schema the package ships, which accepts the file', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-init-'));
    const file = path.join(dir, 'mlship.yaml');
    await runInit(
      { dir, file, force: false, name: 'demo', addons: ['proxy', 'storage'] },
      { prompter: new DefaultsPrompter(), writeNewFile },
    );
    const text = readFileSync(file, 'utf8');
    const ref = /^# yaml-language-server: \$schema=(\S+)$/m.exec(text)![1]!;
    expect(ref).not.toMatch(/^[a-z]+:\/\//); // a path, not an address that may not exist
    const schemaText = readFileSync(path.resolve(dir, ref), 'utf8'); // relative to the YAML file
    expect(schemaText).toBe(readFileSync('schema/mlship.schema.json', 'utf8'));
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(JSON.parse(schemaText));
    expect(validate(parse(text)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('a project with mlship installed in node_modules gets the path every clone shares', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-init-'));
    mkdirSync(path.join(dir, 'node_modules/mlship/schema'), { recursive: true });
    copyFileSync(
      'schema/mlship.schema.json',
      path.join(dir, 'node_modules/mlship/schema/mlship.schema.json'),
    );
    expect(await schemaReference(dir)).toBe('./node_modules/mlship/schema/mlship.schema.json');
  });

  it('interactive: uses the answers', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-init-'));
    const file = path.join(dir, 'mlship.yaml');
    const p = scripted(['demo', 'detector', 'python', 'model', 'det.onnx', true, 'us-east-1', false]);
    await runInit({ dir, file, force: false }, { prompter: p, writeNewFile });
    const project = await loadProject(file);
    expect(project).toMatchObject({ name: 'demo', aws: { region: 'us-east-1' } });
    expect(project.services.detector).toMatchObject({ model: 'det.onnx', gpu: true });
    expect(p.asked).toHaveLength(8);
    expect(project.proxy).toBeUndefined();
  });

  it('adds the stack add-ons it is asked for, with their defaults; refuses unknown ones', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-init-'));
    const file = path.join(dir, 'mlship.yaml');
    await runInit(
      { dir, file, force: false, name: 'demo', addons: ['proxy', 'frontend'] },
      { prompter: new DefaultsPrompter(), writeNewFile },
    );
    const project = await loadProject(file);
    expect(project.proxy).toMatchObject({ port: 8080, image: 'nginx:1.27.3-alpine' });
    expect(project.frontend).toBeDefined();
    expect(project.database).toBeUndefined();
    await expect(
      runInit(
        { dir, file: path.join(dir, 'other.yaml'), force: false, name: 'demo', addons: ['redis'] },
        { prompter: new DefaultsPrompter(), writeNewFile },
      ),
    ).rejects.toMatchObject({
      code: 'USAGE',
      hint: 'choose from proxy, database, storage, frontend, monitoring',
    });
  });

  it('never overwrites an existing file without force', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-init-'));
    const file = path.join(dir, 'mlship.yaml');
    writeFileSync(file, 'mine: true\n');
    await expect(
      runInit({ dir, file, force: false, name: 'x' }, { prompter: new DefaultsPrompter(), writeNewFile }),
    ).rejects.toBeInstanceOf(FileExistsError);
    expect(readFileSync(file, 'utf8')).toBe('mine: true\n');
    await runInit({ dir, file, force: true, name: 'x' }, { prompter: new DefaultsPrompter(), writeNewFile });
    expect((await loadProject(file)).name).toBe('x');
  });

  it('refuses invalid names given as flags', async () => {
    await expect(
      runInit(
        { dir: '/tmp', file: '/tmp/never.yaml', force: false, name: 'Bad Name' },
        { prompter: new DefaultsPrompter(), writeNewFile },
      ),
    ).rejects.toBeInstanceOf(UsageError);
  });

  it('slugify makes valid names', () => {
    expect(slugify('My_Model v2')).toBe('my-model-v2');
    expect(slugify('2024-pose')).toBe('pose');
    expect(slugify('---')).toBe('my-project');
  });
});
