// Every rule, with a case it must report (at the right line) and cases it must not.

import { describe, expect, it } from 'vitest';
import { slimVariant } from '../../../src/core/optimize/images.js';
import { RULE_IDS } from '../../../src/core/optimize/rules.js';
import { df, findings, hits, snapshot } from './helpers.js';

const PY = 'FROM python:3.11-slim';

describe('source-before-deps', () => {
  it('reports the source COPY that precedes a dependency install', () => {
    const text = df(
      PY,
      'WORKDIR /app',
      'COPY . .',
      'RUN pip install -r requirements.txt',
      'CMD ["python", "app.py"]',
    );
    expect(hits(text, 'source-before-deps')).toEqual([3]);
    const f = findings(text).find((x) => x.rule === 'source-before-deps')!;
    expect(f.message).toContain('line 4');
    expect(f.fix).toMatch(/manifests/);
  });
  it('recognises npm ci, poetry install and python -m pip', () => {
    expect(hits(df(PY, 'COPY src/ /app/', 'RUN npm ci'), 'source-before-deps')).toEqual([2]);
    expect(hits(df(PY, 'COPY . /app', 'RUN poetry install --no-root'), 'source-before-deps')).toEqual([2]);
    expect(hits(df(PY, 'COPY app/ ./', 'RUN python -m pip install numpy'), 'source-before-deps')).toEqual([
      2,
    ]);
  });
  it('is quiet when only manifests are copied first, or the install comes first', () => {
    expect(
      hits(
        df(PY, 'COPY requirements.txt .', 'RUN pip install -r requirements.txt', 'COPY . .'),
        'source-before-deps',
      ),
    ).toEqual([]);
    expect(
      hits(df(PY, 'COPY package.json package-lock.json ./', 'RUN npm ci', 'COPY . .'), 'source-before-deps'),
    ).toEqual([]);
    expect(
      hits(df(PY, 'RUN pip install numpy', 'COPY . .', 'RUN python -m compileall .'), 'source-before-deps'),
    ).toEqual([]);
  });
  it('does not treat COPY --from as source', () => {
    expect(
      hits(
        df('FROM python:3.11 AS b', 'RUN true', PY, 'COPY --from=b /x /x', 'RUN pip install six'),
        'source-before-deps',
      ),
    ).toEqual([]);
  });
});

describe('large-file-copied', () => {
  const ctx = snapshot({
    'app/main.py': 10,
    'app/model.safetensors': 5000,
    'data/train.csv': 4000,
    'small.bin': 20,
  });
  it('reports a COPY that brings in large files, measured in the context', () => {
    const text = df(PY, 'COPY app/ /app/', 'COPY data /data', 'COPY small.bin /x');
    expect(hits(text, 'large-file-copied', { context: ctx })).toEqual([2, 3]);
    const f = findings(text, { context: ctx }).find((x) => x.line === 2 && x.rule === 'large-file-copied')!;
    expect(f.message).toContain('app/model.safetensors');
    expect(f.fix).toMatch(/dockerignore/);
  });
  it('follows globs and the whole-context copy', () => {
    expect(
      hits(df(PY, 'COPY *.py /app/', 'COPY app/*.safetensors /w/'), 'large-file-copied', { context: ctx }),
    ).toEqual([3]);
    expect(hits(df(PY, 'COPY . /app'), 'large-file-copied', { context: ctx })).toEqual([2]);
  });
  it('needs the build context, and ignores files under the threshold', () => {
    expect(hits(df(PY, 'COPY . /app'), 'large-file-copied')).toEqual([]);
    expect(hits(df(PY, 'COPY . /app'), 'large-file-copied', { context: ctx, large: 10_000 })).toEqual([]);
  });
});

