"""Trains the benchmark's three model families and prints what one call costs each.

    python train.py <out-dir>

- forest: a 100-tree random forest on 20 features (cost barely grows with the batch);
- hgb: a HistGradientBoostingClassifier on 30 features, 3 classes (OpenMP inside: the
  model of issue 17, 5x slower behind a service than it should be without a thread budget);
- mlp: a small neural network (2 x 128 ReLU, BLAS matrix products), 30 features, 3 classes.
Each family gets <family>.joblib, <family>.example.json, <family>.example-2d.json (BentoML's
batchable form) and <family>.check.jsonl (500 training rows, for --compile's check).
"""

import json
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)


def fitted(name: str, model, X, y):
    """The model trained on X, y; a model trained before from the same seed is reused."""
    path = out / f"{name}.joblib"
    if path.exists():
        return joblib.load(path)
    model.fit(X, y)
    joblib.dump(model, path)
    return model


def families():
    X, y = make_classification(n_samples=4000, n_features=20, n_informative=10, random_state=0)
    yield (
        "forest",
        fitted("forest", RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1), X, y),
        X,
    )
    X, y = make_classification(n_samples=4000, n_features=30, n_informative=12, n_classes=3, random_state=0)
    yield "hgb", fitted("hgb", HistGradientBoostingClassifier(max_iter=100, random_state=0), X, y), X
    yield (
        "mlp",
        fitted("mlp", MLPClassifier(hidden_layer_sizes=(128, 128), max_iter=200, random_state=0), X, y),
        X,
    )


def cost_ms(model, X, rows: int, repeat: int = 50) -> float:
    """Median time of one predict call with one thread (a worker's budget on 2 CPUs and 2 workers;
    the median shrugs off a busy neighbour)."""
    batch = np.asarray(X[:rows])
    model.predict(batch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - t0)
    return round(float(np.median(times)) * 1000, 2)


costs = {}
for name, model, X in families():
    features = [round(float(v), 4) for v in X[0]]
    (out / f"{name}.example.json").write_text(json.dumps({"features": features}))
    (out / f"{name}.example-2d.json").write_text(json.dumps({"features": [features]}))
    # The data `wrap --compile onnx --check-data` checks the converted model on.
    check = "".join(json.dumps({"features": row.tolist()}) + "\n" for row in X[1:501])
    (out / f"{name}.check.jsonl").write_text(check)
    with threadpool_limits(1):
        costs[name] = {"ms_1_row": cost_ms(model, X, 1), "ms_64_rows": cost_ms(model, X, 64)}
print(json.dumps({"threads": 1, "model_cost": costs}))
