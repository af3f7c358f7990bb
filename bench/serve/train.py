"""Trains the benchmark model: a 100-tree random forest on 20 features.

Its cost barely grows with the batch size, which is what makes batching pay off.
Prints the measured cost of one call for 1 and for 64 rows.
    python train.py <out-dir>
"""

import json
import sys
import time
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
X, y = make_classification(n_samples=4000, n_features=20, n_informative=10, random_state=0)
model = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=1).fit(X, y)
joblib.dump(model, out / "model.joblib")
(out / "example.json").write_text(json.dumps({"features": [round(float(v), 4) for v in X[0]]}))


def cost_ms(rows: int, repeat: int = 50) -> float:
    """Median time of one predict call (the median shrugs off a busy neighbour)."""
    batch = np.asarray(X[:rows])
    model.predict(batch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.predict(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


print(json.dumps({"model_ms_1_row": round(cost_ms(1), 2), "model_ms_64_rows": round(cost_ms(64), 2)}))