describe('dockerignore-weak', () => {
  const text = df(PY, 'WORKDIR /app', 'COPY . .');
  it('reports a missing .dockerignore at the first context COPY', () => {
    const r = findings(text, { context: snapshot({ 'app.py': 1, '.git/HEAD': 1 }, null) }).filter(
      (f) => f.rule === 'dockerignore-weak',
    );
    expect(r.map((f) => f.line)).toEqual([3]);
    expect(r[0]!.message).toMatch(/no \.dockerignore.*\.git/);
  });
  it('reports what an existing .dockerignore lets through', () => {
    const ctx = snapshot(
      { 'app.py': 1, '.env': 1, '.venv/bin/python': 1, 'web/node_modules/x/index.js': 1 },
      '*.log\n',
    );
    const r = findings(text, { context: ctx }).find((f) => f.rule === 'dockerignore-weak')!;
    expect(r.message).toContain('.env');
    expect(r.message).toContain('virtualenv');
    expect(r.message).toContain('node_modules');
  });
  it('is quiet when the context is clean, or nothing is copied from it', () => {
    expect(hits(text, 'dockerignore-weak', { context: snapshot({ 'app.py': 1 }, '.git\n') })).toEqual([]);
    expect(
      hits(df(PY, 'RUN pip install six'), 'dockerignore-weak', { context: snapshot({ '.env': 1 }, null) }),
    ).toEqual([]);
  });
});

describe('apt rules', () => {
  it('apt-no-install-recommends: reported in the final stage only', () => {
    const text = df(
      'FROM debian:12 AS build',
      'RUN apt-get update && apt-get install -y gcc && rm -rf /var/lib/apt/lists/*',
      'FROM debian:12',
      'RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*',
      'RUN apt-get update && apt-get install -y --no-install-recommends jq && rm -rf /var/lib/apt/lists/*',
    );
    expect(hits(text, 'apt-no-install-recommends')).toEqual([4]);
  });
  it('apt-lists-kept: lists must go in the same RUN, or use a cache mount', () => {
    expect(
      hits(
        df('FROM debian:12', 'RUN apt-get update && apt-get install -y --no-install-recommends jq'),
        'apt-lists-kept',
      ),
    ).toEqual([2]);
    expect(
      hits(
        df(
          'FROM debian:12',
          'RUN apt-get update && apt-get install -y --no-install-recommends jq \\',
          '  && rm -rf /var/lib/apt/lists/*',
        ),
        'apt-lists-kept',
      ),
    ).toEqual([]);
    expect(
      hits(
        df(
          'FROM debian:12',
          'RUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends jq',
        ),
        'apt-lists-kept',
      ),
    ).toEqual([]);
  });
});

describe('pip-cache', () => {
  it('reports pip install without --no-cache-dir in what ships', () => {
    expect(
      hits(df(PY, 'RUN pip install numpy', 'RUN pip3 install --no-cache-dir scipy'), 'pip-cache'),
    ).toEqual([2]);
  });
  it('accepts a cache mount, PIP_NO_CACHE_DIR, or a builder stage', () => {
    expect(
      hits(df(PY, 'RUN --mount=type=cache,target=/root/.cache/pip pip install numpy'), 'pip-cache'),
    ).toEqual([]);
    expect(hits(df(PY, 'ENV PIP_NO_CACHE_DIR=1', 'RUN pip install numpy'), 'pip-cache')).toEqual([]);
    expect(
      hits(
        df(`${PY} AS build`, 'RUN pip wheel numpy -w /w && pip install numpy', PY, 'COPY --from=build /w /w'),
        'pip-cache',
      ),
    ).toEqual([]);
  });
});

describe('base-unpinned', () => {
  it('reports no tag and :latest, also through a build arg', () => {
    const text = df(
      'ARG BASE=ubuntu',
      'FROM python',
      'FROM node:latest',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build-arg reference
      'FROM ${BASE}',
      'FROM registry.local:5000/team/img',
    );
    expect(hits(text, 'base-unpinned')).toEqual([2, 3, 4, 5]);
  });
  it('accepts tags, digests, earlier stages and scratch', () => {
    const text = df(
      'FROM python:3.11-slim AS base',
      'FROM base',
      'FROM scratch',
      `FROM python@sha256:${'a'.repeat(64)}`,
      'FROM localhost:5000/x:1.2',
    );
    expect(hits(text, 'base-unpinned')).toEqual([]);
  });
});

