// Reads a Python package index over HTTP for `mlship bakeoff matrix refresh`: project
// pages (PEP 691 JSON asked for first, PEP 503 HTML accepted) and wheels' core
// metadata. Network problems become an environment error that names the index.

import type { IndexPage, WheelIndex } from '../core/bakeoff/deps.js';
import { EnvironmentError, UsageError } from '../io/errors.js';

const ACCEPT =
  'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1';

async function get(url: string, accept: string, timeoutMs: number): Promise<Response> {
  try {
    return await fetch(url, { headers: { Accept: accept }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new EnvironmentError(
      'INDEX_UNREACHABLE',
      `cannot reach the wheel index at ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
      {
        hint: 'check the network, or pass --index with the URL of a reachable index or mirror',
      },
    );
  }
}

export function createWheelIndex(timeoutMs = 60_000): WheelIndex {
  return {
    async page(url) {
      const r = await get(url, ACCEPT, timeoutMs);
      if (r.status === 404) {
        throw new UsageError(`the index has no project at ${url} (404)`, {
          hint: 'pass --index with the index root (e.g. https://download.pytorch.org/whl or https://pypi.org/simple)',
        });
      }
      if (!r.ok)
        throw new EnvironmentError(
          'INDEX_ERROR',
          `the wheel index answered ${r.status} ${r.statusText} for ${url}`,
        );
      const page: IndexPage = {
        url: r.url || url,
        contentType: r.headers.get('content-type') ?? '',
        body: await r.text(),
      };
      return page;
    },
    async text(url) {
      const r = await get(url, 'text/plain, */*', timeoutMs);
      if (r.status === 404) return undefined;
      if (!r.ok)
        throw new EnvironmentError(
          'INDEX_ERROR',
          `the wheel index answered ${r.status} ${r.statusText} for ${url}`,
        );
      return r.text();
    },
  };
}
