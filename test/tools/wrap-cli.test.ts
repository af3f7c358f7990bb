// `mlship wrap` and `mlship serve` as users run them: the compiled bin, real
// processes, streams and exit codes (no engine needed for these).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = path.resolve('bin/mlship.js');
const IRIS = path.resolve('fixtures/wrap/iris/model.joblib');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-wrap-cli-'));

function mlship(args: string[], cwd = tmp) {
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...base } = process.env;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...base, CI: 'true' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync('dist/cli/main.js'))
    throw new Error('dist/ is missing: run `npm run build` before the tests');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mlship wrap (CLI)', () => {
  it('is listed among the steps, with examples in its help', () => {
    const help = mlship(['--help']);
    expect(help.stdout).toMatch(/^ {2}wrap\b/m);
    expect(help.stdout).toMatch(/^ {2}serve\b/m);
    for (const cmd of ['wrap', 'serve']) {
      const r = mlship([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Examples:\n {2}\$ mlship /);
    }
  });

  it('--compile/--quantize/--tolerance refuse what they cannot do, before any engine is needed (exit 2)', () => {
    const bad = mlship(['wrap', IRIS, '--out', 'c', '--quantize', 'fp16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--quantize.*fp16.*int8/s);
    const tolerance = mlship(['wrap', IRIS, '--out', 'c', '--compile', 'onnx', '--tolerance', '-1']);
    expect(tolerance.code).toBe(2);
    expect(tolerance.stderr).toContain('a positive number');
    // Your own function has nothing to convert: said before any engine is asked for.
    writeFileSync(path.join(tmp, 'x.py'), 'def predict(payload):\n    return 1\n');
    writeFileSync(path.join(tmp, 'example.json'), '{"a": 1}');
    const entry = mlship(['wrap', '--entry', 'x.py:predict', '--out', 'c', '--compile', 'onnx'], tmp);
    expect(entry.code).toBe(2);
    expect(entry.stderr).toContain('--compile/--quantize need the model file itself');
    expect(existsSync(path.join(tmp, 'c'))).toBe(false);
  });

  it('--allow-non-finite writes a schema that accepts NaN and Infinity', { timeout: 60_000 }, () => {
    const r = mlship(['wrap', IRIS, '--out', 'nan-svc', '--allow-non-finite']);
    expect(r.code).toBe(0);
    expect(readFileSync(path.join(tmp, 'nan-svc/app/schema.py'), 'utf8')).toContain('allow_inf_nan=True');
  });

  it('--dry-run --json prints the plan on stdout and writes nothing', { timeout: 60_000 }, () => {
    const r = mlship(['wrap', IRIS, '--out', 'svc', '--dry-run', '--json']);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    expect(plan).toMatchObject({ ok: true, name: 'iris', kind: 'sklearn', runtime: 'python', dryRun: true });
    // The model was checked by the repository's .venv (found above the model) when there is one.
    if (existsSync('.venv/bin/python')) {
      expect(plan.checks.verified).toEqual([
        expect.stringMatching(
          /model\.joblib: loaded by python \S+ \(scikit-learn 1\.9\.1\): DecisionTreeClassifier, 4 features; predicts 0$/,
        ),
      ]);
    } else {
      expect(plan.checks.unverified).toEqual([expect.stringMatching(/model\.joblib: not loaded here/)]);
    }
    expect(plan.files.map((f: { path: string }) => f.path)).toContain('Dockerfile');
    expect(existsSync(path.join(tmp, 'svc'))).toBe(false);
  });

  it('writes the service, says what is next, and refuses to overwrite an edited file (exit 2)', () => {
    // --no-check: the checks have their own tests; these are about the files.
    const first = mlship(['wrap', IRIS, '--out', 'svc', '--batching', '--no-check']);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('create    Dockerfile');
    expect(first.stdout).toContain('next: mlship serve svc');
    expect(readFileSync(path.join(tmp, 'svc/app/settings.py'), 'utf8')).toContain(
      '_int("BATCH_MAX_SIZE", 32)',
    );
    writeFileSync(path.join(tmp, 'svc/Dockerfile'), 'FROM mine\n');
    const second = mlship(['wrap', IRIS, '--out', 'svc', '--no-check']);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('changed: Dockerfile');
    expect(second.stderr).toContain('--force');
    expect(readFileSync(path.join(tmp, 'svc/Dockerfile'), 'utf8')).toBe('FROM mine\n');
    expect(mlship(['wrap', IRIS, '--out', 'svc', '--force', '--no-check']).code).toBe(0);
  });

  it('a model file that is not one (5 KB of random bytes) is exit 2 naming the file and what was expected; nothing is written', () => {
    // Arbitrary bytes, the same every run so the exact message can be checked.
    writeFileSync(
      path.join(tmp, 'broken.joblib'),
      Buffer.from(Array.from({ length: 5120 }, (_, i) => (i * 7919 + 13) % 251)),
    );
    writeFileSync(path.join(tmp, 'example.json'), '{"x": [1, 2]}');
    const t0 = performance.now();
    const r = mlship(['wrap', 'broken.joblib', '--out', 'broken-svc']);
    const ms = performance.now() - t0;
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^error: broken\.joblib is not a model mlship can serve: it is not a pickle or joblib file \(it starts with bytes 0d 97 26 b0 3f c9 58 e2\)\nhint: expected a scikit-learn model saved with joblib\.dump or pickle\.dump\n$/,
    );
    expect(existsSync(path.join(tmp, 'broken-svc'))).toBe(false);
    // The format is checked before any Python starts: the process start-up is the whole cost.
    expect(ms).toBeLessThan(5000);
  });

  it('--upgrade brings a wrapped service to the current templates, keeps your edits and says how to see them', () => {
    expect(mlship(['wrap', IRIS, '--out', 'up', '--no-check']).code).toBe(0);
    writeFileSync(path.join(tmp, 'up/app/schema.py'), '# mine\n');
    const r = mlship(['wrap', '--upgrade', 'up']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^upgraded up\/ \(templates \d+\.\d+\.\d+\+[0-9a-f]{12} → \d+\.\d+\.\d+\+[0-9a-f]{12}\):$/m,
    );
    expect(r.stdout).toContain('  kept      app/schema.py  (you edited it)');
    expect(r.stdout).toContain('your edits were kept in 1 file(s): app/schema.py');
    expect(r.stdout).toContain(
      '  see what the current templates would change there: mlship wrap --upgrade up --dry-run',
    );
    expect(readFileSync(path.join(tmp, 'up/app/schema.py'), 'utf8')).toBe('# mine\n');
    const flags = mlship(['wrap', '--upgrade', 'up', '--port', '9000']);
    expect(flags.code).toBe(2);
    expect(flags.stderr).toContain(
      '--upgrade renders with the settings recorded in mlship-wrap.json, not --port',
    );
  });

  it('rejects bad flags and missing inputs as usage errors (exit 2)', () => {
    expect(mlship(['wrap', IRIS, '--max-batch-size', '1']).code).toBe(2);
    expect(mlship(['wrap', IRIS, '--runtime', 'rust']).code).toBe(2);
    const none = mlship(['wrap']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('nothing to wrap');
  });

  it('takes a service from mlship.yaml', () => {
    writeFileSync(
      path.join(tmp, 'mlship.yaml'),
      `name: demo\nservices:\n  flowers:\n    model: ${IRIS}\n    port: 9001\n    batching:\n      max_batch_size: 16\n`,
    );
    const r = mlship(['wrap', '--service', 'flowers', '--out', 'flowers', '--json', '--no-check']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'flowers', manifest: { port: 9001 } });
    expect(mlship(['wrap', '--service', 'nope']).code).toBe(2);
  });

  it('serve outside a wrapped directory is a usage error', () => {
    const r = mlship(['serve', tmp]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('mlship wrap');
  });
});