describe('cuda-devel-runtime', () => {
  it('reports a devel image used only to run', () => {
    expect(
      hits(
        df('FROM nvidia/cuda:12.2.0-devel-ubuntu22.04', 'COPY app.py /', 'CMD ["python3", "/app.py"]'),
        'cuda-devel-runtime',
      ),
    ).toEqual([1]);
  });
  it('accepts devel in a builder stage', () => {
    expect(
      hits(
        df(
          'FROM nvidia/cuda:12.2.0-devel-ubuntu22.04 AS build',
          'RUN nvcc -o /k k.cu',
          'FROM nvidia/cuda:12.2.0-runtime-ubuntu22.04',
          'COPY --from=build /k /k',
        ),
        'cuda-devel-runtime',
      ),
    ).toEqual([]);
  });
});

describe('base-not-slim', () => {
  const RUN = ['WORKDIR /app', 'COPY app/ ./', 'CMD ["python", "main.py"]'];
  it('reports a full python/node base in the final stage, on its FROM line, with the slim tag as fix', () => {
    const text = df('# a comment', 'FROM python:3.11', ...RUN);
    expect(hits(text, 'base-not-slim')).toEqual([2]);
    const f = findings(text).find((x) => x.rule === 'base-not-slim')!;
    expect(f.message).toContain('python:3.11');
    expect(f.fix).toContain('use python:3.11-slim,');
    expect(f.fix).toContain('--slim-base');
    expect(f.fix).toMatch(/runtime \.so/);
  });
  it.each([
    ['python:3.11', 'python:3.11-slim'],
    ['python:3.11.9', 'python:3.11.9-slim'],
    ['python:3', 'python:3-slim'],
    ['python:3.13.0rc1', 'python:3.13.0rc1-slim'],
    ['python:3.11-bookworm', 'python:3.11-slim-bookworm'],
    ['python:3.10-bullseye', 'python:3.10-slim-bullseye'],
    ['node:20', 'node:20-slim'],
    ['node:20.11.1-bookworm', 'node:20.11.1-bookworm-slim'],
    ['node:lts', 'node:lts-slim'],
    ['mlship-local/python:3.11', 'mlship-local/python:3.11-slim'],
    ['library/python:3.12', 'library/python:3.12-slim'],
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/python:3.11',
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror/python:3.11-slim',
    ],
    ['127.0.0.1:5000/node:22-bookworm', '127.0.0.1:5000/node:22-bookworm-slim'],
  ])('%s → %s (registry and namespace prefixes match on the last path component)', (image, slim) => {
    expect(slimVariant(image)?.slim).toBe(slim);
    const f = findings(df(`FROM ${image}`, ...RUN)).filter((x) => x.rule === 'base-not-slim');
    expect(f.map((x) => x.line)).toEqual([1]);
    expect(f[0]!.fix).toContain(`use ${slim},`);
  });
  it.each([
    'python:3.11-slim',
    'python:3.11-slim-bookworm',
    'python:3.11-alpine',
    'python:3.11-alpine3.19',
    'python:3.11-windowsservercore',
    'node:20-slim',
    'node:20-bookworm-slim',
    'node:20-alpine',
    'gcr.io/distroless/python3-debian12:nonroot',
    'gcr.io/distroless/nodejs20-debian12',
    'debian:bookworm',
    'ubuntu:22.04',
    'mypython:3.11',
    'python',
    'python:latest',
    'node',
  ])('leaves %s alone (slim, alpine, distroless, other images; unpinned is base-unpinned)', (image) => {
    expect(hits(df(`FROM ${image}`, ...RUN), 'base-not-slim')).toEqual([]);
  });
  it('resolves build-arg defaults, and asks to pin the digest of the slim image', () => {
    expect(hits(df('ARG PY=3.11', 'FROM python:$PY', ...RUN), 'base-not-slim')).toEqual([2]);
    expect(hits(df('ARG PY', 'FROM python:$PY', ...RUN), 'base-not-slim')).toEqual([]);
    const f = findings(df(`FROM python:3.11@sha256:${'a'.repeat(64)}`, ...RUN)).find(
      (x) => x.rule === 'base-not-slim',
    )!;
    expect(f.fix).toContain('use python:3.11-slim (and pin its digest)');
  });
  it('is stage-aware: a builder stage may be full; the stage the final one is built FROM counts', () => {
    const builder = df(
      'FROM python:3.11 AS build',
      'RUN pip wheel -w /wheels numpy',
      'FROM python:3.11-slim',
      'COPY --from=build /wheels /wheels',
    );
    expect(hits(builder, 'base-not-slim')).toEqual([]);
    const chained = df(
      'FROM node:20 AS base',
      'WORKDIR /app',
      'FROM base',
      'COPY . .',
      'CMD ["node", "i.js"]',
    );
    expect(hits(chained, 'base-not-slim')).toEqual([1]);
    // --target picks the stage that ships.
    const targeted = df('FROM python:3.11 AS dev', 'RUN true', 'FROM python:3.11-slim AS prod', 'RUN true');
    expect(hits(targeted, 'base-not-slim')).toEqual([]);
    expect(hits(targeted, 'base-not-slim', { target: 'dev' })).toEqual([1]);
  });
  it('is silenced by a comment above the FROM, a stage comment, and the project config', () => {
    expect(hits(df('# mlship-ignore: base-not-slim', 'FROM python:3.11', ...RUN), 'base-not-slim')).toEqual(
      [],
    );
    expect(
      hits(df('FROM python:3.11', '# mlship-ignore-stage: base-not-slim', ...RUN), 'base-not-slim'),
    ).toEqual([]);
    expect(hits(df('FROM python:3.11', ...RUN), 'base-not-slim', { ignore: ['base-not-slim'] })).toEqual([]);
    // Silencing another rule does not silence this one.
    expect(hits(df('# mlship-ignore: root-user', 'FROM python:3.11', ...RUN), 'base-not-slim')).toEqual([2]);
  });
});

