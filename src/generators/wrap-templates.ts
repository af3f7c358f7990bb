// Renders the text-by-nature files of a wrapped service from templates/wrap/**.
// Templates are Eta; output is raw text (no HTML escaping), trimmed only where a
// template asks for it with `-%>`.

import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

/** templates/wrap, from src/generators (tests) and dist/generators (the package) alike. */
export const WRAP_TEMPLATES_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../templates/wrap',
);

let eta: Eta | undefined;

function engine(): Eta {
  eta ??= new Eta({ views: WRAP_TEMPLATES_DIR, autoEscape: false, autoTrim: false, cache: true });
  return eta;
}

/** Renders `<name>.eta` with `data`. */
export function renderTemplate(name: string, data: object): string {
  return engine().render(`./${name}.eta`, data);
}

/** A template file that is copied as it is. */
export function staticTemplate(name: string): string {
  return readFileSync(path.join(WRAP_TEMPLATES_DIR, name), 'utf8');
}

const digests = new Map<string, string>();

/**
 * A short digest of every template file of a runtime (paths and contents): it changes exactly
 * when what `mlship wrap` would render for that runtime can change.
 */
export function templateDigest(runtime: 'python' | 'node'): string {
  const cached = digests.get(runtime);
  if (cached) return cached;
  const hash = createHash('sha256');
  const walk = (dir: string, rel: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name === '__pycache__') continue;
      const p = path.join(dir, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(p).isDirectory()) walk(p, r);
      else hash.update(`${r}\0`).update(readFileSync(p)).update('\0');
    }
  };
  walk(path.join(WRAP_TEMPLATES_DIR, runtime), '');
  const digest = hash.digest('hex').slice(0, 12);
  digests.set(runtime, digest);
  return digest;
}
