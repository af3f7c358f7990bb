// What a candidate's containers are given, shared by the run and the score command: the
// labels, where inputs and the download cache appear, the clients' cache variables, the
// memory, time and GPU limits parsed from bakeoff.yaml, and the input mounts.

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { GpuRequest, MountSpec } from '../../adapters/docker/engine.js';
import type { Candidate } from '../../config/bakeoff-schema.js';

export const CANDIDATE_LABEL = 'dev.mlship.bakeoff.candidate';
export const INPUTS_DIR = '/workspace/inputs';
/** Where the persistent download cache (weights_cache) appears in every candidate. */
export const WEIGHTS_DIR = '/mlship/weights';

/** The cache variables of the common clients (huggingface_hub/transformers, torch.hub, the rest). */
export function weightsEnv(): Record<string, string> {
  return {
    HF_HOME: `${WEIGHTS_DIR}/huggingface`,
    TORCH_HOME: `${WEIGHTS_DIR}/torch`,
    XDG_CACHE_HOME: `${WEIGHTS_DIR}/xdg`,
  };
}

/** Bytes from "512Mi", "4Gi", "2G", "300M". */
export function parseMemory(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(Mi|Gi|M|G)$/.exec(s);
  if (!m) throw new Error(`bad memory size ${s}`);
  const unit = { Mi: 1024 ** 2, Gi: 1024 ** 3, M: 1e6, G: 1e9 }[m[2] as 'Mi' | 'Gi' | 'M' | 'G'];
  return Math.round(Number(m[1]) * unit);
}

/** Milliseconds from "90s", "15m", "1h". */
export function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h)$/.exec(s);
  if (!m) throw new Error(`bad duration ${s}`);
  return Math.round(Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h']);
}

export function gpuRequest(gpus: Candidate['gpus']): GpuRequest | undefined {
  if (gpus === 'all') return 'all';
  return gpus > 0 ? gpus : undefined;
}

/** The inputs as the report names them (file names, as they appear in /workspace/inputs). */
export function inputNames(c: Candidate): string[] {
  return c.inputs.map((i) => path.basename(typeof i === 'string' ? i : i.source));
}

/** The same, with a directory input replaced by its files (`images/cat.png`): the report's rows. */
export async function inputFiles(c: Candidate, configDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const i of c.inputs) {
    const source = path.resolve(configDir, typeof i === 'string' ? i : i.source);
    const name = path.basename(source);
    const entries = await readdir(source, { withFileTypes: true }).catch(() => undefined);
    if (!entries) out.push(name);
    else
      out.push(
        ...entries
          .filter((e) => e.isFile())
          .map((e) => `${name}/${e.name}`)
          .sort()
          .slice(0, 200),
      );
  }
  return out;
}

export function inputMounts(c: Candidate, configDir: string): MountSpec[] {
  return c.inputs.map((i) => {
    const source = path.resolve(configDir, typeof i === 'string' ? i : i.source);
    const target = typeof i === 'string' ? path.posix.join(INPUTS_DIR, path.basename(source)) : i.target;
    return { type: 'bind', source, target, readOnly: true };
  });
}