describe('build-tools-in-final', () => {
  it('reports compilers and -dev packages in the final image', () => {
    const r = findings(
      df(
        PY,
        'RUN apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev libgomp1 && rm -rf /var/lib/apt/lists/*',
      ),
    );
    const f = r.find((x) => x.rule === 'build-tools-in-final')!;
    expect(f.line).toBe(2);
    expect(f.message).toContain('gcc, libpq-dev');
    expect(f.message).not.toContain('libgomp1');
  });
  it('is stage-aware, and accepts tools purged in the same layer', () => {
    expect(
      hits(
        df(`${PY} AS build`, 'RUN apt-get install -y build-essential', PY, 'USER nobody'),
        'build-tools-in-final',
      ),
    ).toEqual([]);
    expect(
      hits(
        df(PY, 'RUN apt-get install -y gcc && pip install x && apt-get purge -y gcc'),
        'build-tools-in-final',
      ),
    ).toEqual([]);
  });
});

describe('root-user', () => {
  it('reports no USER (at the final FROM) and a final USER root', () => {
    expect(hits(df('FROM python:3.11 AS a', 'USER app', PY, 'CMD ["x"]'), 'root-user')).toEqual([3]);
    expect(hits(df(PY, 'USER app', 'USER 0:0'), 'root-user')).toEqual([3]);
  });
  it('accepts a non-root user, also inherited from a parent stage', () => {
    expect(hits(df(PY, 'USER 1000'), 'root-user')).toEqual([]);
    expect(hits(df(`${PY} AS base`, 'USER app', 'FROM base', 'CMD ["x"]'), 'root-user')).toEqual([]);
  });
});

describe('add-instead-of-copy', () => {
  it('reports ADD of local files with the COPY to use', () => {
    const f = findings(df(PY, 'ADD --chown=app app.py /app/')).find((x) => x.rule === 'add-instead-of-copy')!;
    expect(f.line).toBe(2);
    expect(f.fix).toContain('COPY --chown=app app.py /app/');
  });
  it('accepts ADD of archives and URLs', () => {
    expect(
      hits(df(PY, 'ADD rootfs.tar.gz /', 'ADD https://example.com/x.bin /x'), 'add-instead-of-copy'),
    ).toEqual([]);
  });
});

