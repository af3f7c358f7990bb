// The format check `mlship wrap` runs on every model file before writing anything, with no
// Python needed: a pickle/joblib header and its STOP byte, an ONNX protobuf walked field by
// field (which also yields the input shapes), a TorchScript zip with its code/ directory.
// It reads only what it needs (headers, lengths, small messages) at known offsets, so a
// multi-gigabyte model costs a few hundred small reads, not its size in memory.

import { type FileHandle, open } from 'node:fs/promises';
import path from 'node:path';
import type { ModelKind } from '../../generators/wrap-spec.js';

/** One graph input of an ONNX model (initializers excluded): dims are sizes, symbolic names, or unknown. */
export interface OnnxInput {
  name: string;
  /** onnx.TensorProto.DataType (1 float, 7 int64, 11 double, ...); 0 when not a tensor. */
  elemType: number;
  /** undefined when the model declares no shape. */
  dims?: (number | string | null)[];
}

export type FormatResult =
  | {
      ok: true;
      /** What was recognised, e.g. "pickle protocol 4", "ONNX (IR 8)". */
      format: string;
      /** What the header alone cannot tell (a compressed joblib's content, ...). */
      notes: string[];
      onnxInputs?: OnnxInput[];
      /** The graph's outputs (same shape description as the inputs). */
      onnxOutputs?: OnnxInput[];
    }
  | { ok: false; problem: string; hint?: string };

export const EXPECTED: Record<Exclude<ModelKind, 'entry'>, string> = {
  sklearn: 'a scikit-learn model saved with joblib.dump or pickle.dump',
  onnx: 'an ONNX model (a ModelProto, e.g. from torch.onnx.export or skl2onnx)',
  torchscript: 'a TorchScript archive saved with torch.jit.save (torch.jit.script or torch.jit.trace)',
};

class Problem extends Error {}

const WINDOW = 64 * 1024;

/**
 * Positional reads over an open file (short near the end), through one 64 KiB window: walking
 * a graph of thousands of small nodes costs a few reads, not two per field.
 */
class Bytes {
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly fh: FileHandle,
    readonly size: number,
  ) {}

  async at(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const rel = offset - this.windowStart;
    if (rel >= 0 && rel + n <= this.window.length) return this.window.subarray(rel, rel + n);
    const buf = Buffer.alloc(Math.max(n, Math.min(WINDOW, this.size - offset)));
    if (buf.length > 0) await this.fh.read(buf, 0, buf.length, offset);
    if (buf.length <= WINDOW) {
      this.window = buf;
      this.windowStart = offset;
    }
    return buf.subarray(0, n);
  }
}

export async function checkModelFormat(
  file: string,
  kind: Exclude<ModelKind, 'entry'>,
): Promise<FormatResult> {
  const fh = await open(file, 'r');
  try {
    const bytes = new Bytes(fh, (await fh.stat()).size);
    const head = await bytes.at(0, 64);
    const other = recognisedElsewhere(head, bytes.size, kind);
    if (other) return { ok: false, ...other };
    try {
      if (kind === 'sklearn') return await checkPickle(bytes, head);
      if (kind === 'onnx') return await checkOnnx(bytes);
      return await checkTorchScript(bytes, head);
    } catch (e) {
      if (e instanceof Problem) return { ok: false, problem: e.message };
      throw e;
    }
  } finally {
    await fh.close();
  }
}

