// Shared by the wrap integration tests: quiet task runner, host-side fixture
// models (created at test time with the pinned .venv), HTTP helpers.

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import type { TaskRunner } from '../../src/io/progress.js';
import { runPool } from '../../src/io/progress.js';

/** Runs tasks without a terminal; keeps their output for failure messages. */
export function quietTasks(log: string[] = []): TaskRunner {
  return {
    run: (tasks, options = {}) =>
      runPool(tasks, options, () => ({ title: () => undefined, output: (line) => log.push(line) })),
  };
}

const PYTHON = path.resolve('.venv/bin/python');

/** Runs Python in the host .venv (scikit-learn, skl2onnx, onnxruntime, pinned in requirements-dev.txt). */
export function python(code: string, args: string[] = []): string {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create .venv with requirements-dev.txt`);
  return execFileSync(PYTHON, ['-c', code, ...args], { encoding: 'utf8' });
}

/** A logistic regression on iris, converted to ONNX (float input [N, 4], label output first). */
export function makeIrisOnnx(file: string): void {
  python(
    `
import sys
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from skl2onnx import to_onnx
import numpy as np
X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(X, y)
onx = to_onnx(model, X[:1].astype(np.float32), options={id(model): {"zipmap": False}}, target_opset=17)
open(sys.argv[1], "wb").write(onx.SerializeToString())
`,
    [file],
  );
}

/** What the model file itself predicts for rows, computed on the host (the truth the service must match). */
export function hostPredict(modelFile: string, rows: number[][]): unknown[] {
  const out = python(
    `
import json, sys
rows = json.loads(sys.argv[2])
if sys.argv[1].endswith(".onnx"):
    import numpy as np, onnxruntime as ort
    s = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
    print(json.dumps(np.asarray(s.run(None, {s.get_inputs()[0].name: np.asarray(rows, dtype=np.float32)})[0]).tolist()))
else:
    import joblib, numpy as np
    print(json.dumps(np.asarray(joblib.load(sys.argv[1]).predict(np.asarray(rows))).tolist()))
`,
    [modelFile, JSON.stringify(rows)],
  );
  return JSON.parse(out) as unknown[];
}

export interface Reply {
  status: number;
  headers: Headers;
  body: unknown;
  text: string;
}

/**
 * fetch, sent again once when it went out on a kept-alive socket the service had already closed:
 * hostPredict's execFileSync blocks the event loop, so on a loaded machine undici cannot retire
 * an idle socket before gunicorn's 5 s keepalive closes it ("other side closed").
 */
async function fetchFresh(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if ((e as { cause?: { code?: string } }).cause?.code !== 'UND_ERR_SOCKET') throw e;
    return fetch(url, init);
  }
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return reply(
    await fetchFresh(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    }),
  );
}

export async function get(url: string): Promise<Reply> {
  return reply(await fetchFresh(url));
}

/** The response with its body parsed as JSON when it is JSON (not /metrics, not plain text). */
async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/**
 * 20 iris inputs sent as one /predict/batch: answered in order, as the model answers them on the
 * host, in 3 model calls (batches of at most 8), as the service's own metrics count them.
 */
/** Iris rows as the named inputs the services take. */
export function irisInputs(rows: number[][]): Record<string, number | undefined>[] {
  return rows.map(([a, b, c, d]) => ({ sepal_length: a, sepal_width: b, petal_length: c, petal_width: d }));
}

export async function expectTwentyInputsInThreeCalls(url: string, model: string): Promise<void> {
  const before = (await get(`${url}/metrics`)).text;
  const rows = Array.from({ length: 20 }, (_, i) => [5 + i * 0.1, 3, 1 + i * 0.2, 0.2 + i * 0.1]);
  const r = await post(`${url}/predict/batch`, { inputs: irisInputs(rows) });
  expect(r.status).toBe(200);
  expect((r.body as { predictions: unknown[] }).predictions).toEqual(hostPredict(model, rows));
  const after = (await get(`${url}/metrics`)).text;
  const delta = (name: string) => metric(after, name) - metric(before, name);
  expect(delta('mlship_batch_size_count')).toBe(3);
  expect(delta('mlship_batch_size_sum')).toBe(20);
}

/** The value of one Prometheus sample (summed over lines that match all label fragments). */
export function metric(text: string, name: string, ...labels: string[]): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels.every((l) => line.includes(l))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/**
 * An image classifier made with the onnx helper API (no torch): input [N, 3, size, size] float,
 * output [N, 3] logits = the mean of each channel times [[2, -1, -1], [-1, 2, -1], [-1, -1, 2]]:
 * a red picture is class 0, green 1, blue 2. `heavy` adds a chain of 3x3 convolutions so a call
 * costs real compute (the batching benchmark).
 */
export function makeImageClassifierOnnx(file: string, size: number, heavy = 0): void {
  python(
    `
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
size, heavy = int(sys.argv[2]), int(sys.argv[3])
w = np.array([[2, -1, -1], [-1, 2, -1], [-1, -1, 2]], dtype=np.float32)
inits = [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.zeros(3, np.float32), "B")]
nodes, x = [], "image"
for i in range(heavy):
    # 3x3 smoothing that keeps each channel's mean: the class stays the same.
    k = np.zeros((3, 3, 3, 3), np.float32)
    for c in range(3):
        k[c, c] = 1 / 9
    inits.append(numpy_helper.from_array(k, f"K{i}"))
    nodes.append(helper.make_node("Conv", [x, f"K{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
    x = f"c{i}"
nodes += [
    helper.make_node("GlobalAveragePool", [x], ["pooled"]),
    helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    helper.make_node("MatMul", ["flat", "W"], ["mm"]),
    helper.make_node("Add", ["mm", "B"], ["logits"]),
]
graph = helper.make_graph(nodes, "classifier",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, size, size])],
    [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
`,
    [file, String(size), String(heavy)],
  );
}

/** An image-to-image model (onnx helper API): 1 - x per channel as a 1x1 Conv, [N, 3, size, size] float. */
export function makeInvertOnnx(file: string, size: number): void {
  python(
    `
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
size = int(sys.argv[2])
w = numpy_helper.from_array((-np.eye(3, dtype=np.float32)).reshape(3, 3, 1, 1), "W")
b = numpy_helper.from_array(np.ones(3, dtype=np.float32), "B")
graph = helper.make_graph([helper.make_node("Conv", ["input", "W", "B"], ["output"])], "invert",
    [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, size, size])],
    [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 3, size, size])], [w, b])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, sys.argv[1])
