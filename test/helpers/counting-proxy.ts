// An HTTP proxy in front of an AWS emulator that counts what crosses it: the bytes of
// every request body by method and path prefix, so a test can say "0 bytes were uploaded"
// from the object store's side, not from mlship's own report.

import http from 'node:http';

export interface CountingProxy {
  /** The endpoint to give mlship (and, through host.docker.internal, containers). */
  port: number;
  /** Request body bytes of PUT requests (S3 PutObject, UploadPart) whose path starts with `prefix`. */
  putBytes(prefix?: string): number;
  /** Requests seen, as "METHOD /path" (query strings kept). */
  requests: string[];
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string, host = '0.0.0.0'): Promise<CountingProxy> {
  const upstream = new URL(target);
  const put = new Map<string, number>();
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const forward = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on('error', (e) => {
      res.writeHead(502).end(String(e));
    });
    const path = (req.url ?? '/').split('?')[0]!;
    req.on('data', (chunk: Buffer) => {
      if (req.method === 'PUT') put.set(path, (put.get(path) ?? 0) + chunk.length);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return {
    port: (server.address() as { port: number }).port,
    putBytes: (prefix = '/') => [...put].filter(([p]) => p.startsWith(prefix)).reduce((n, [, b]) => n + b, 0),
    requests,
    reset() {
      put.clear();
      requests.length = 0;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
