// Small stand-in files for the example of a service whose example names no file: a grey PNG of
// the size the model takes, half a second of silence as WAV. They make app/example.json a
// complete request (the warm-up call, `mlship serve`'s check and the /docs example).

import { crc32, deflateSync } from 'node:zlib';
import type { FileInput } from '../../generators/wrap-spec.js';

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([head, body, crc]);
}

/** An 8-bit grey PNG, every pixel `level`. */
export function greyPng(width: number, height: number, level = 128): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 0, 0, 0, 0], 8); // bit depth 8, greyscale, deflate, no filter method, no interlace
  const rows = Buffer.alloc((width + 1) * height, level);
  for (let y = 0; y < height; y++) rows[y * (width + 1)] = 0; // each row: filter type "none"
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 16-bit PCM WAV file of these samples (interleaved when `channels` > 1). */
export function pcmWav(samples: ArrayLike<number>, sampleRate: number, channels = 1): Buffer {
  const bytes = samples.length * 2;
  const out = Buffer.alloc(44 + bytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + bytes, 4);
  out.write('WAVEfmt ', 8, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(channels, 22);
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * channels * 2, 28);
  out.writeUInt16LE(channels * 2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(bytes, 40);
  for (let i = 0; i < samples.length; i++) out.writeInt16LE(samples[i]!, 44 + i * 2);
  return out;
}

/** Mono 16-bit PCM silence. */
export function silentWav(sampleRate: number, seconds: number): Buffer {
  return pcmWav(new Int16Array(Math.round(sampleRate * seconds)), sampleRate);
}

/** A mono 16-bit PCM WAV of these samples (-1..1, clipped). */
export function pcm16Wav(sampleRate: number, samples: ArrayLike<number>): Buffer {
  const ints = Int16Array.from(samples, (v) => Math.round(Math.max(-1, Math.min(1, v)) * 32767));
  return pcmWav(ints, sampleRate);
}

/** The example value of a file field the example does not give: a data: URL of a stand-in file. */
export function sampleFile(input: FileInput): string {
  if (input.kind === 'image') {
    const png = greyPng(input.image?.width ?? 64, input.image?.height ?? 64);
    return `data:image/png;base64,${png.toString('base64')}`;
  }
  if (input.kind === 'audio') {
    const wav = silentWav(input.audio?.sampleRate ?? 16_000, 0.5);
    return `data:audio/wav;base64,${wav.toString('base64')}`;
  }
  return `data:${input.accept[0] ?? 'application/octet-stream'};base64,`;
}
