// Parses the engine's build stream, line by line, for both builders.
//
// Every JSON line is inspected: an `error`/`errorDetail` line fails the build
// with the step that was running and that step's output. (A parser that only
// waits for the stream to end reports failed builds as successful.)

import protobuf from 'protobufjs';
import { BuildFailedError } from '../../io/errors.js';

export interface BuildProgressEvent {
  /** e.g. "Step 3/9 : RUN pip install ..." or "[3/9] RUN pip install ..." */
  step?: string;
  /** One line of output of the current step. */
  line?: string;
  cached?: boolean;
}

export interface ParsedBuild {
  imageId: string | undefined;
  steps: string[];
  cachedSteps: number;
}

// Minimal subset of BuildKit's StatusResponse, enough to follow steps, their
// output and their errors. Field numbers are BuildKit's (control.proto).
const BUILDKIT_PROTO = `
syntax = "proto3";
package mlship.buildkit;
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Vertex { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4;
  Timestamp started = 5; Timestamp completed = 6; string error = 7; }
message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
message StatusResponse { repeated Vertex vertexes = 1; repeated VertexLog logs = 3; }
`;

let statusType: protobuf.Type | undefined;
function statusResponse(): protobuf.Type {
  statusType ??= protobuf.parse(BUILDKIT_PROTO).root.lookupType('mlship.buildkit.StatusResponse');
  return statusType;
}

interface DecodedVertex {
  digest: string;
  name: string;
  cached: boolean;
  started?: unknown;
  completed?: unknown;
  error: string;
}
interface DecodedLog {
  vertex: string;
  msg: Uint8Array;
}

const MAX_STEP_LINES = 200;

export class BuildStreamParser {
  private buffer = '';
  private imageId: string | undefined;
  private readonly steps: string[] = [];
  private cachedSteps = 0;
  private currentStep: string | undefined;
  private stepOutput: string[] = [];
  private failure: { message: string; step: string | undefined; output: string[] } | undefined;
  // BuildKit: output and names are per vertex, interleaved.
  private readonly vertexNames = new Map<string, string>();
  private readonly vertexOutput = new Map<string, string[]>();
  private readonly cachedVertices = new Set<string>();

  constructor(private readonly onProgress?: (event: BuildProgressEvent) => void) {}

  /** Feeds a chunk of the raw stream (may split lines anywhere). */
  write(chunk: Buffer | string): void {
    this.buffer += chunk.toString();
    let nl = this.buffer.indexOf('\n');
    while (nl >= 0) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.handleLine(line);
      nl = this.buffer.indexOf('\n');
    }
  }

  /** Call at end of stream: returns the result or throws BuildFailedError. */
  end(): ParsedBuild {
    const rest = this.buffer.trim();
    this.buffer = '';
    if (rest) this.handleLine(rest);
    if (this.failure) {
      throw new BuildFailedError(this.failure.message, this.failure.step, this.failure.output);
    }
    if (!this.imageId) {
      throw new BuildFailedError(
        'the engine ended the build without reporting an image id',
        this.currentStep,
        this.tail(this.stepOutput),
      );
    }
    return { imageId: this.imageId, steps: [...this.steps], cachedSteps: this.cachedSteps };
  }

  private tail(lines: string[]): string[] {
    return lines.slice(-MAX_STEP_LINES);
  }

  private handleLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      // Not JSON: keep it as output rather than dropping it.
      this.addOutput(line);
      return;
    }
    if (typeof msg.error === 'string' || msg.errorDetail) {
      const detail = msg.errorDetail as { message?: string } | undefined;
      const message = String(detail?.message ?? msg.error ?? 'unknown build error').trim();
      this.fail(message);
      return;
    }
    if (msg.id === 'moby.buildkit.trace' && typeof msg.aux === 'string') {
      this.handleBuildKit(msg.aux);
      return;
    }
    if (msg.aux && typeof msg.aux === 'object' && typeof (msg.aux as { ID?: unknown }).ID === 'string') {
      this.imageId = (msg.aux as { ID: string }).ID;
      return;
    }
    if (typeof msg.stream === 'string') {
      for (const raw of msg.stream.split('\n')) {
        const text = raw.replace(/\r$/, '');
        if (!text.trim()) continue;
        if (/^Step \d+\/\d+ : /.test(text)) {
          this.currentStep = text.trim();
          this.stepOutput = [];
          this.steps.push(this.currentStep);
          this.onProgress?.({ step: this.currentStep });
        } else if (text.trim() === '---> Using cache') {
          this.cachedSteps++;
          this.onProgress?.({ step: this.currentStep, cached: true });
        } else if (/^Successfully built ([0-9a-f]+)/.test(text) && !this.imageId) {
          this.imageId = text.trim().split(' ')[2];
        } else if (!/^ ---> /.test(text) && !/^Successfully tagged /.test(text)) {
          this.addOutput(text);
        }
      }
    }
  }

  private addOutput(text: string): void {
    this.stepOutput.push(text);
    if (this.stepOutput.length > MAX_STEP_LINES * 2) this.stepOutput = this.tail(this.stepOutput);
    this.onProgress?.({ step: this.currentStep, line: text });
  }

  private fail(message: string, step = this.currentStep, output = this.stepOutput): void {
    // Keep the first failure: later lines are usually consequences of it.
    this.failure ??= { message, step, output: this.tail(output) };
  }

  private handleBuildKit(aux: string): void {
    let decoded: { vertexes?: DecodedVertex[]; logs?: DecodedLog[] };
    try {
      const type = statusResponse();
      decoded = type.toObject(type.decode(Buffer.from(aux, 'base64')), {
        defaults: true,
        longs: String,
      }) as typeof decoded;
    } catch {
      return; // A trace we cannot decode only costs us progress detail, never correctness.
    }
    for (const v of decoded.vertexes ?? []) {
      if (v.name && !this.vertexNames.has(v.digest)) {
        this.vertexNames.set(v.digest, v.name);
        // Internal vertices ("[internal] load .dockerignore") are not build steps.
        if (!v.name.startsWith('[internal]')) {
          this.steps.push(v.name);
          this.currentStep = v.name;
          this.onProgress?.({ step: v.name });
        }
      }
      if (v.cached && !this.cachedVertices.has(v.digest)) {
        this.cachedVertices.add(v.digest);
        if (!v.name.startsWith('[internal]')) this.cachedSteps++;
      }
      if (v.error) {
        this.fail(v.error, v.name || this.vertexNames.get(v.digest), this.vertexOutput.get(v.digest) ?? []);
      }
    }
    for (const log of decoded.logs ?? []) {
      const lines = Buffer.from(log.msg).toString('utf8').split('\n');
      const out = this.vertexOutput.get(log.vertex) ?? [];
      for (const l of lines) {
        const text = l.replace(/\r$/, '');
        if (!text.trim()) continue;
        out.push(text);
        this.onProgress?.({ step: this.vertexNames.get(log.vertex), line: text });
      }
      this.vertexOutput.set(log.vertex, out.length > MAX_STEP_LINES * 2 ? out.slice(-MAX_STEP_LINES) : out);
    }
  }
}
