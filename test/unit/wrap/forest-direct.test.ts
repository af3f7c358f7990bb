// The generated scikit-learn service calls a random forest's trees directly (scikit-learn's
// per-tree joblib machinery is most of a forest's predict call, under the GIL): run on the
// host .venv against real forests, it must answer exactly as model.predict, and must not be
// used where it does not apply (more threads than one, several outputs, not a forest).

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateService } from '../../../src/core/wrap/wrap.js';
import { CASES } from './cases.js';

const PYTHON = path.resolve('.venv/bin/python');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'mlship-forest-direct-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs Python in the rendered service's directory; returns its last stdout line as JSON. */
function python(code: string, env: Record<string, string> = {}): Record<string, unknown> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create .venv with requirements-dev.txt`);
  const r = spawnSync(PYTHON, ['-c', code], { cwd: tmp, encoding: 'utf8', env: { ...process.env, ...env } });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

describe('random forests: trees called directly, same answers (host .venv)', { timeout: 180_000 }, () => {
  for (const f of generateService(CASES['sklearn-mount']!)) {
    mkdirSync(path.dirname(path.join(tmp, f.path)), { recursive: true });
    writeFileSync(path.join(tmp, f.path), f.content);
  }
  // Models, and 3,000 rows spread wider than the training data (NaN-free: the schema rejects NaN).
  python(`
import joblib, json, numpy as np
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.tree import DecisionTreeClassifier
X, y = make_classification(n_samples=800, n_features=12, n_informative=6, n_classes=3, random_state=0)
labels = np.array(["cat", "dog", "fox"])[y]
joblib.dump(RandomForestClassifier(n_estimators=40, random_state=0, n_jobs=1).fit(X, y), "rf.joblib")
joblib.dump(ExtraTreesClassifier(n_estimators=25, random_state=0).fit(X, labels), "et-labels.joblib")
joblib.dump(RandomForestClassifier(n_estimators=20, random_state=0, n_jobs=-1).fit(X, y), "rf-all-cpus.joblib")
joblib.dump(RandomForestClassifier(n_estimators=10, random_state=0).fit(X, np.c_[y, y % 2]), "rf-2-outputs.joblib")
joblib.dump(DecisionTreeClassifier(random_state=0).fit(X, y), "tree.joblib")
Xr, yr = make_regression(n_samples=800, n_features=12, noise=5.0, random_state=0)
joblib.dump(RandomForestRegressor(n_estimators=30, random_state=0).fit(Xr, yr), "rf-regressor.joblib")
rows = np.random.default_rng(1).normal(0, 4, (3000, 12))
np.save("rows.npy", rows)
print("{}")
`);

  // What Model answers, whether it took the direct path, and what the model itself answers: all
  // models in one process (importing scikit-learn is the slow part), one budget each.
  const one = '{"cpus": 1, "cpu_source": "test", "workers": 1, "threads_per_worker": 1}';
  const two = '{"cpus": 2, "cpu_source": "test", "workers": 1, "threads_per_worker": 2}';
  const cases: [string, string, string][] = [
    ['rf', 'rf.joblib', one],
    ['et-labels', 'et-labels.joblib', one],
    ['rf-regressor', 'rf-regressor.joblib', one],
    ['rf-all-cpus', 'rf-all-cpus.joblib', one],
    ['rf-all-cpus, 2 threads', 'rf-all-cpus.joblib', two],
    ['rf-2-outputs', 'rf-2-outputs.joblib', one],
    ['tree', 'tree.joblib', one],
  ];
  const results = python(`
import json, os, joblib, numpy as np
from app.model import Model
rows = np.load("rows.npy")
out = {}
for name, file, budget in json.loads(${JSON.stringify(JSON.stringify(cases))}):
    os.environ["MLSHIP_THREAD_BUDGET"] = budget
    model = Model(file)
    expected = np.asarray(joblib.load(file).predict(rows)).tolist()
    answers = model.predict(rows.tolist())
    one_by_one = [model.predict([row])[0] for row in rows[:200].tolist()]
    out[name] = {"direct": model._predict.__qualname__.startswith("_trees_directly"),
        "equal": answers == expected, "single_equal": one_by_one == expected[:200], "n": len(answers)}
print(json.dumps(out))
`);
  const serve = (name: string) => results[name];

  it.each(['rf.joblib', 'et-labels.joblib', 'rf-regressor.joblib'])(
    '%s: trees called directly, every answer exactly equal to model.predict (3,000 rows, batched and one by one)',
    (file) => {
      expect(serve(file.replace('.joblib', ''))).toEqual({
        direct: true,
        equal: true,
        single_equal: true,
        n: 3000,
      });
    },
  );

  it('n_jobs=-1 saved in the model, one thread per worker: limited to 1, then called directly', () => {
    expect(serve('rf-all-cpus')).toMatchObject({ direct: true, equal: true });
  });

  it('more than one thread per worker: scikit-learn parallel loop kept (it uses them)', () => {
    expect(serve('rf-all-cpus, 2 threads')).toMatchObject({ direct: false, equal: true });
  });

  it('several outputs, or not a forest: model.predict as it is', () => {
    expect(serve('rf-2-outputs')).toMatchObject({ direct: false, equal: true });
    expect(serve('tree')).toMatchObject({ direct: false, equal: true });
  });
});
