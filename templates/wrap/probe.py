"""mlship wrap's check before it writes anything: load the model (or import the function, or the
request model) once, the way the generated service will, and report what was found.

Run by mlship with the project's Python (`python -c <this file>`, the request as JSON on stdin), or
inside the service's built image (the request as the first argument); prints one JSON line on
stdout. Never part of the service.
A runtime package this Python lacks is reported as {"missing": name}, so mlship can try another.
"""

import importlib
import inspect
import json
import os
import sys
import traceback

# -c puts the working directory first on sys.path: a stray joblib.py there must not shadow joblib.
sys.path = [p for p in sys.path if p not in ("", os.getcwd())]

RUNTIMES = {
    "sklearn": ("numpy", "joblib", "sklearn"),
    "onnx": ("numpy", "onnxruntime"),
    "torchscript": ("numpy", "torch"),
}
VERSIONS = {"sklearn": "scikit-learn", "onnxruntime": "onnxruntime", "torch": "torch"}


class Missing(Exception):
    """A package of the service's runtime is not installed in this Python."""


def fail(stage, error):
    lines = traceback.format_exception_only(type(error), error)
    return {
        "error": {"stage": stage, "type": type(error).__name__, "message": "".join(lines).strip()[-2000:]}
    }


def short(value):
    text = json.dumps(value, default=str)
    return value if len(text) <= 200 else text[:200] + "…"


def runtime(kind):
    found = {}
    for name in RUNTIMES[kind]:
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise Missing(name) from e
        if name in VERSIONS:
            found[VERSIONS[name]] = getattr(module, "__version__", "?")
    return found


def check_model(req):
    kind = req["kind"]
    out = {"runtime": runtime(kind)}
    import numpy as np

    try:
        if kind == "sklearn":
            import joblib

            model = joblib.load(req["path"])
        elif kind == "onnx":
            import onnxruntime as ort

            model = ort.InferenceSession(req["path"], providers=["CPUExecutionProvider"])
        else:
            import torch

            model = torch.jit.load(req["path"], map_location="cpu").eval()
    except Exception as e:  # noqa: BLE001 - any failure to load is the answer
        return {**out, **fail("load", e)}
    out["type"] = f"{type(model).__module__}.{type(model).__qualname__}"
    if kind == "sklearn":
        if not callable(getattr(model, "predict", None)):
            return {**out, **fail("interface", TypeError(f"{type(model).__name__} has no predict() method"))}
        width = getattr(model, "n_features_in_", None)
        if isinstance(width, (int, np.integer)):
            out["n_features_in"] = int(width)
        names = getattr(model, "feature_names_in_", None)
        if names is not None:
            out["feature_names"] = [str(n) for n in names]
    sample = req.get("sample")
    if sample is None and "n_features_in" in out:
        sample = [0.0] * out["n_features_in"]
    if sample is None:
        return out
    try:
        if kind == "sklearn":
            prediction = np.asarray(model.predict(np.asarray([sample]))).tolist()[0]
        elif kind == "onnx":
            first = model.get_inputs()[0]
            # The element types the services feed (app/model.py's _DTYPES, the Node service's tensors.js).
            dtypes = {
                "tensor(double)": np.float64,
                "tensor(int64)": np.int64,
                "tensor(int32)": np.int32,
                "tensor(float16)": np.float16,
                "tensor(uint8)": np.uint8,
            }
            feed = {first.name: np.asarray([sample], dtype=dtypes.get(first.type, np.float32))}
            prediction = np.asarray(model.run(None, feed)[0]).tolist()[0]
        else:
            import torch

            with torch.inference_mode():
                prediction = model(torch.as_tensor(np.asarray([sample]), dtype=torch.float32)).tolist()[0]
    except Exception as e:  # noqa: BLE001
        return {**out, **fail("predict", e)}
    return {**out, "prediction": short(prediction)}


def import_from(directory, module):
    sys.path.insert(0, directory)
    try:
        return importlib.import_module(module), None
    except ModuleNotFoundError as e:
        # Their own module is missing: an error. One of its imports is missing: not installed here.
        local = os.path.exists(os.path.join(directory, f"{(e.name or '').split('.')[0]}.py"))
        if e.name and e.name != module and not local:
            return None, {"unavailable": e.name}
        return None, fail("import", e)
    except BaseException as e:  # noqa: BLE001 - SyntaxError, SystemExit, anything at import time
        return None, fail("import", e)


def takes_one_argument(fn):
    try:
        inspect.signature(fn).bind(None)
        return True, None
    except TypeError:
        return False, str(inspect.signature(fn))
    except ValueError:  # no signature (a builtin): cannot tell
        return True, None


def check_entry(req):
    module, problem = import_from(req["dir"], req["module"])
    if problem:
        return problem
    fn = getattr(module, req["function"], None)
    if fn is None:
        defined = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        return {"error": {"stage": "function", "type": "AttributeError", "message": "", "defined": defined}}
    if not callable(fn):
        return {"error": {"stage": "function", "type": "TypeError", "message": f"is a {type(fn).__name__}"}}
    ok, signature = takes_one_argument(fn)
    if not ok:
        return {"error": {"stage": "signature", "type": "TypeError", "message": signature}}
    return {"hooks": [n for n in ("load", "predict_batch") if callable(getattr(module, n, None))]}


def check_schema(req):
    try:
        import pydantic
    except ImportError:
        return {"unavailable": "pydantic"}
    module, problem = import_from(req["dir"], req["module"])
    if problem:
        return problem
    cls = getattr(module, req["class"], None)
    if not (inspect.isclass(cls) and issubclass(cls, pydantic.BaseModel)):
        defined = sorted(
            n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, pydantic.BaseModel)
        )
        what = "not defined" if cls is None else f"a {type(cls).__name__}, not a pydantic model"
        return {"error": {"stage": "class", "type": "TypeError", "message": what, "defined": defined}}
    try:
        cls.model_validate(req["example"])
    except pydantic.ValidationError as e:
        problems = [f"{'.'.join(str(p) for p in x['loc'])}: {x['msg']}" for x in e.errors()]
        return {"error": {"stage": "example", "type": "ValidationError", "message": "; ".join(problems)}}
    return {}


def main():
    req = json.loads(sys.argv[1]) if len(sys.argv) > 1 else json.load(sys.stdin)
    result = {"python": sys.version.split()[0], "executable": sys.executable}
    stdout, sys.stdout = sys.stdout, sys.stderr  # the user's code may print; our answer is one line
    try:
        if "model" in req:
            result["model"] = check_model(req["model"])
        if "entry" in req:
            result["entry"] = check_entry(req["entry"])
        if "schema" in req:
            result["schema"] = check_schema(req["schema"])
    except Missing as e:
        result = {**result, "missing": str(e)}
    print(json.dumps(result), file=stdout, flush=True)


main()
