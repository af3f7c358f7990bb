// Wrap specs covering every template branch: each model kind, both runtimes,
// every weights mode, batching on and off. Shared by the golden and lint tests.

import type { WrapSpec } from '../../../src/generators/wrap-spec.js';

const IRIS_EXAMPLE = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };

const base: Omit<WrapSpec, 'name' | 'kind' | 'example' | 'weights'> = {
  runtime: 'python',
  port: 8080,
  workers: 0,
  maxBodyBytes: 1_048_576,
  maxQueue: 256,
  startupGraceSeconds: 60,
  baseImage: 'python:3.11-slim',
  hasUserRequirements: false,
  extraRequirements: [],
};

export const CASES: Record<string, WrapSpec> = {
  'sklearn-mount': {
    ...base,
    name: 'iris',
    kind: 'sklearn',
    example: IRIS_EXAMPLE,
    weights: { mode: 'mount', source: '../fixtures/wrap/iris/model.joblib', target: '/models/model.joblib' },
    // Every kind of range: seen in examples, declared as a hint, declared as a limit.
    ranges: {
      sepal_length: { minimum: 4.3, maximum: 7.9, strict: false, from: 'examples' },
      sepal_width: { minimum: 0, maximum: 10, strict: true, from: 'mlship.yaml' },
      petal_width: { minimum: 0.1, strict: false, from: 'mlship.yaml' },
    },
  },
  'sklearn-bake-batching': {
    ...base,
    name: 'iris-batched',
    kind: 'sklearn',
    example: { features: [5.1, 3.5, 1.4, 0.2], 'flag-1': true },
    workers: 2,
    batching: { maxBatchSize: 64, maxLatencyMs: 20 },
    baseImage: 'registry.local/python:3.11-slim',
    weights: { mode: 'bake', file: 'weights/model.joblib', target: '/models/model.joblib' },
  },
  'sklearn-user-schema': {
    ...base,
    name: 'iris-typed',
    kind: 'sklearn',
    example: IRIS_EXAMPLE,
    userSchema: {
      className: 'Flower',
      source:
        'from pydantic import BaseModel, Field\n\n\nclass Flower(BaseModel):\n    sepal_length: float = Field(gt=0)\n    sepal_width: float = Field(gt=0)\n    petal_length: float = Field(gt=0)\n    petal_width: float = Field(gt=0)\n',
    },
    weights: { mode: 'mount', source: '../fixtures/wrap/iris/model.joblib', target: '/models/model.joblib' },
  },
  'onnx-https': {
    ...base,
    name: 'forest',
    kind: 'onnx',
    example: { features: [0.1, 0.2, 0.3] },
    startupGraceSeconds: 300,
    weights: {
      mode: 'url',
      url: 'https://models.example.com/forest.onnx',
      sha256: 'a'.repeat(64),
      target: '/models/forest.onnx',
    },
  },
  'sklearn-compiled-non-finite': {
    ...base,
    name: 'prices',
    kind: 'onnx',
    compiledFrom: 'sklearn',
    allowNonFinite: true,
    example: { rooms: 3, area: 72.5, features: [1, 0, 1] },
    weights: { mode: 'mount', source: 'weights/model.onnx', target: '/models/model.onnx' },
  },
  'torchscript-s3-tensor': {
    ...base,
    name: 'digits',
    kind: 'torchscript',
    example: {
      image: [
        [0, 1],
        [1, 0],
      ],
    },
    weights: {
      mode: 'url',
      url: 's3://bucket/digits.pt',
      sha256: 'b'.repeat(64),
      target: '/models/digits.pt',
    },
    extraRequirements: [],
  },
  'entry-user-requirements': {
    ...base,
    name: 'slow-entry',
    kind: 'entry',
    entry: { module: 'predict', function: 'predict' },
    example: { x: 1.0, delay: 0, class: 'a', tags: ['x', 'y'], meta: { k: 1 }, missing: null },
    port: 9000,
    maxQueue: 4,
    maxBodyBytes: 4096,
    hasUserRequirements: true,
    weights: { mode: 'none' },
  },
  'onnx-image-classifier': {
    ...base,
    name: 'cats',
    kind: 'onnx',
    example: {},
    batching: { maxBatchSize: 16, maxLatencyMs: 5 },
    weights: { mode: 'mount', source: '../cats.onnx', target: '/models/cats.onnx' },
    media: {
      inputs: [
        {
          name: 'image',
          kind: 'image',
          maxBytes: 10_485_760,
          accept: ['image/png', 'image/jpeg', 'image/webp'],
          image: {
            resize: 'letterbox',
            width: 32,
            height: 32,
            channels: 'RGB',
            layout: 'NCHW',
            scale: 1 / 255,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
            dtype: 'float32',
          },
        },
      ],
      output: { kind: 'json' },
      labels: ['cat', 'dog', 'bird'],
      fetchAllow: ['s3://uploads/'],
      maxPixels: 40_000_000,
    },
  },
  'onnx-image-to-image': {
    ...base,
    name: 'invert',
    kind: 'onnx',
    example: {},
    weights: { mode: 'mount', source: '../invert.onnx', target: '/models/invert.onnx' },
    media: {
      inputs: [
        {
          name: 'input',
          kind: 'image',
          maxBytes: 1_048_576,
          accept: ['image/png', 'image/jpeg'],
          image: {
            resize: 'stretch',
            width: 16,
            height: 16,
            channels: 'L',
            layout: 'NHWC',
            scale: 1,
            mean: [],
            std: [],
            dtype: 'uint8',
          },
        },
      ],
      output: { kind: 'image', layout: 'NHWC', scale: 1 },
      fetchAllow: [],
      maxPixels: 1_000_000,
    },
  },
  'entry-audio-boxes': {
    ...base,
    name: 'listen',
    kind: 'entry',
    entry: { module: 'predict', function: 'predict' },
    example: { threshold: 0.5 },
    ranges: { threshold: { minimum: 0, maximum: 1, strict: true, from: 'mlship.yaml' } },
    weights: { mode: 'none' },
    media: {
      inputs: [
        {
          name: 'sound',
          kind: 'audio',
          maxBytes: 2_000_000,
          accept: ['audio/wav', 'audio/x-wav', 'audio/wave'],
          audio: { sampleRate: 16_000, maxSeconds: 10 },
        },
        {
          name: 'photo-1',
          kind: 'image',
          maxBytes: 5_000_000,
          accept: ['image/png', 'image/jpeg'],
          image: {
            resize: 'crop',
            width: 64,
            height: 48,
            channels: 'BGR',
            layout: 'NHWC',
            scale: 1,
            mean: [],
            std: [],
            dtype: 'float16',
          },
        },
        { name: 'notes', kind: 'file', maxBytes: 4096, accept: ['text/plain'] },
      ],
      output: { kind: 'json' },
      fetchAllow: ['https://media.example.com/', 's3://bucket/in/'],
      maxPixels: 20_000_000,
    },
  },
  'node-onnx-batching': {
    ...base,
    name: 'forest-node',
    runtime: 'node',
    kind: 'onnx',
    baseImage: 'node:22-slim',
    example: { features: [0.1, 0.2, 0.3], bias: 1 },
    batching: { maxBatchSize: 32, maxLatencyMs: 10 },
    weights: { mode: 'mount', source: '../forest.onnx', target: '/models/forest.onnx' },
  },
};