/** Files that are plainly something else: said first, with what to do about them. */
function recognisedElsewhere(
  head: Buffer,
  size: number,
  kind: ModelKind,
): { problem: string; hint?: string } | undefined {
  const text = head.toString('latin1');
  if (size === 0) return { problem: 'the file is empty' };
  if (text.startsWith('version https://git-lfs')) {
    return {
      problem: 'it is a Git LFS pointer, not the model itself',
      hint: 'fetch the real file with `git lfs pull` (or download it again), then wrap it',
    };
  }
  if (/^\s*<(!doctype html|html)/i.test(text)) {
    return {
      problem: 'it is an HTML page, not a model (a download that returned a web page?)',
      hint: 'download the file again from its direct link',
    };
  }
  if (head.subarray(0, 4).equals(Buffer.from([0x89, 0x48, 0x44, 0x46]))) {
    return {
      problem: 'it is an HDF5 file (Keras .h5?), which mlship does not serve',
      hint: 'convert it to ONNX (tf2onnx) and wrap the .onnx, or wrap your own loader with --entry',
    };
  }
  const zip = isZip(head);
  if (zip && kind !== 'torchscript') {
    return {
      problem: 'it is a zip archive (a PyTorch or TorchScript file?)',
      hint: 'a TorchScript file should be named .pt; a PyTorch checkpoint needs --entry with your own load()',
    };
  }
  return undefined;
}

function isZip(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === 0x04034b50;
}

// --- pickle / joblib --------------------------------------------------------------------

const COMPRESSED: [string, number[]][] = [
  ['gzip', [0x1f, 0x8b]],
  ['bz2', [0x42, 0x5a, 0x68]],
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['lz4', [0x04, 0x22, 0x4d, 0x18]],
  ['lzma', [0x5d, 0x00, 0x00]],
  ['joblib zlib', [0x5a, 0x46, 0x30, 0x78]], // "ZF0x": joblib < 0.10
];
const ZLIB_SECOND = new Set([0x01, 0x5e, 0x9c, 0xda]);
/** First opcodes of protocol 0/1 pickles: MARK, EMPTY_LIST, EMPTY_DICT, GLOBAL, NONE, INT, ... */
const OLD_PICKLE_START = new Set('(]}cNIFLSVX'.split('').map((c) => c.charCodeAt(0)));
const STOP = 0x2e;

async function checkPickle(bytes: Bytes, head: Buffer): Promise<FormatResult> {
  for (const [name, magic] of COMPRESSED) {
    if (magic.every((b, i) => head[i] === b)) {
      return {
        ok: true,
        format: `joblib, ${name}-compressed`,
        notes: ['compressed: its content is checked only by loading it'],
      };
    }
  }
  if (head[0] === 0x78 && ZLIB_SECOND.has(head[1]!)) {
    return {
      ok: true,
      format: 'joblib, zlib-compressed',
      notes: ['compressed: its content is checked only by loading it'],
    };
  }
  let format: string;
  if (head[0] === 0x80 && head[1]! >= 2 && head[1]! <= 5) format = `pickle protocol ${head[1]}`;
  else if (OLD_PICKLE_START.has(head[0]!)) format = 'pickle protocol 0/1';
  else {
    throw new Problem(`it is not a pickle or joblib file (it starts with bytes ${hex(head.subarray(0, 8))})`);
  }
  // A complete pickle ends with STOP; joblib writes its arrays inside the stream, before it.
  const last = (await bytes.at(bytes.size - 1, 1))[0];
  if (last !== STOP && head[0] === 0x80) {
    throw new Problem(
      `it starts like a ${format} but does not end with the pickle STOP opcode: the file is truncated (an interrupted download or copy?)`,
    );
  }
  if (last !== STOP) {
    // One opcode byte is a weak header: 11 of 256 random first bytes look like it.
    throw new Problem(
      `it is not a complete pickle: no STOP opcode at its end (truncated, or not a pickle at all: it starts with bytes ${hex(head.subarray(0, 8))})`,
    );
  }
  return { ok: true, format, notes: [] };
}

function hex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

// --- ONNX (protobuf) --------------------------------------------------------------------

type Field =
  | { field: number; wire: 0; value: number }
  | { field: number; wire: 2; start: number; end: number }
  | { field: number; wire: 1 | 5 };

