// Renders the text-by-nature files of a wrapped service from templates/wrap/**.
// Templates are Eta; output is raw text (no HTML escaping), trimmed only where a
// template asks for it with `-%>`.

import { readFileSync } from 'node:fs';
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
