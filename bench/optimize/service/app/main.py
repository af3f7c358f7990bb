"""A small model service: FastAPI, numpy, scikit-learn, a weights file and a compiled helper."""

import ctypes
import os

import numpy as np
from fastapi import FastAPI
from sklearn.preprocessing import StandardScaler

VERSION = "1"
WEIGHTS = os.environ.get("WEIGHTS", "model/weights.bin")

app = FastAPI()
_lib = ctypes.CDLL(os.path.join(os.path.dirname(__file__), "libfastscore.so"))
_lib.fast_score.restype = ctypes.c_double
_weights = np.memmap(WEIGHTS, dtype=np.float32, mode="r")
_scaler = StandardScaler()


@app.get("/health")
def health() -> dict:
    return {"ok": True, "version": VERSION, "weights": int(_weights.size)}


@app.post("/predict")
def predict(x: list[float]) -> dict:
    v = _scaler.fit_transform(np.asarray(x, dtype=np.float32).reshape(-1, 1)).ravel().astype(np.float32)
    n = min(v.size, _weights.size)
    ptr = ctypes.POINTER(ctypes.c_float)
    score = _lib.fast_score(_weights[:n].ctypes.data_as(ptr), v[:n].ctypes.data_as(ptr), n)
    return {"score": score}