/** The fields of one protobuf message between start and end, read lazily. */
async function* fields(bytes: Bytes, start: number, end: number): AsyncGenerator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, n] = await varint(bytes, pos, end);
    const at = pos;
    pos += n;
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Problem(`invalid protobuf field number 0 at byte ${at}`);
    if (wire === 0) {
      const [value, m] = await varint(bytes, pos, end);
      pos += m;
      yield { field, wire, value };
    } else if (wire === 2) {
      const [length, m] = await varint(bytes, pos, end);
      pos += m;
      if (pos + length > end)
        throw new Problem(
          `a protobuf field at byte ${at} runs past the end of its message (truncated file?)`,
        );
      yield { field, wire, start: pos, end: pos + length };
      pos += length;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > end) throw new Problem(`a protobuf field at byte ${at} runs past the end (truncated file?)`);
      yield { field, wire };
    } else {
      throw new Problem(`invalid protobuf wire type ${wire} at byte ${at}`);
    }
  }
}

async function varint(bytes: Bytes, pos: number, end: number): Promise<[number, number]> {
  const buf = await bytes.at(pos, Math.min(10, end - pos));
  let value = 0;
  let scale = 1;
  for (let i = 0; i < buf.length; i++) {
    const b = buf[i]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if (b < 0x80) return [value, i + 1];
  }
  throw new Problem(`a protobuf varint at byte ${pos} does not end (truncated or not protobuf)`);
}

async function text(bytes: Bytes, f: Field): Promise<string> {
  return f.wire === 2 ? (await bytes.at(f.start, Math.min(f.end - f.start, 4096))).toString('utf8') : '';
}

/** ModelProto: ir_version = 1, graph = 7; GraphProto: initializer = 5, input = 11, output = 12. */
async function checkOnnx(bytes: Bytes): Promise<FormatResult> {
  let irVersion: number | undefined;
  let graph: Field | undefined;
  for await (const f of fields(bytes, 0, bytes.size)) {
    if (f.field === 1 && f.wire === 0) irVersion = f.value;
    if (f.field === 7 && f.wire === 2) graph = f;
  }
  if (irVersion === undefined || graph?.wire !== 2) {
    throw new Problem('it parses as protobuf but has no ONNX ir_version or graph');
  }
  const initializers = new Set<string>();
  const inputs: Field[] = [];
  const outputs: Field[] = [];
  for await (const g of fields(bytes, graph.start, graph.end)) {
    if (g.field === 11 && g.wire === 2) inputs.push(g);
    if (g.field === 12 && g.wire === 2) outputs.push(g);
    if (g.field === 5 && g.wire === 2) {
      for await (const t of fields(bytes, g.start, g.end))
        if (t.field === 8) initializers.add(await text(bytes, t));
    }
  }
  const declared: OnnxInput[] = [];
  for (const i of inputs) declared.push(await valueInfo(bytes, i as Field & { wire: 2 }));
  const answered: OnnxInput[] = [];
  for (const o of outputs) answered.push(await valueInfo(bytes, o as Field & { wire: 2 }));
  return {
    ok: true,
    format: `ONNX (IR version ${irVersion})`,
    notes: [],
    onnxInputs: declared.filter((i) => !initializers.has(i.name)),
    ...(answered.length ? { onnxOutputs: answered } : {}),
  };
}

/** ValueInfoProto { name = 1; type = 2 { tensor_type = 1 { elem_type = 1; shape = 2 { dim = 1 { value = 1 | param = 2 } } } } } */
async function valueInfo(bytes: Bytes, at: Field & { wire: 2 }): Promise<OnnxInput> {
  const input: OnnxInput = { name: '', elemType: 0 };
  for await (const f of fields(bytes, at.start, at.end)) {
    if (f.field === 1) input.name = await text(bytes, f);
    if (f.field !== 2 || f.wire !== 2) continue;
    for await (const t of fields(bytes, f.start, f.end)) {
      if (t.field !== 1 || t.wire !== 2) continue;
      for await (const tt of fields(bytes, t.start, t.end)) {
        if (tt.field === 1 && tt.wire === 0) input.elemType = tt.value;
        if (tt.field === 2 && tt.wire === 2) input.dims = await dims(bytes, tt);
      }
    }
  }
  return input;
}

