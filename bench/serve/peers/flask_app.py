"""(a) The naive way: Flask's development server (threaded, its default), model loaded at import."""

import os

import joblib
import numpy as np
from flask import Flask, jsonify, request

model = joblib.load(os.environ["MODEL_PATH"])
app = Flask(__name__)


@app.post("/predict")
def predict():
    features = request.get_json()["features"]
    return jsonify(prediction=model.predict(np.asarray([features])).tolist()[0])


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(os.environ["PORT"]))
