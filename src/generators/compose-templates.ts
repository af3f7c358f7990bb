// Renders the text-by-nature files of the local stack (nginx.conf, the front-end
// page) from templates/compose/*.eta.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Eta } from 'eta';

export const COMPOSE_TEMPLATES_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../../templates/compose',
);

let eta: Eta | undefined;

export function renderComposeTemplate(name: string, data: object): string {
  eta ??= new Eta({ views: COMPOSE_TEMPLATES_DIR, autoEscape: false, autoTrim: false, cache: true });
  return eta.render(`./${name}.eta`, data);
}

/** A template file that is used as it is (route.js). */
export function readComposeTemplateFile(name: string): string {
  return readFileSync(path.join(COMPOSE_TEMPLATES_DIR, name), 'utf8');
}
