// Files in and out, decided before anything is written (core/wrap/media.ts): what an ONNX model's
// shapes say, what mlship.yaml and "@file" example values declare, and every mistake in them
// named with where it was made and how to fix it, including a bad preprocess: in mlship.yaml
// located at its line.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServiceSchema } from '../../../src/config/schema.js';
import { type MediaInput, resolveMedia } from '../../../src/core/wrap/media.js';
import { greyPng } from '../../../src/core/wrap/media-samples.js';
import { UsageError } from '../../../src/io/errors.js';
import { configProblems } from '../../helpers/config-problems.js';
import { onnxModel, tensorInput } from './model-files.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-media-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function onnxFile(name: string, input: (number | string)[], output: (number | string)[], elem = 1): string {
  const file = path.join(dir, name);
  writeFileSync(
    file,
    onnxModel([tensorInput('pixels', elem, input)], [], [tensorInput('out', elem, output)]),
  );
  return file;
}

function service(config: object): MediaInput['service'] {
  return { name: 'cats', config: ServiceSchema.parse(config) };
}

/** An ONNX model's settings refused: the UsageError. */
function refusedOnnx(model: string, config: object): Promise<UsageError> {
  return refused({ cwd: dir, kind: 'onnx', model, flags: {}, service: service(config) });
}