`,
    [file, String(size)],
  );
}

/** Pictures made on the host with Pillow: a solid colour, or pixels from a seed; PNG or JPEG bytes. */
export function makePicture(options: {
  width: number;
  height: number;
  color?: [number, number, number];
  format?: 'PNG' | 'JPEG';
  seed?: number;
}): Buffer {
  const out = python(
    `
import base64, io, json, sys
import numpy as np
from PIL import Image
o = json.loads(sys.argv[1])
if o.get("color"):
    image = Image.new("RGB", (o["width"], o["height"]), tuple(o["color"]))
else:
    rng = np.random.default_rng(o.get("seed", 0))
    image = Image.fromarray(rng.integers(0, 256, (o["height"], o["width"], 3), dtype=np.uint8))
buf = io.BytesIO()
image.save(buf, format=o.get("format", "PNG"), quality=90)
print(base64.b64encode(buf.getvalue()).decode())
`,
    [JSON.stringify(options)],
  );
  return Buffer.from(out.trim(), 'base64');
}

/** A decompression bomb: a 1-bit PNG of width x height (a few kilobytes, billions of pixels decoded). */
export function makeBombPng(width: number, height: number): Buffer {
  const out = python(
    `
import base64, io, sys
from PIL import Image
Image.MAX_IMAGE_PIXELS = None
buf = io.BytesIO()
Image.new("1", (int(sys.argv[1]), int(sys.argv[2]))).save(buf, format="PNG", optimize=True)
print(base64.b64encode(buf.getvalue()).decode())
`,
    [String(width), String(height)],
  );
  return Buffer.from(out.trim(), 'base64');
}

/** A PNG/JPEG/WebP answer decoded on the host: its format and pixels as [height][width][RGB]. */
export function decodePicture(data: Buffer): { format: string; pixels: number[][][] } {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: create .venv with requirements-dev.txt`);
  const code = `
import io, json, sys
import numpy as np
from PIL import Image
image = Image.open(io.BytesIO(sys.stdin.buffer.read()))
print(json.dumps({"format": image.format, "pixels": np.asarray(image.convert("RGB")).tolist()}))
`;
  const out = execFileSync(PYTHON, ['-c', code], { input: data, encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out) as { format: string; pixels: number[][][] };
}