async function dims(bytes: Bytes, shape: Field & { wire: 2 }): Promise<(number | string | null)[]> {
  const out: (number | string | null)[] = [];
  for await (const d of fields(bytes, shape.start, shape.end)) {
    if (d.field !== 1 || d.wire !== 2) continue;
    let dim: number | string | null = null;
    for await (const v of fields(bytes, d.start, d.end)) {
      if (v.field === 1 && v.wire === 0) dim = v.value;
      if (v.field === 2) dim = await text(bytes, v);
    }
    out.push(dim);
  }
  return out;
}

// --- TorchScript (zip) ------------------------------------------------------------------

async function checkTorchScript(bytes: Bytes, head: Buffer): Promise<FormatResult> {
  if (!isZip(head)) {
    if (head[0] === 0x80) {
      throw new Problem(
        'it is a pickle (a legacy torch.save checkpoint?), not a TorchScript archive; save the model with torch.jit.save(torch.jit.script(model), "model.pt")',
      );
    }
    throw new Problem(
      `it is not a zip archive, which every TorchScript file is (it starts with ${hex(head.subarray(0, 8))})`,
    );
  }
  const names = await zipNames(bytes);
  const code = names.some((n) => /^([^/]+\/)?code\//.test(n));
  if (!code) {
    const data = names.some((n) => /(^|\/)data\.pkl$/.test(n));
    throw new Problem(
      data
        ? 'it is a torch.save checkpoint (weights, no code), not TorchScript; save the model with torch.jit.save(torch.jit.script(model), "model.pt"), or wrap your own loader with --entry'
        : 'it is a zip archive without the code/ directory of a TorchScript file',
    );
  }
  return { ok: true, format: `TorchScript archive (${names.length} entries)`, notes: [] };
}

/** The entry names of a zip's central directory (zip64 included: PyTorch writes it for large files). */
async function zipNames(bytes: Bytes): Promise<string[]> {
  const tailLength = Math.min(bytes.size, 65_557);
  const tail = await bytes.at(bytes.size - tailLength, tailLength);
  const eocd = tail.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0)
    throw new Problem('the zip archive has no end-of-central-directory record: the file is truncated');
  let entries = tail.readUInt16LE(eocd + 10);
  let size = tail.readUInt32LE(eocd + 12);
  let offset = tail.readUInt32LE(eocd + 16);
  if (offset === 0xffffffff || size === 0xffffffff || entries === 0xffff) {
    const locator = eocd - 20;
    if (locator < 0 || tail.readUInt32LE(locator) !== 0x07064b50)
      throw new Problem('a zip64 archive without its locator');
    const z64 = await bytes.at(Number(tail.readBigUInt64LE(locator + 8)), 56);
    if (z64.length < 56 || z64.readUInt32LE(0) !== 0x06064b50)
      throw new Problem('a zip64 archive with a broken directory record');
    entries = Number(z64.readBigUInt64LE(32));
    size = Number(z64.readBigUInt64LE(40));
    offset = Number(z64.readBigUInt64LE(48));
  }
  if (offset + size > bytes.size)
    throw new Problem('the zip directory points past the end of the file: the file is truncated');
  const dir = await bytes.at(offset, size);
  const names: string[] = [];
  let pos = 0;
  for (let i = 0; i < entries && pos + 46 <= dir.length; i++) {
    if (dir.readUInt32LE(pos) !== 0x02014b50) throw new Problem('the zip directory is corrupt');
    const nameLength = dir.readUInt16LE(pos + 28);
    names.push(dir.toString('utf8', pos + 46, pos + 46 + nameLength));
    pos += 46 + nameLength + dir.readUInt16LE(pos + 30) + dir.readUInt16LE(pos + 32);
  }
  return names;
}

/** The file as the user named it, for messages. */
export function shown(file: string, cwd: string): string {
  const rel = path.relative(cwd, file);
  return rel && !rel.startsWith('..') ? rel : file;
}