// An image classifier on Node: the Python classifier's file settings, cropped, with a type media.js
// does not decode (dropped from what the service accepts).
const pythonImage = CASES['onnx-image-classifier']!.media!;
CASES['node-onnx-image'] = {
  ...base,
  name: 'pets-node',
  runtime: 'node',
  kind: 'onnx',
  baseImage: 'node:22-slim',
  example: { image: '@cat.png' },
  weights: { mode: 'mount', source: '../pets.onnx', target: '/models/pets.onnx' },
  media: {
    ...pythonImage,
    inputs: pythonImage.inputs.map((f) => ({
      ...f,
      accept: [...f.accept, 'image/gif'],
      image: { ...f.image!, resize: 'crop' },
    })),
    labels: ['cat', 'dog'],
  },
};

// Every kind of file on Node: a WAV sound (with a type wav.js does not decode, dropped), a float16
// BGR picture and a generic file, each feeding an ONNX input of its own.
const entryFiles = CASES['entry-audio-boxes']!.media!;
CASES['node-onnx-files'] = {
  ...base,
  name: 'listen-node',
  runtime: 'node',
  kind: 'onnx',
  baseImage: 'node:22-slim',
  example: {},
  batching: { maxBatchSize: 8, maxLatencyMs: 5 },
  weights: { mode: 'bake', file: 'weights/listen.onnx', target: '/models/listen.onnx' },
  media: {
    ...entryFiles,
    inputs: entryFiles.inputs.map((f) =>
      f.kind === 'audio' ? { ...f, accept: [...f.accept, 'audio/mpeg'] } : f,
    ),
  },
};
