// `mlship compose up` for real: a wrapped model service, NGINX, PostgreSQL and the
// front end, on locally built images; predict through the proxy, in a browser, and
// `down` leaves nothing behind.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_ARGS, chromiumAvailable } from '../helpers/browser.js';
import { LOCAL_PYTHON_IMAGE, requireEngine, requireImage } from '../helpers/docker.js';
import { freePort } from '../helpers/net.js';

const hasChromium = chromiumAvailable();

const engine = await requireEngine();
const BIN = path.resolve('bin/mlship.js');
const NAME = `mlship-it-${process.pid}`;
let dir: string;
let port: number;
let storagePort: number;
let queuePort: number;

function mlship(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
    timeout: 900_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Containers of a compose project, counted by its label (running or not). */
function projectContainers(project = NAME): number {
  return execFileSync('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], {
    encoding: 'utf8',
  })
    .split('\n')
    .filter(Boolean).length;
}

function projectNetworks(project: string): number {
  return execFileSync(
    'docker',
    ['network', 'ls', '-q', '--filter', `label=com.docker.compose.project=${project}`],
    {
      encoding: 'utf8',
    },
  )
    .split('\n')
    .filter(Boolean).length;
}

function writeGpuConfig(): void {
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      'version: 1',
      `name: ${NAME}`,
      'services:',
      '  iris:',
      '    path: services/iris',
      '    gpu: true',
      'proxy:',
      '  image: mlship-local/nginx:1.22',
      `  port: ${port}`,
      'frontend:',
      '  image: mlship-local/nginx:1.22',
      '',
    ].join('\n'),
  );
}

function writeConfig(pgImage: string): void {
  writeFileSync(
    path.join(dir, 'mlship.yaml'),
    [
      'version: 1',
      `name: ${NAME}`,
      'services:',
      '  iris:',
      '    path: services/iris',
      // A queue worker beside it: compose up runs a three-item job through it.
      '    worker: {}',
      'proxy:',
      '  image: mlship-local/nginx:1.22',
      `  port: ${port}`,
      'queue:',
      '  image: mlship-local/elasticmq:1.6',
      `  host_port: ${queuePort}`,
      'database:',
      `  image: ${pgImage}`,
      'frontend:',
      '  image: mlship-local/nginx:1.22',
      // moto's S3 in server mode: an S3-compatible server that runs offline.
      'storage:',
      '  image: mlship-local/moto:5.2',
      '  command: [moto_server, -H, 0.0.0.0, -p, "9000"]',
      '  health_path: /moto-api/',
      `  host_port: ${storagePort}`,
      '  bucket: iris-data',
      '',
    ].join('\n'),
  );
}

/** The id of this stack's running container that carries a label (key=value). */
const containerOf = (label: string) =>
  execFileSync(
    'docker',
    ['ps', '-q', '--filter', `label=com.docker.compose.project=${NAME}`, '--filter', `label=${label}`],
    { encoding: 'utf8' },
  ).trim();

beforeAll(async () => {
  if (!engine) return;
  await requireImage(engine, LOCAL_PYTHON_IMAGE);
  await requireImage(engine, 'mlship-local/nginx:1.22');
  await requireImage(engine, 'mlship-local/postgres:15');
  await requireImage(engine, 'mlship-local/moto:5.2');
  await requireImage(engine, 'mlship-local/elasticmq:1.6');
  dir = mkdtempSync(path.join(os.tmpdir(), 'mlship-compose-it-'));
  port = await freePort();
  storagePort = await freePort();
  queuePort = await freePort();
  const wrap = mlship([
    'wrap',
    path.resolve('fixtures/wrap/iris/model.joblib'),
    '--out',
    'services/iris',
    '--name',
    'iris',
    '--base-image',
    LOCAL_PYTHON_IMAGE,
  ]);
  expect(wrap.code, wrap.stderr).toBe(0);
  writeConfig('mlship-local/postgres:15');
}, 120_000);

afterAll(() => {
  if (!engine || !dir) return;
  mlship(['compose', 'down', '--volumes']);
  spawnSync('docker', ['rmi', '-f', `${NAME}/iris:dev`, 'mlship-local/postgres:16'], { stdio: 'ignore' });
});

