"""(c) BentoML 1.4, configured as its docs show: a class-based service, the model loaded once in
__init__, `workers=` in @bentoml.service, and for batching
`@bentoml.api(batchable=True, max_batch_size=..., max_latency_ms=...)`.

BENTO_BATCHING=1 turns the adaptive batching on; BENTO_WORKERS sets the worker count (run.sh
gives every server the same). BentoML batches on the first argument, so the endpoint takes a
list of rows; the load generator sends one row per request, as independent clients would.
"""

import os

import bentoml
import joblib
import numpy as np

BATCHING = os.environ.get("BENTO_BATCHING") == "1"
MAX_BATCH = int(os.environ.get("BENTO_MAX_BATCH_SIZE", "64"))
MAX_LATENCY_MS = int(os.environ.get("BENTO_MAX_LATENCY_MS", "1000"))


@bentoml.service(workers=int(os.environ.get("BENTO_WORKERS", "1")))
class Model:
    def __init__(self) -> None:
        self.model = joblib.load(os.environ["MODEL_PATH"])

    if BATCHING:

        @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=MAX_LATENCY_MS)
        def predict(self, features: np.ndarray) -> np.ndarray:
            return self.model.predict(features)

    else:

        @bentoml.api
        def predict(self, features: np.ndarray) -> np.ndarray:
            return self.model.predict(features)
