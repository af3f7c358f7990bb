// Model files made byte by byte for the format checks, without Python: ONNX protobufs
// (with initializers and symbolic dims) and zip archives laid out as TorchScript or as a
// torch.save checkpoint. Small encoders, written from the formats' specifications.

/** Protobuf: a field is [number, value]; numbers are varints, strings and buffers length-delimited. */
export type Msg = [number, number | string | Buffer | Msg][];

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}

export function encode(msg: Msg): Buffer {
  return Buffer.concat(
    msg.map(([field, value]) => {
      if (typeof value === 'number') return Buffer.concat([varint(field * 8), varint(value)]);
      const bytes =
        typeof value === 'string' ? Buffer.from(value) : Buffer.isBuffer(value) ? value : encode(value);
      return Buffer.concat([varint(field * 8 + 2), varint(bytes.length), bytes]);
    }),
  );
}

/** ValueInfoProto of a tensor: elem type and dims (numbers are sizes, strings symbolic). */
export function tensorInput(name: string, elemType: number, dims: (number | string)[]): Msg {
  const shape: Msg = dims.map((d) => [1, typeof d === 'number' ? [[1, d]] : [[2, d]]]);
  return [
    [1, name],
    [
      2,
      [
        [
          1,
          [
            [1, elemType],
            [2, shape],
          ],
        ],
      ],
    ],
  ];
}

/** A ModelProto with the given graph inputs; `weights` are initializers (and, as IR < 4 does, inputs too). */
export function onnxModel(inputs: Msg[], weights: string[] = [], outputs: Msg[] = []): Buffer {
  const graph: Msg = [
    [
      1,
      [
        [1, 'X'],
        [2, 'Y'],
        [4, 'Identity'],
      ],
    ], // a node
    [2, 'g'],
    ...weights.map((w): [number, Msg] => [
      5,
      [
        [1, 2],
        [2, 1],
        [8, w],
        [9, Buffer.alloc(16)],
      ],
    ]),
    ...inputs.map((i): [number, Msg] => [11, i]),
    ...weights.map((w): [number, Msg] => [11, tensorInput(w, 1, [2, 2])]),
    ...outputs.map((o): [number, Msg] => [12, o]),
  ];
  return encode([
    [1, 8],
    [2, 'mlship-test'],
    [7, graph],
    [8, [[2, 17]]],
  ]);
}

/** A stored (uncompressed) zip archive with these entries. */
export function zip(entries: Record<string, string>): Buffer {
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, content] of Object.entries(entries)) {
    const n = Buffer.from(name);
    const data = Buffer.from(content);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(n.length, 26);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt32LE(data.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(n.length, 28);
    entry.writeUInt32LE(offset, 42);
    locals.push(local, n, data);
    central.push(entry, n);
    offset += 30 + n.length + data.length;
  }
  const dir = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(Object.keys(entries).length, 8);
  end.writeUInt16LE(Object.keys(entries).length, 10);
  end.writeUInt32LE(dir.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, dir, end]);
}