describe.runIf(engine)('mlship compose (real engine, docker-compose)', () => {
  it('up: every service healthy, the model smoke-tested through NGINX', () => {
    const r = mlship(['compose', 'up', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      services: { service: string; health: string }[];
      smoke: { service: string; status: number; prediction: unknown }[];
      proxyUrl: string;
      queues: { names: string[]; smoke: { service: string; items: number; done: number }[] };
    };
    expect(Object.fromEntries(out.services.map((s) => [s.service, s.health]))).toEqual({
      iris: 'healthy',
      'iris-worker': 'healthy',
      queue: 'healthy',
      database: 'healthy',
      frontend: 'healthy',
      proxy: 'healthy',
      storage: 'healthy',
    });
    expect(out.smoke).toEqual([expect.objectContaining({ service: 'iris', status: 200, prediction: 0 })]);
    expect(out.proxyUrl).toBe(`http://127.0.0.1:${port}`);
    // The worker's queue was created and a three-item job went through it end to end.
    expect(out.queues.names).toContain(`${NAME}-iris-jobs`);
    expect(out.queues.smoke).toEqual([expect.objectContaining({ service: 'iris', items: 3, done: 3 })]);
    // The generated password is in the git-ignored .env, not in compose.yaml.
    const env = readFileSync(path.join(dir, 'deploy/compose/.env'), 'utf8');
    const password = /POSTGRES_PASSWORD=(.+)/.exec(env)![1]!;
    expect(readFileSync(path.join(dir, 'deploy/compose/compose.yaml'), 'utf8')).not.toContain(password);
    expect(r.stdout + r.stderr).not.toContain(password);
  });

  it('jobs submit --wait --out and predict: a file through the worker and through the proxy, results in input order', () => {
    const rows = [
      { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
      { sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 },
      { sepal_length: 5.0, sepal_width: 3.4, petal_length: 1.5 }, // missing a field: fails alone
    ];
    writeFileSync(path.join(dir, 'items.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
    const submit = mlship([
      'jobs',
      'submit',
      'items.jsonl',
      '--service',
      'iris',
      '--wait',
      '--timeout',
      '120',
      '--out',
      'results.jsonl',
      '--json',
    ]);
    expect(submit.code, submit.stderr).toBe(1); // one item failed for good
    const job = JSON.parse(submit.stdout) as { job: string; status: { done: number; failed: number } };
    expect(job.status).toMatchObject({ done: 2, failed: 1 });
    const results = readFileSync(path.join(dir, 'results.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(results[0]).toEqual({ item: '0', output: 0 });
    expect(results[1]).toEqual({ item: '1', output: 2 });
    expect(results[2]).toMatchObject({ item: '2', error: { type: 'InvalidInput' } });
    const status = mlship(['jobs', 'status', job.job]);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/3: 2 done, 1 failed/);
    const again = mlship(['jobs', 'submit', 'items.jsonl', '--service', 'iris', '--json']);
    expect(JSON.parse(again.stdout)).toMatchObject({ job: job.job, sent: 1, alreadyDone: 2 });
    const predict = mlship(['predict', 'items.jsonl', '--service', 'iris', '--out', 'preds.jsonl', '--json']);
    expect(predict.code).toBe(1);
    expect(JSON.parse(predict.stdout)).toMatchObject({ items: 3, done: 2, failed: 1 });
    expect(
      readFileSync(path.join(dir, 'preds.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { item: '0', prediction: 0 },
      { item: '1', prediction: 2 },
    ]);
    expect(readFileSync(path.join(dir, 'preds.failures.jsonl'), 'utf8')).toMatch(/"status":422/);
  });

  it('object storage: the bucket was created, the S3 API works from the host and from the model service', async () => {
    const { S3Client, ListBucketsCommand, PutObjectCommand, GetObjectCommand } = await import(
      '@aws-sdk/client-s3'
    );
    const s3 = new S3Client({
      endpoint: `http://127.0.0.1:${storagePort}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'mlship', secretAccessKey: 'unused-by-moto' },
    });
    try {
      const buckets = await s3.send(new ListBucketsCommand({}));
      expect(buckets.Buckets?.map((b) => b.Name)).toContain('iris-data');
      await s3.send(new PutObjectCommand({ Bucket: 'iris-data', Key: 'inputs/a.json', Body: '{"x": 1}' }));
      const got = await s3.send(new GetObjectCommand({ Bucket: 'iris-data', Key: 'inputs/a.json' }));
      expect(await got.Body?.transformToString()).toBe('{"x": 1}');
    } finally {
      s3.destroy();
    }
    // The model service reaches the same bucket by service name, through the URL compose gave it.
    const iris = containerOf('com.docker.compose.service=iris');
    const listing = execFileSync(
      'docker',
      [
        'exec',
        iris,
        'python',
        '-c',
        "import os, urllib.request; print(urllib.request.urlopen(os.environ['S3_ENDPOINT_URL'] + '/' + os.environ['S3_BUCKET']).read().decode())",
      ],
      { encoding: 'utf8' },
    );
    expect(listing).toContain('<Key>inputs/a.json</Key>');
  });

  it('/predict through the proxy, errors pass through, /healthz answers', async () => {
    const ok = await fetch(`http://127.0.0.1:${port}/api/iris/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }),
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ prediction: 2 });
    const bad = await fetch(`http://127.0.0.1:${port}/api/iris/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(bad.status).toBe(422);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
  });

  it.skipIf(!hasChromium)(
    'the front end, in a real browser: enter an input, see the prediction',
    async () => {
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(`http://127.0.0.1:${port}/`);
        // The form built from the service's schema (selectors: the page's CSP forbids string evaluation).
        await page.waitForSelector('#fields .field');
        await page.check('#mode-json'); // the raw JSON fallback
        await page.fill(
          '#input',
          JSON.stringify({ sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }),
        );
        await page.click('#submit');
        await page.waitForSelector('#calls li', { state: 'attached' });
        expect(await page.textContent('#output')).toBe('2');
        expect(await page.textContent('#meta')).toMatch(/^HTTP 200 in \d+ ms/);
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
      }
    },
  );

  it('the OpenAPI document behind the proxy names the proxy prefix as its server', async () => {
    const spec = (await (await fetch(`http://127.0.0.1:${port}/api/iris/openapi.json`)).json()) as {
      servers?: { url: string }[];
    };
    expect(spec.servers).toEqual([{ url: '/api/iris' }]);
  });

  it.skipIf(!hasChromium)(
    'Swagger UI behind the proxy prefix, in a real browser: "Try it out" posts to /api/iris/predict',
    async () => {
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      try {
        const page = await browser.newPage();
        await page.goto(`http://127.0.0.1:${port}/api/iris/docs`);
        await page.locator('.opblock-summary-path[data-path="/predict"]').click();
        await page.locator('.opblock.is-open button.try-out__btn').click();
        await page
          .locator('.opblock.is-open textarea.body-param__text')
          .fill(JSON.stringify({ sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }));
        await page.locator('.opblock.is-open button.execute').click();
        const url = page.locator('.opblock.is-open .request-url pre');
        await url.waitFor();
        expect(await url.textContent()).toBe(`http://127.0.0.1:${port}/api/iris/predict`);
        const status = page
          .locator('.opblock.is-open .live-responses-table tr.response .response-col_status')
          .first();
        await status.waitFor();
        expect((await status.textContent())?.trim()).toBe('200');
      } finally {
        await browser.close();
      }
    },
  );

  it('ps shows health and URLs', () => {
    const r = mlship(['compose', 'ps', '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { services: { service: string; health: string; url?: string }[] };
    expect(out.services.find((s) => s.service === 'iris')).toMatchObject({
      health: 'healthy',
      url: `http://127.0.0.1:${port}/api/iris/`,
    });
  });

  it("top --json: every service with its replicas, the worker's queue backlog from ElasticMQ", async () => {
    // The worker stopped, five items wait in its queue; top reads both.
    const worker = containerOf('dev.mlship.role=worker');
    expect(worker).not.toBe('');
    spawnSync('docker', ['stop', '-t', '5', worker]);
    const { createJobApis } = await import('../../src/adapters/aws/jobs-apis.js');
    const apis = await createJobApis({
      region: 'us-east-1',
      bucket: 'unused',
      endpoints: { sqs: `http://127.0.0.1:${queuePort}` },
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
    try {
      const url = (await apis.queue.queueUrl(`${NAME}-iris-jobs`))!;
      const refused = await apis.queue.sendBatch(
        url,
        [1, 2, 3, 4, 5].map((i) => ({ id: `m${i}`, body: JSON.stringify({ top: i }) })),
      );
      expect(refused).toEqual([]);
      const r = mlship(['--json', 'top', '--interval', '1']);
      expect(r.code, r.stderr).toBe(0);
      const s = JSON.parse(r.stdout) as import('../../src/core/top/snapshot.js').TopSnapshot;
      const rows = Object.fromEntries(s.services.map((x) => [x.name, x]));
      expect(rows.iris).toMatchObject({ role: 'model', replicas: { running: 1, desired: 1 } });
      expect(rows.iris!.requestsPerSecond).toBeGreaterThanOrEqual(0);
      expect(rows['iris-worker']).toMatchObject({ role: 'worker', replicas: { running: 0, desired: 1 } });
      expect(rows.proxy).toMatchObject({ role: 'proxy', replicas: { running: 1, desired: 1 } });
      // Five in the queue: waiting, or handed to the stopped worker's last long poll (in flight
      // until their visibility timeout, as on SQS).
      expect(s.queues).toEqual([
        expect.objectContaining({ service: 'iris', name: `${NAME}-iris-jobs`, deadLetters: 0 }),
      ]);
      expect(s.queues[0]!.waiting + s.queues[0]!.inFlight).toBe(5);
      expect(s.queues[0]!.waiting).toBeGreaterThan(0);
      // The five test items go before the worker comes back.
      const got = await apis.queue.receive(url, 10, 1, 30);
      await apis.queue.deleteBatch(
        url,
        got.map((m) => m.receipt),
      );
    } finally {
      apis.destroy();
      spawnSync('docker', ['start', worker]);
    }
  });

  it('up with its ports taken (by the running stack’s proxy, by a process) fails at once, names both, starts and writes nothing', async () => {
    const other = path.join(dir, 'other');
    execFileSync('mkdir', ['-p', other]);
    const otherName = `${NAME}-b`;
    const processPort = await freePort();
    writeFileSync(
      path.join(other, 'mlship.yaml'),
      [
        'version: 1',
        `name: ${otherName}`,
        'services:',
        '  iris:',
        '    path: ../services/iris',
        'proxy:',
        '  image: mlship-local/nginx:1.22',
        `  port: ${port}`,
        'storage:',
        '  image: mlship-local/moto:5.2',
        `  host_port: ${processPort}`,
        '',
      ].join('\n'),
    );
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(processPort, '127.0.0.1', r));
    try {
      const t0 = performance.now();
      const r = spawnSync(process.execPath, [BIN, 'compose', 'up'], {
        cwd: other,
        encoding: 'utf8',
        env: { ...process.env, CI: 'true' },
      });
      const seconds = (performance.now() - t0) / 1000;
      expect(r.status, r.stderr).toBe(3);
      const lines = r.stderr.trim().split('\n');
      expect(lines[0]).toBe('error: 2 ports this stack publishes are already in use');
      // In port order, which the two free ports decide: both lines, either way round.
      expect(lines.slice(1, 3)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            new RegExp(
              `^ {2}port ${port} on 127\\.0\\.0\\.1, which proxy publishes, is in use by container ${NAME}[_-]proxy[_-]1 \\(mlship-local/nginx:1\\.22, compose project ${NAME}\\): set proxy\\.port in mlship\\.yaml \\(\\d+ is free\\), or stop it \\(docker stop ${NAME}[_-]proxy[_-]1\\)$`,
            ),
          ),
          expect.stringMatching(
            new RegExp(
              `^ {2}port ${processPort} on 127\\.0\\.0\\.1, which storage publishes, is in use by process ${process.pid} \\(.*node.*\\): set storage\\.host_port in mlship\\.yaml \\(\\d+ is free\\), or stop process ${process.pid}$`,
            ),
          ),
        ]),
      );
      expect(lines[3]).toBe('hint: move each port as said above, or stop what holds it; nothing was started');
      // Reported before any build or container: a generous bound for a loaded machine (bench/first-hour measures it).
      expect(seconds).toBeLessThan(15);
      expect(projectContainers(otherName)).toBe(0);
      expect(existsSync(path.join(other, 'deploy'))).toBe(false);
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });

  it('a database volume made by another PostgreSQL major is refused with a clear message', () => {
    const down = mlship(['compose', 'down']);
    expect(down.code, down.stderr).toBe(0);
    expect(projectContainers()).toBe(0);
    execFileSync('docker', ['tag', 'mlship-local/postgres:15', 'mlship-local/postgres:16']);
    writeConfig('mlship-local/postgres:16');
    const r = mlship(['compose', 'up', '--no-build']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /holds a PostgreSQL 15 data directory, but database\.image is mlship-local\/postgres:16/,
    );
    expect(r.stderr).toMatch(/hint: .*pg_dumpall/);
    writeConfig('mlship-local/postgres:15');
  });

  it('a GPU stack on a machine without GPUs runs its cpu profile, reachable by the same names', async () => {
    const down = mlship(['compose', 'down', '--volumes']);
    expect(down.code, down.stderr).toBe(0);
    writeGpuConfig();
    const r = mlship(['compose', 'up', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      profile: string;
      services: { service: string; health: string }[];
      smoke: { status: number }[];
    };
    expect(out.profile).toBe('cpu'); // this engine has no NVIDIA runtime
    expect(out.services.map((s) => s.service).sort()).toEqual(['frontend', 'iris-cpu', 'proxy-cpu']);
    expect(out.services.every((s) => s.health === 'healthy')).toBe(true);
    expect(out.smoke[0]?.status).toBe(200);
    // The gpu profile is generated with the device request, for machines that have GPUs.
    const compose = readFileSync(path.join(dir, 'deploy/compose/compose.yaml'), 'utf8');
    expect(compose).toMatch(/iris:[\s\S]*?driver: nvidia\n\s+count: 1/);
  });

  it("a user's own compose file runs as written: warnings located, services without health checks count when running", () => {
    const userDir = path.join(dir, 'theirs');
    execFileSync('mkdir', ['-p', userDir]);
    writeFileSync(
      path.join(userDir, 'docker-compose.yml'),
      [
        'services:',
        '  web:',
        '    image: mlship-local/nginx:1.22',
        '    container_name: their-web',
        '    healthcheck:',
        '      test: ["CMD", "curl", "-fsS", "http://127.0.0.1/"]',
        '      interval: 2s',
        '  worker:',
        '    image: mlship-local/debian:bookworm',
        '    command: sleep 300',
        '',
      ].join('\n'),
    );
    const run = (args: string[]) =>
      spawnSync(process.execPath, [BIN, ...args], {
        cwd: userDir,
        encoding: 'utf8',
        env: { ...process.env, CI: 'true' },
      });
    const up = run(['compose', 'up', '-f', 'docker-compose.yml', '--json']);
    expect(up.status, up.stderr).toBe(0);
    expect(up.stderr).toContain('docker-compose.yml:4:5 services.web.container_name:');
    const out = JSON.parse(up.stdout) as {
      project: string;
      services: { service: string; state: string; health?: string }[];
    };
    expect(out.project).toBe('theirs');
    expect(Object.fromEntries(out.services.map((s) => [s.service, s.health ?? s.state]))).toEqual({
      web: 'healthy',
      worker: 'running',
    });
    const down = run(['compose', 'down', '-f', 'docker-compose.yml']);
    expect(down.status, down.stderr).toBe(0);
    const left = execFileSync(
      'docker',
      ['ps', '-aq', '--filter', 'label=com.docker.compose.project=theirs'],
      { encoding: 'utf8' },
    );
    expect(left.trim()).toBe('');
  });

  it('a failed up stops and removes what it started; --keep-on-failure leaves it and says what is there', () => {
    // compose v1 has no top-level name: the project is named after the folder.
    const project = `${NAME}-fail`;
    const failing = path.join(dir, project);
    execFileSync('mkdir', ['-p', failing]);
    writeFileSync(
      path.join(failing, 'docker-compose.yml'),
      [
        'services:',
        '  sleeper:',
        '    image: mlship-local/debian:bookworm',
        '    command: sleep 300',
        '  crasher:', // never healthy: fails the run within seconds
        '    image: mlship-local/debian:bookworm',
        '    command: sleep 300',
        '    healthcheck:',
        '      test: ["CMD", "false"]',
        '      interval: 1s',
        '      retries: 1',
        '',
      ].join('\n'),
    );
    const run = (args: string[]) =>
      spawnSync(process.execPath, [BIN, 'compose', ...args, '-f', 'docker-compose.yml'], {
        cwd: failing,
        encoding: 'utf8',
        env: { ...process.env, CI: 'true' },
      });
    const up = run(['up']);
    expect(up.status, up.stderr).toBe(1);
    expect(up.stderr).toMatch(/^error: service crasher unhealthy$/m);
    expect(up.stderr).toContain(
      `stopped and removed what this up started: 2 container(s) and the network of ${project}`,
    );
    expect(projectContainers(project)).toBe(0);
    expect(projectNetworks(project)).toBe(0);

    const kept = run(['up', '--keep-on-failure']);
    expect(kept.status, kept.stderr).toBe(1);
    expect(kept.stderr).toContain(
      `left as it is (--keep-on-failure): 2 container(s) of ${project}, and its network`,
    );
    expect(kept.stderr).toMatch(/^ {4}\S*sleeper\S*: running$/m);
    expect(kept.stderr).toMatch(/^ {4}\S*crasher\S*: running \(unhealthy\)$/m);
    expect(kept.stderr).toContain('remove them with `mlship compose down -f docker-compose.yml`');
    expect(projectContainers(project)).toBe(2);
    expect(run(['down']).status).toBe(0);
    expect(projectContainers(project)).toBe(0);
  });

  it('down --volumes leaves no container and no volume', () => {
    const r = mlship(['compose', 'down', '--volumes', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, leftover: 0, removedVolumes: true });
    expect(projectContainers()).toBe(0);
    const volumes = execFileSync('docker', ['volume', 'ls', '-q', '--filter', `name=${NAME}`], {
      encoding: 'utf8',
    });
    expect(volumes.trim()).toBe('');
  });
});