describe('secret-in-env', () => {
  it('reports secret-looking names and credential-looking values', () => {
    const text = df(
      'ARG GITHUB_TOKEN',
      PY,
      'ENV DB_PASSWORD=hunter2',
      `ENV SOMETHING=AKIA${'A'.repeat(16)}`,
      'ARG HF_TOKEN',
    );
    expect(hits(text, 'secret-in-env')).toEqual([1, 3, 4, 5]);
  });
  it('does not flag look-alikes or empty ENV', () => {
    const text = df(
      PY,
      'ENV TOKENIZERS_PARALLELISM=false',
      'ENV PWD=/app KEYBOARD=us',
      'ENV API_KEY=',
      'ARG PYTHON_VERSION=3.11',
    );
    expect(hits(text, 'secret-in-env')).toEqual([]);
  });
});

describe('consecutive-run', () => {
  it('reports a lone apt-get update and a cleanup in its own RUN', () => {
    const text = df(
      'FROM debian:12',
      'RUN apt-get update',
      'RUN apt-get install -y --no-install-recommends jq',
      'RUN apt-get clean && rm -rf /var/lib/apt/lists/*',
    );
    expect(hits(text, 'consecutive-run')).toEqual([2, 4]);
  });
  it("does not ask to merge unrelated RUNs (cache granularity is the user's choice)", () => {
    expect(
      hits(
        df(PY, 'RUN pip install --no-cache-dir numpy', 'RUN pip install --no-cache-dir scipy', 'USER app'),
        'consecutive-run',
      ),
    ).toEqual([]);
  });
});

describe('silencing', () => {
  const text = df(
    'FROM python:latest',
    '# mlship-ignore: pip-cache',
    '# (reason: the cache is used by a later step)',
    'RUN pip install numpy',
    'RUN pip install scipy',
    'USER app',
  );
  it('a comment above an instruction silences that rule there only', () => {
    expect(hits(text, 'pip-cache')).toEqual([5]);
  });
  it('a stage comment silences the whole stage, the config the whole project', () => {
    const staged = df(
      'FROM python:latest',
      '# mlship-ignore-stage: pip-cache, base-unpinned',
      'RUN pip install numpy',
      'FROM python:3.11',
      'RUN pip install x',
    );
    expect(hits(staged, 'pip-cache', { target: undefined })).toEqual([5]);
    expect(hits(staged, 'base-unpinned')).toEqual([]);
    expect(hits(text, 'base-unpinned', { ignore: ['base-unpinned'] })).toEqual([]);
  });
});

describe('the default rule set', () => {
  it('has no finding on a well-written Dockerfile (no noisy rules)', () => {
    const text = df(
      'FROM python:3.11-slim',
      'RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*',
      'WORKDIR /app',
      'COPY requirements.txt .',
      'RUN pip install --no-cache-dir -r requirements.txt',
      'COPY app/ ./',
      'RUN useradd --create-home app',
      'USER app',
      'CMD ["python", "main.py"]',
    );
    expect(findings(text, { context: snapshot({ 'requirements.txt': 10, 'app/main.py': 100 }) })).toEqual([]);
  });
  it('every finding names a known rule, a line and a fix', () => {
    const text = df(
      'FROM python',
      'ADD . /app',
      'RUN apt-get update',
      'RUN pip install -r /app/requirements.txt',
      'ENV API_TOKEN=x',
    );
    const r = findings(text, { context: snapshot({ 'requirements.txt': 1, 'w.pt': 5000 }, null) });
    expect(r.length).toBeGreaterThan(5);
    for (const f of r) {
      expect(RULE_IDS).toContain(f.rule);
      expect(f.line).toBeGreaterThanOrEqual(1);
      expect(f.line).toBeLessThanOrEqual(5);
      expect(f.fix.length).toBeGreaterThan(10);
    }
  });
});
