#!/usr/bin/env node
// bench/rollout/relay-cost.mjs: what a mirrored copy costs the whole machine, by the way it reaches
// the shadow, without the models (a stable and a shadow that NGINX answers itself, each in its own
// container, so the shadow's side is not inside the proxy as in proxy-cost.mjs). The proxy's
// nginx.conf is written here in the shape of the generated one (templates/compose/nginx.conf.eta:
// the mirror to the relay, the relay answering at once by njs and taking the copy on by its own
// mirror), reduced to one service; the variants change how the copy travels:
//   off     no mirror (the baseline)
//   tcp     what mlship generates: the proxy to the relay on loopback TCP, a connection per copy;
//           the relay to the shadow by a name resolved per request, a connection per copy
//   unix    the proxy to the relay over a unix socket (the relay's leg unchanged)
//   unix-keepalive  and the relay to the shadow on kept connections (an upstream block: the name
//           resolved when NGINX starts, which mlship's candidate, started later, does not allow)
//   direct  the mirror straight to the shadow on kept connections, no relay (a slow shadow would
//           hold each client's next request: the reason the relay exists)
// Open loop at `rate` requests/s on 16 keep-alive connections (shadow-cost.mjs's loops and CPU
// readers), the variants alternating per round;
// reported: the client's p50/p99, the proxy's CPU per request (its cgroup) and the whole machine's
// (/proc/stat, every process: the client, the engine, the shadow's NGINX, the kernel's network work).
// Usage: npm run build && node bench/rollout/relay-cost.mjs [rounds=3] [requests=6000] [rate=376]   (as root: cgroup v1 files)
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closed, cpuSeconds, median, open, ticks } from './shadow-cost.mjs';

const rounds = Number(process.argv[2] ?? 3);
const requests = Number(process.argv[3] ?? 6000);
const rate = Number(process.argv[4] ?? 376);
const IMAGE = 'mlship-local/nginx:1.22';
const NETWORK = 'mlship-bench-relay';
const PORT = 18098;
const VARIANTS = ['off', 'tcp', 'unix', 'unix-keepalive', 'direct'];
const root = path.resolve('bench/.work/relay-cost');
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });

const docker = (...args) => execFileSync('docker', args, { encoding: 'utf8' }).trim();
const quiet = (...args) => spawnSync('docker', args, { stdio: 'ignore' });

/** The proxy's nginx.conf (conf.d) for a variant. */
function proxyConf(variant) {
  const relay = variant.startsWith('unix') ? 'unix:/run/mlship-relay.sock' : '127.0.0.1:8098';
  const toShadow =
    variant === 'unix-keepalive'
      ? 'proxy_pass http://shadow_kept$relay_uri;'
      : 'set $shadow shadow:8080; proxy_pass http://$shadow$relay_uri;';
  const mirror = { off: '', direct: 'mirror /_direct;' }[variant] ?? 'mirror /_shadow;';
  return `js_import relay from /etc/nginx/relay.js;
upstream stable_up { server stable:8080; keepalive 16; keepalive_timeout 4s; }
upstream shadow_kept { server shadow:8080; keepalive 16; keepalive_timeout 4s; }
upstream relay_up { server ${relay} max_fails=1 fail_timeout=5s; server 127.0.0.1:8099 backup; }
server { listen 127.0.0.1:8099; access_log off; return 204; }
map $request_uri $relay_uri { "~^/[^/]+(/.*)$" $1; default /; }
server {
    listen ${relay};
    access_log off;
    resolver 127.0.0.11 valid=1s ipv6=off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 100ms;
    location /model/ { mirror /_relay; js_content relay.accepted; }
    location = /_relay {
        internal;
        proxy_ignore_client_abort on;
        proxy_read_timeout 250ms;
        ${toShadow}
    }
}
server {
    listen 80;
    access_log off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header X-Request-ID $request_id;
    location /api/model/ {
        ${mirror}
        rewrite ^/api/model/(.*)$ /$1 break;
        proxy_pass http://stable_up;
    }
    location = /_shadow {
        internal;
        proxy_ignore_client_abort on;
        proxy_connect_timeout 100ms;
        proxy_read_timeout 250ms;
        proxy_next_upstream error timeout http_502 http_504 non_idempotent;
        proxy_set_header X-Mlship-Shadow 1;
        proxy_pass http://relay_up/model/predict;
    }
    location = /_direct {
        internal;
        proxy_ignore_client_abort on;
        proxy_connect_timeout 100ms;
        proxy_read_timeout 250ms;
        proxy_pass http://shadow_kept/predict;
    }
}
`;
}

