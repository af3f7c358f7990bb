// The command that reads a wrapped service's /metrics from inside its container (`mlship
// top` runs it with `docker exec`): the services are not published except through the proxy,
// which does not serve /metrics. Beside compose-stack.ts's readiness check, which reaches
// the same server the same way.

/**
 * How a model container's /metrics is read from inside it (`docker exec`): with its own
 * runtime, python or node (the wrapped images have one of them, and a shell), on the PORT
 * its compose service sets. Python speaks HTTP/1.0 on a socket: importing urllib costs more
 * than the scrape on a busy machine.
 */
export const METRICS_COMMAND: string[] = [
  'sh',
  '-c',
  'if command -v python >/dev/null 2>&1; then exec python -S -c "$0"; else exec node -e "$1"; fi',
  [
    'import os, socket, sys',
    "s = socket.create_connection(('127.0.0.1', int(os.environ.get('PORT', '8080'))), 5)",
    "s.sendall(b'GET /metrics HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n')",
    'chunks = []',
    'while True:',
    '    c = s.recv(65536)',
    '    if not c:',
    '        break',
    '    chunks.append(c)',
    "head, _, body = b''.join(chunks).partition(b'\\r\\n\\r\\n')",
    "status = head.split(b'\\r\\n')[0].decode('latin-1')",
    "if ' 200 ' not in status + ' ':",
    "    sys.exit('/metrics answered ' + status)",
    'sys.stdout.buffer.write(body)',
  ].join('\n'),
  "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/metrics').then((r) => r.ok ? r.text() : Promise.reject(new Error('/metrics answered ' + r.status))).then((t) => process.stdout.write(t), (e) => { console.error(String(e)); process.exitCode = 1; })",
];
