// Names of the AWS resources mlship creates for a stack, within each service's rules.

import { createHash } from 'node:crypto';

/** A name of [A-Za-z0-9-], at most `max` long (a hash keeps shortened names apart), no hyphen at the ends. */
export function awsName(wanted: string, max: number): string {
  const clean = wanted
    .replace(/[^A-Za-z0-9-]/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
  const name = clean.startsWith('internal-') ? `lb-${clean}` : clean;
  if (name.length <= max) return name;
  const hash = createHash('sha256').update(wanted).digest('hex').slice(0, 6);
  return `${name.slice(0, max - 7).replace(/-$/, '')}-${hash}`;
}
