"""(b) Plain FastAPI as its tutorial shows: a sync endpoint (run in the thread pool), a
pydantic request model, the model loaded at import. run.sh starts it with
`uvicorn --workers N`, the same worker count as every other server."""

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