/** Busy CPU-seconds of the whole machine so far (/proc/stat's ticks are hundredths of a second). */
const machineCpu = () => ticks().busy / 100;

async function measure(variant) {
  writeFileSync(path.join(root, `${variant}.conf`), proxyConf(variant));
  quiet('rm', '-f', 'mlship-bench-relay-proxy');
  const id = docker(
    'run',
    '-d',
    '--name',
    'mlship-bench-relay-proxy',
    '--network',
    NETWORK,
    '--sysctl',
    'net.ipv4.tcp_tw_reuse=1',
    '-p',
    `127.0.0.1:${PORT}:80`,
    '-v',
    `${path.join(root, `${variant}.conf`)}:/etc/nginx/conf.d/default.conf:ro`,
    '-v',
    `${path.join(root, 'relay.js')}:/etc/nginx/relay.js:ro`,
    IMAGE,
  );
  for (let i = 0; i < 50 && (await closed(PORT, 1, 1)).failed; i++)
    await new Promise((r) => setTimeout(r, 100));
  await closed(PORT, 300, 16); // warm
  const [p0, m0] = [cpuSeconds(id), machineCpu()];
  const r = await open(PORT, requests, 16, rate);
  const [p1, m1] = [cpuSeconds(id), machineCpu()];
  quiet('rm', '-f', id);
  return { ...r, proxyMs: ((p1 - p0) * 1000) / requests, machineMs: ((m1 - m0) * 1000) / requests };
}

writeFileSync(
  path.join(root, 'relay.js'),
  'function accepted(r) { r.return(204); }\nexport default { accepted };\n',
);
writeFileSync(
  path.join(root, 'stable.conf'),
  `server { listen 8080; access_log off; location / { default_type application/json; return 200 '{"prediction":0}'; } }\n`,
);
writeFileSync(
  path.join(root, 'shadow.conf'),
  'server { listen 8080; access_log off; location / { return 202; } }\n',
);
quiet('rm', '-f', 'mlship-bench-relay-stable', 'mlship-bench-relay-shadow', 'mlship-bench-relay-proxy');
quiet('network', 'rm', NETWORK);
docker('network', 'create', NETWORK);
const runs = [];
try {
  for (const name of ['stable', 'shadow'])
    docker(
      'run',
      '-d',
      '--name',
      `mlship-bench-relay-${name}`,
      '--network',
      NETWORK,
      '--network-alias',
      name,
      '-v',
      `${path.join(root, `${name}.conf`)}:/etc/nginx/conf.d/default.conf:ro`,
      IMAGE,
    );
  for (let round = 0; round < rounds; round++)
    for (const variant of VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]))
      runs.push({ variant, ...(await measure(variant)) });
} finally {
  quiet('rm', '-f', 'mlship-bench-relay-stable', 'mlship-bench-relay-shadow', 'mlship-bench-relay-proxy');
  quiet('network', 'rm', NETWORK);
}

const base = median(runs.filter((r) => r.variant === 'off').map((r) => r.machineMs));
console.log(
  `\n## relay cost: ${rounds} rounds of ${requests} requests at ${rate}/s, c=16, ${new Date().toISOString()}\n`,
);
console.log(
  '| variant | p50 ms | p99 ms | failed | proxy CPU ms/request | machine CPU ms/request | machine vs off |',
);
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const v of VARIANTS) {
  const rs = runs.filter((r) => r.variant === v);
  const m = median(rs.map((r) => r.machineMs));
  console.log(
    `| ${v} | ${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ${rs.reduce((s, r) => s + r.failed, 0)} | ${median(rs.map((r) => r.proxyMs)).toFixed(3)} | ${m.toFixed(3)} | ${v === 'off' ? '' : `${m >= base ? '+' : ''}${(m - base).toFixed(3)}`} |`,
  );
}
