"""Models and files of the image serving benchmark (bench/serve/image.mjs), made with the onnx helper
API (no torch): a cheap 224x224 classifier (the service's own overhead shows), a conv classifier
costing about what a ResNet-18 costs on a CPU for one image, mostly a fixed part per call (32
images cost much less than 32 calls), an
image-to-image one (the answer is a PNG to encode), the
224x224 JPEG every request sends, and the model-only cost of each on this machine.

    python image_models.py <dir>
"""

import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image


def save(nodes, inits, out_shape, path):
    graph = helper.make_graph(
        nodes,
        path.stem,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def cheap(path):
    w = np.array([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]], dtype=np.float32)
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "W"], ["logits"]),
    ]
    save(nodes, [numpy_helper.from_array(w, "W")], ["N", 3], path)


def conv(path, hidden=2560, classes=10):
    """A conv classifier whose cost is mostly a fixed part per call, as the benchmark's batching
    goal asks (a 32-image call costs less than 4x one): an 8x downscaled picture and two 3x3
    convolutions per image (a few MFLOP each) and a small per-image head, plus a dense part of
    128 MB run once per call on the batch's mean features (read once whether the call holds 1
    image or 32) and added to every image's logits. One image costs about what a ResNet-18 or a
    MobileNet costs on a CPU (15-25 ms); unlike those, 32 images cost far less than 32x one."""
    rng = np.random.default_rng(0)

    def weights(name, *shape):
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        values = rng.standard_normal(shape) / np.sqrt(fan_in)
        return numpy_helper.from_array(values.astype(np.float32), name)

    nodes = [
        helper.make_node("AveragePool", ["image"], ["small"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Conv", ["small", "C1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "C2"], ["c2"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("Flatten", ["r2"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "H"], ["own"]),
        # Once per call: the batch's mean features through the 128 MB dense part.
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[0], keepdims=1),
        helper.make_node("MatMul", ["mean", "W"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["act"]),
        helper.make_node("MatMul", ["act", "W2"], ["shared"]),
        helper.make_node("Add", ["own", "shared"], ["logits"]),
    ]
    inits = [
        weights("C1", 16, 3, 3, 3),
        weights("C2", 16, 16, 3, 3),
        weights("H", 16 * 28 * 28, classes),
        weights("W", 16 * 28 * 28, hidden),
        weights("W2", hidden, classes),
    ]
    save(nodes, inits, ["N", classes], path)


def invert(path):
    """Image to image: 1 - x per channel (a 1x1 Conv), answered as a PNG."""
    w = numpy_helper.from_array((-np.eye(3, dtype=np.float32)).reshape(3, 3, 1, 1), "W")
    b = numpy_helper.from_array(np.ones(3, dtype=np.float32), "B")
    nodes = [helper.make_node("Conv", ["image", "W", "B"], ["logits"])]
    save(nodes, [w, b], ["N", 3, 224, 224], path)


def model_cost(path, threads=2, rounds=30):
    """Median ms of one call with 1 image and with 32, on `threads` threads, idle threads sleeping
    (as a worker has them)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    out = {}
    for n in (1, 32):
        x = np.random.default_rng(1).random((n, 3, 224, 224), dtype=np.float32)
        session.run(None, {"image": x})
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            session.run(None, {"image": x})
            times.append(time.perf_counter() - t0)
        out[f"batch{n}_ms"] = round(float(np.median(times)) * 1000, 3)
    return out


def photo(path):
    """A 224x224 JPEG with real structure (gradients and noise), about what a camera sends."""
    y, x = np.mgrid[0:224, 0:224]
    rng = np.random.default_rng(2)
    pixels = np.stack([x, y, (x + y) // 2], axis=-1) + rng.integers(0, 40, (224, 224, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    path.write_bytes(buf.getvalue())


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    cheap(out / "cheap.onnx")
    conv(out / "conv.onnx")
    invert(out / "invert.onnx")
    photo(out / "photo.jpg")
    costs = {name: model_cost(out / f"{name}.onnx") for name in ("cheap", "conv", "invert")}
    print(json.dumps(costs))


if __name__ == "__main__":
    main()
