// What protects the stack at its proxy, beyond nginx.conf itself: the Content-Security-
// Policy of the front end (its inline script and style allowed by their hashes, nothing
// else), and where the proxy finds the stack's API keys (a secret folder mounted read-only
// locally; on ECS written from Secrets Manager when the task starts).

import { createHash } from 'node:crypto';

/** Where NGINX reads API keys from (its nginx.conf includes every *.map file there). */
export const API_KEYS_DIR = '/etc/nginx/mlship';
export const API_KEYS_FILE = 'api-keys.map';
/** The folder of the generated stack that holds the keys (git-ignored, mode 0700). */
export const LOCAL_KEYS_DIR = 'secrets/proxy';

function hashes(html: string, tag: 'script' | 'style'): string[] {
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g');
  return [...html.matchAll(re)].map(
    (m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`,
  );
}

/** The front end's CSP: its own origin, and its inline script and style by their hashes. */
export function contentSecurityPolicy(html: string): string {
  return [
    "default-src 'self'",
    `script-src 'self' ${hashes(html, 'script').join(' ')}`.trim(),
    `style-src 'self' ${hashes(html, 'style').join(' ')}`.trim(),
    // Images and sounds the page previews or receives are shown as data: URLs.
    "img-src 'self' data:",
    "media-src 'self' data:",
    "connect-src 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    "form-action 'self'",
  ].join('; ');
}
