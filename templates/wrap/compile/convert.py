"""Converts a model for `mlship wrap --compile onnx` / `--quantize int8`, and proves the answers equal.

Runs inside mlship's converter image, with the same pinned onnxruntime the service will
serve the model with, so the comparison is the one that matters:

    python convert.py MODEL ROWS.json OUT.onnx --compile onnx|none --quantize int8|none --tolerance T

ROWS.json: {"rows": [[...], ...], "sources": ["example", "check-data line 3", ...]}, each row
as the service builds it from a request. Prints one JSON report on stdout (last line), writes
OUT.onnx only when the converted model answers as the original does:
  - classification: every label equal;
  - probabilities and regression outputs: |original - converted| <= T * max(1, |original|).
Exit 0 with "equal": true, exit 3 with "equal": false and the worst differences, exit 2 when
the model cannot be converted at all ("error" says why).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

WORST_SHOWN = 5


class Refused(Exception):
    """The model cannot be converted (or quantized); the message says why."""


def load_original(path: str) -> Any:
    if path.endswith(".onnx"):
        import onnxruntime as ort

        return ort.InferenceSession(path, _session_options(), providers=["CPUExecutionProvider"])
    import joblib

    return joblib.load(path)


def _session_options() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Latencies are measured as one service worker with one thread runs the model.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return options


def _final_estimator(model: Any) -> Any:
    steps = getattr(model, "steps", None)
    return steps[-1][1] if steps else model


def to_onnx(model: Any, width: int) -> bytes:
    """scikit-learn through skl2onnx; LightGBM and XGBoost estimators through onnxmltools."""
    final = _final_estimator(model)
    module = type(final).__module__.split(".")[0]
    is_classifier = hasattr(final, "classes_")
    if module in ("lightgbm", "xgboost") and final is model:
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        types = [("input", FloatTensorType([None, width]))]
        convert = onnxmltools.convert_lightgbm if module == "lightgbm" else onnxmltools.convert_xgboost
        kwargs = {"zipmap": False} if module == "lightgbm" and is_classifier else {}
        return convert(model, initial_types=types, **kwargs).SerializeToString()
    from skl2onnx import to_onnx as skl_to_onnx

    _booleans_as_integers()
    options = {id(final): {"zipmap": False}} if is_classifier else None
    sample = np.zeros((1, width), dtype=np.float32)
    try:
        return skl_to_onnx(model, sample, options=options).SerializeToString()
    except Exception as error:  # the converter's reason goes into the report
        raise Refused(f"skl2onnx cannot convert {type(model).__name__}: {error}") from error


def _booleans_as_integers() -> None:
    """skl2onnx 1.20 writes a Python bool (a leaf's missing-value flag) into an integer list
    attribute of HistGradientBoosting trees, which onnx 1.23 refuses: it means 0 or 1."""
    import onnx.helper

    make_attribute = onnx.helper.make_attribute
    if getattr(make_attribute, "mlship", False):
        return

    def lenient(key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(value, (list, tuple)) and any(isinstance(v, bool) for v in value):
            value = [int(v) if isinstance(v, bool) else v for v in value]
        return make_attribute(key, value, *args, **kwargs)

    lenient.mlship = True  # type: ignore[attr-defined]
    onnx.helper.make_attribute = lenient


def quantize_int8(model_bytes: bytes, work: Path) -> bytes:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load_from_string(model_bytes).graph
    if not any(node.op_type in ("MatMul", "Gemm", "Conv") for node in graph.node):
        raise Refused(
            "int8 quantization applies to neural networks (MatMul, Gemm or Conv layers); this model has none"
        )
    source, target = work / "float.onnx", work / "int8.onnx"
    source.write_bytes(model_bytes)
    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return target.read_bytes()


class Runner:
    """One way to answer rows: labels (classification) or values, and probabilities when there are any."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.onnx = hasattr(model, "get_inputs")
        if self.onnx:
            first = model.get_inputs()[0]
            self.input = first.name
            self.dtype = np.float64 if first.type == "tensor(double)" else np.float32

    def run(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if self.onnx:
            outputs = self.model.run(None, {self.input: rows.astype(self.dtype)})
            first = np.asarray(outputs[0])
            first = first.reshape(len(rows)) if first.ndim == 2 and first.shape[1] == 1 else first
            probabilities = np.asarray(outputs[1], dtype=np.float64) if len(outputs) > 1 else None
            return first, probabilities
        first = np.asarray(self.model.predict(rows))
        probabilities = None
        if hasattr(_final_estimator(self.model), "classes_") and hasattr(self.model, "predict_proba"):
            probabilities = np.asarray(self.model.predict_proba(rows), dtype=np.float64)
        return first, probabilities

    def latency_ms(self, rows: np.ndarray, repeat: int = 30) -> float:
        """Median of one call's time (the median shrugs off a busy neighbour)."""
        self.run(rows)
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            self.run(rows)
            times.append(time.perf_counter() - t0)
        return round(float(np.median(times)) * 1000, 3)


def _is_label(values: np.ndarray, probabilities: np.ndarray | None) -> bool:
    return probabilities is not None or values.dtype.kind in "iuUOSb"


def _labels_equal(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def compare(
    before: tuple[np.ndarray, np.ndarray | None],
    after: tuple[np.ndarray, np.ndarray | None],
    sources: list[str],
    tolerance: float,
) -> dict[str, Any]:
    (values_a, proba_a), (values_b, proba_b) = before, after
    worst: list[dict[str, Any]] = []
    report: dict[str, Any] = {"rows": len(values_a), "tolerance": tolerance}
    if _is_label(values_a, proba_a):
        matched = [_labels_equal(a, b) for a, b in zip(values_a.tolist(), values_b.tolist(), strict=True)]
        report["labels"] = {"matched": int(sum(matched)), "total": len(matched)}
        for i, ok in enumerate(matched):
            if not ok:
                worst.append(
                    {
                        "row": i,
                        "source": sources[i],
                        "what": "label",
                        "original": values_a[i].item(),
                        "converted": values_b[i].item(),
                        "difference": None,
                    }
                )
        ok_labels = all(matched)
        if proba_a is not None and proba_b is not None:
            report["output"] = "labels and probabilities"
            diff = np.abs(proba_a - proba_b).max(axis=1)
            allowed = tolerance * np.maximum(1.0, np.abs(proba_a).max(axis=1))
        else:
            report["output"] = "labels"
            diff = allowed = np.zeros(len(values_a))
    else:
        report["output"] = "values"
        ok_labels = True
        a = values_a.reshape(len(values_a), -1).astype(np.float64)
        b = values_b.reshape(len(values_b), -1).astype(np.float64)
        diff = np.abs(a - b).max(axis=1)
        allowed = tolerance * np.maximum(1.0, np.abs(a).max(axis=1))
    report["max_difference"] = float(diff.max()) if len(diff) else 0.0
    over = diff > allowed
    # Worst first by how far over its allowance each row is (a large output has a larger one).
    for i in np.argsort(-(diff / np.maximum(allowed, 1e-300))):
        if not over[i] or len(worst) >= WORST_SHOWN:
            break
        original = proba_a[i].tolist() if proba_a is not None else values_a[i].tolist()
        converted = proba_b[i].tolist() if proba_b is not None else values_b[i].tolist()
        worst.append(
            {
                "row": int(i),
                "source": sources[i],
                "what": "output",
                "original": original,
                "converted": converted,
                "difference": float(diff[i]),
            }
        )
    report["outputs_over"] = int(over.sum())
    report["equal"] = bool(ok_labels and not over.any())
    report["worst"] = worst[:WORST_SHOWN]
    return report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("rows")
    parser.add_argument("out")
    parser.add_argument("--compile", default="none", choices=["onnx", "none"])
    parser.add_argument("--quantize", default="none", choices=["int8", "none"])
    parser.add_argument("--tolerance", type=float, required=True)
    args = parser.parse_args()

    data = json.loads(Path(args.rows).read_text())
    rows = np.asarray(data["rows"], dtype=np.float64)
    out = Path(args.out)
    try:
        original = load_original(args.model)
        converted = Path(args.model).read_bytes() if args.model.endswith(".onnx") else None
        if args.compile == "onnx" and converted is None:
            converted = to_onnx(original, rows.shape[1])
        if converted is None:
            raise Refused("nothing to do: --quantize needs an ONNX model, or --compile onnx first")
        if args.quantize == "int8":
            converted = quantize_int8(converted, out.parent)
    except Refused as error:
        print(json.dumps({"error": str(error)}))
        return 2

    import onnxruntime as ort

    session = ort.InferenceSession(converted, _session_options(), providers=["CPUExecutionProvider"])
    before, after = Runner(original), Runner(session)
    report = compare(before.run(rows), after.run(rows), data["sources"], args.tolerance)
    batch = np.resize(rows, (64, rows.shape[1]))
    report["size_bytes"] = {"before": os.path.getsize(args.model), "after": len(converted)}
    report["latency_ms"] = {
        "before": {"1": before.latency_ms(rows[:1]), "64": before.latency_ms(batch)},
        "after": {"1": after.latency_ms(rows[:1]), "64": after.latency_ms(batch)},
    }
    if report["equal"]:
        out.write_bytes(converted)
    print(json.dumps(report))
    return 0 if report["equal"] else 3


if __name__ == "__main__":
    sys.exit(main())