async function refused(input: MediaInput): Promise<UsageError> {
  try {
    await resolveMedia(input);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('file inputs and outputs from the ONNX shapes', () => {
  it('an NCHW float input of 3 channels is an image of that size; a [N, K] output is JSON', async () => {
    const model = onnxFile('cls.onnx', ['N', 3, 224, 160], ['N', 10]);
    const r = await resolveMedia({ cwd: dir, kind: 'onnx', model, flags: {} });
    expect(r.media?.inputs).toEqual([
      {
        name: 'pixels',
        kind: 'image',
        maxBytes: 10 * 1024 * 1024,
        accept: ['image/png', 'image/jpeg', 'image/webp'],
        image: {
          resize: 'letterbox',
          width: 160,
          height: 224,
          channels: 'RGB',
          layout: 'NCHW',
          scale: 1 / 255,
          mean: [],
          std: [],
          dtype: 'float32',
        },
      },
    ]);
    expect(r.media?.output).toEqual({ kind: 'json' });
    expect(r.media?.fetchAllow).toEqual([]);
    expect(r.notes[0]).toContain('[N, 3, 224, 160]');
    // The example is a complete request: a grey PNG of the size the model takes.
    const value = (r.example as Record<string, string>).pixels!;
    expect(value).toBe(`data:image/png;base64,${greyPng(160, 224).toString('base64')}`);
  });

  it('a 1-channel input is grey (L); an NCHW image output is answered as an image', async () => {
    const model = onnxFile('denoise.onnx', [1, 1, 64, 64], [1, 1, 64, 64]);
    const r = await resolveMedia({ cwd: dir, kind: 'onnx', model, flags: {} });
    expect(r.media?.inputs[0]?.image).toMatchObject({ channels: 'L', width: 64, height: 64 });
    expect(r.media?.output).toEqual({ kind: 'image', layout: 'NCHW', scale: 255 });
  });

  it('numbers in, numbers out: no files (a tabular model stays a JSON service)', async () => {
    const model = onnxFile('tab.onnx', ['N', 4], ['N', 1]);
    expect((await resolveMedia({ cwd: dir, kind: 'onnx', model, flags: {} })).media).toBeUndefined();
  });

  it('declared settings win over the shapes: preprocess, labels, allow-list, output', async () => {
    const model = onnxFile('cls2.onnx', ['N', 3, 32, 32], ['N', 3]);
    writeFileSync(path.join(dir, 'labels.txt'), 'cat\ndog\n\nbird\n');
    const r = await resolveMedia({
      cwd: dir,
      kind: 'onnx',
      model,
      flags: { fetchAllow: ['s3://uploads/'] },
      service: service({
        inputs: { pixels: { kind: 'image', max_bytes: 2048 } },
        preprocess: { pixels: { resize: 'crop', channels: 'BGR', mean: [0.5], std: [0.25], scale: '1/255' } },
        labels: 'labels.txt',
        fetch_allow: ['https://ignored.example.com/'],
      }),
    });
    expect(r.media?.inputs[0]).toMatchObject({
      maxBytes: 2048,
      image: { resize: 'crop', channels: 'BGR', mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
    });
    expect(r.media?.labels).toEqual(['cat', 'dog', 'bird']);
    expect(r.media?.fetchAllow).toEqual(['s3://uploads/']);
  });
});

describe('"@file" values in the example', () => {
  it('declare a file field by its extension; a small file is kept as base64', async () => {
    writeFileSync(path.join(dir, 'cat.png'), greyPng(4, 4));
    writeFileSync(path.join(dir, 'hello.wav'), Buffer.alloc(64));
    const r = await resolveMedia({
      cwd: dir,
      kind: 'entry',
      example: { photo: '@cat.png', sound: '@hello.wav', threshold: 0.5 },
      exampleFile: path.join(dir, 'example.json'),
      flags: {},
    });
    expect(r.media?.inputs.map((f) => [f.name, f.kind])).toEqual([
      ['photo', 'image'],
      ['sound', 'audio'],
    ]);
    // Your function gets the decoded image unless you declare a preprocess; audio has its rate.
    expect(r.media?.inputs[0]?.image).toBeUndefined();
    expect(r.media?.inputs[1]?.audio).toEqual({ sampleRate: 16_000, maxSeconds: 30 });
    expect(r.example).toMatchObject({
      photo: `data:image/png;base64,${greyPng(4, 4).toString('base64')}`,
      threshold: 0.5,
    });
  });

  it('a file that is not there is named, with the example it is in', async () => {
    const e = await refused({
      cwd: dir,
      kind: 'entry',
      example: { photo: '@missing.jpg' },
      exampleFile: path.join(dir, 'example.json'),
      flags: {},
    });
    expect(e.message).toContain('field "photo"');
    expect(e.message).toContain('missing.jpg');
  });
});

describe('mistakes, named with where they were made and the fix', () => {
  it('a preprocess: for a field that is not a file', async () => {
    const model = onnxFile('cls3.onnx', ['N', 3, 32, 32], ['N', 3]);
    const e = await refusedOnnx(model, { preprocess: { picture: { size: 32 } } });
    expect(e.message).toBe(
      'mlship.yaml services.cats.preprocess.picture: "picture" is not a file field of the request (the file fields are "pixels")',
    );
    expect(e.hint).toContain('inputs:');
  });

  it('channels that do not match the model input, and audio settings on an image', async () => {
    const model = onnxFile('grey.onnx', ['N', 1, 32, 32], ['N', 2]);
    const channels = await refusedOnnx(model, {
      inputs: { pixels: { kind: 'image' } },
      preprocess: { pixels: { channels: 'RGB' } },
    });
    expect(channels.message).toContain('services.cats.preprocess.pixels.channels');
    expect(channels.hint).toBe('set channels to L');
    const audio = await refusedOnnx(model, {
      inputs: { pixels: { kind: 'image' } },
      preprocess: { pixels: { sample_rate: 16000 } },
    });
    expect(audio.message).toContain('"pixels" is an image field');
  });

  it('an image size nobody says: the fix is a size in mlship.yaml', async () => {
    const model = onnxFile('dyn.onnx', ['N', 3, 'H', 'W'], ['N', 3, 'H', 'W']);
    const e = await refusedOnnx(model, { inputs: { pixels: { kind: 'image' } } });
    expect(e.message).toContain('services.cats.preprocess.pixels.size');
    expect(e.hint).toContain('size: "224x224"');
  });

  it('a model file with two file fields (it takes one tensor)', async () => {
    const model = onnxFile('two.onnx', ['N', 3, 32, 32], ['N', 3]);
    const e = await refusedOnnx(model, {
      inputs: { a: { kind: 'image' }, b: { kind: 'image' } },
      preprocess: { a: { size: 32 }, b: { size: 32 } },
    });
    expect(e.message).toContain('"a", "b"');
    expect(e.hint).toContain('--entry');
  });

  it('on the Node runtime: one file field per ONNX input (image by its name, audio, bytes), else the count named', async () => {
    const file = path.join(dir, 'three.onnx');
    writeFileSync(
      file,
      onnxModel(
        [
          tensorInput('photo', 10, ['N', 3, 32, 32]),
          tensorInput('sound', 1, ['N', 'T']),
          tensorInput('blob', 2, ['N', 16]),
        ],
        [],
        [tensorInput('out', 1, ['N', 2])],
      ),
    );
    const config = {
      inputs: { photo: { kind: 'image' }, sound: { kind: 'audio' }, blob: { kind: 'file' } },
      preprocess: { sound: { sample_rate: 8000, max_seconds: 5 } },
    };
    const r = await resolveMedia({
      cwd: dir,
      kind: 'onnx',
      runtime: 'node',
      model: file,
      flags: {},
      service: service(config),
    });
    expect(r.media?.inputs.map((f) => [f.name, f.kind])).toEqual([
      ['photo', 'image'],
      ['sound', 'audio'],
      ['blob', 'file'],
    ]);
    // The image's size and dtype come from the input of its name (float16 here).
    expect(r.media?.inputs[0]?.image).toMatchObject({
      width: 32,
      height: 32,
      dtype: 'float16',
      channels: 'RGB',
    });
    expect(r.media?.inputs[1]?.audio).toEqual({ sampleRate: 8000, maxSeconds: 5 });
    const python = await refused({
      cwd: dir,
      kind: 'onnx',
      model: file,
      flags: {},
      service: service(config),
    });
    expect(python.hint).toContain('--runtime node');
    const two = await refused({
      cwd: dir,
      kind: 'onnx',
      runtime: 'node',
      model: file,
      flags: {},
      service: service({ inputs: { photo: { kind: 'image' }, sound: { kind: 'audio' } } }),
    });
    expect(two.message).toBe(
      'the model takes 3 input(s) (photo, sound, blob); the request has "photo", "sound"',
    );
    expect(two.hint).toContain('one file field per model input');
  });

  it('--fetch-allow that is not an s3:// or https:// prefix', async () => {
    const model = onnxFile('cls4.onnx', ['N', 3, 32, 32], ['N', 3]);
    const e = await refused({ cwd: dir, kind: 'onnx', model, flags: { fetchAllow: ['http://10.0.0.1/'] } });
    expect(e.message).toContain('--fetch-allow http://10.0.0.1/');
  });

  it('a bad preprocess: in mlship.yaml: each problem at its line, with the fix', () => {
    const brief = configProblems([
      'version: 1',
      'name: pets',
      'services:',
      '  cats:',
      '    model: cats.onnx',
      '    preprocess:',
      '      image:',
      '        resize: squash',
      '        mean: [0.5, 0.5]',
      '        std: [0.2, 0.2, 0.2]',
      '        size: 224-224',
      '    fetch_allow: [http://169.254.169.254/]',
    ]);
    expect(brief['services.cats.preprocess.image.resize']).toMatch(/^8: .*/);
    expect(brief['services.cats.preprocess.image.resize']).toContain('"letterbox"');
    expect(brief['services.cats.preprocess.image.size']).toMatch(/^11: .*WxH/);
    expect(brief['services.cats.fetch_allow[0]']).toMatch(/^12: .*s3:\/\/bucket\//);
  });
});
