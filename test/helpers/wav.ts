// Sounds for the audio tests, made at test time: a pure tone as a WAV (the browser's fake microphone
// plays one, the file picker sends one) and a WAV read back from the multipart body a page sent.

import { pcm16Wav } from '../../src/core/wrap/media-samples.js';

/** A sine tone of `hz` at `amplitude` (0..1), mono 16-bit PCM. */
export function toneWav(sampleRate: number, hz: number, seconds: number, amplitude = 0.5): Buffer {
  const samples = Float32Array.from(
    { length: Math.round(sampleRate * seconds) },
    (_, i) => amplitude * Math.sin((2 * Math.PI * hz * i) / sampleRate),
  );
  return pcm16Wav(sampleRate, samples);
}

export interface WavInfo {
  format: number;
  channels: number;
  sampleRate: number;
  bits: number;
  frames: number;
}

/** The header of a canonical WAV (fmt chunk first, then data), as the service's `wave` reads it. */
export function readWavHeader(data: Buffer): WavInfo {
  if (data.toString('latin1', 0, 4) !== 'RIFF' || data.toString('latin1', 8, 16) !== 'WAVEfmt ') {
    throw new Error(`not a WAV: starts with ${data.subarray(0, 16).toString('hex')}`);
  }
  const channels = data.readUInt16LE(22);
  const bits = data.readUInt16LE(34);
  return {
    format: data.readUInt16LE(20),
    channels,
    sampleRate: data.readUInt32LE(24),
    bits,
    frames: data.readUInt32LE(40) / ((channels * bits) / 8),
  };
}

/** The file part of a multipart body the browser sent (latin1 string), as bytes. */
export function multipartFile(body: Buffer, field: string): { filename: string; type: string; data: Buffer } {
  const text = body.toString('latin1');
  const m = new RegExp(`name="${field}"; filename="([^"]*)"\\r\\nContent-Type: ([^\\r]*)\\r\\n\\r\\n`).exec(
    text,
  );
  if (!m) throw new Error(`no file part "${field}" in the body`);
  const start = m.index + m[0].length;
  const end = text.indexOf('\r\n--', start);
  return { filename: m[1]!, type: m[2]!, data: body.subarray(start, end) };
}
