"""(b) Plain FastAPI under one uvicorn worker, as its tutorial shows: a sync endpoint (run in the
thread pool), pydantic request model, model loaded at import."""

import os

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

model = joblib.load(os.environ["MODEL_PATH"])
app = FastAPI()


class Request(BaseModel):
    features: list[float]


@app.post("/predict")
def predict(body: Request) -> dict:
    return {"prediction": model.predict(np.asarray([body.features])).tolist()[0]}
