// Parse errors (with their line) and the rewrite's safety decisions: what it
// does, and what it reports instead of doing.

import { describe, expect, it } from 'vitest';
import { DockerfileParseError, finalLineage, parseDockerfile } from '../../../src/core/optimize/parse.js';
import { rewriteDockerfile } from '../../../src/core/optimize/rewrite.js';
import { df, snapshot } from './helpers.js';

function parseError(text: string): DockerfileParseError {
  try {
    parseDockerfile(text, 'svc/Dockerfile');
  } catch (e) {
    if (e instanceof DockerfileParseError) return e;
    throw e;
  }
  throw new Error('expected a parse error');
}

describe('parseDockerfile', () => {
  it('rejects what the engine rejects, naming file and line, as a usage error', () => {
    const cases: [string, number, RegExp][] = [
      [df('FROM python:3.11', 'RUN true', 'COPPY a b'), 3, /unknown instruction "COPPY"/],
      [df('RUN echo hi', 'FROM python:3.11'), 1, /before the first FROM/],
      [df('# just a comment', 'ARG X=1'), 2, /no FROM/],
      [df('FROM python:3.11', 'COPY onlyone'), 2, /source and a destination/],
      [df('FROM python:3.11 AS'), 1, /FROM must be/],
      [df('FROM python:3.11', 'WORKDIR'), 2, /requires arguments/],
      ['', 1, /no FROM/],
    ];
    for (const [text, line, message] of cases) {
      const e = parseError(text);
      expect(e.line, text).toBe(line);
      expect(e.message).toMatch(message);
      expect(e.message.startsWith(`svc/Dockerfile:${line}:`)).toBe(true);
      expect(e.exitCode).toBe(2);
      expect(e.toJSON()).toMatchObject({ code: 'DOCKERFILE_INVALID', file: 'svc/Dockerfile', line });
    }
  });

  it('keeps line ranges of continued instructions and the stage lineage', () => {
    const d = parseDockerfile(
      df(
        'ARG V=3.11',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build-arg reference
        'FROM python:${V} AS base',
        'RUN a \\',
        '  && b',
        'FROM base AS app',
        'FROM python:3.11 AS other',
        'COPY --from=app /x /x',
      ),
    );
    expect(d.stages.map((s) => s.resolvedImage)).toEqual(['python:3.11', 'base', 'python:3.11']);
    expect(d.stages[0]!.instructions[0]).toMatchObject({ keyword: 'RUN', line: 3, endLine: 4 });
    expect([...finalLineage(d)]).toEqual([2]);
    expect([...finalLineage(d, 'app')].sort()).toEqual([0, 1]);
  });
});

describe('rewriteDockerfile: safety', () => {
  const ctx = snapshot({ 'requirements.txt': 20, 'app.py': 100, 'pyproject.toml': 50 }, '.git\n', {
    'requirements.txt': 'numpy==1.26.4\n',
  });

  it('moves an install that reads only requirements.txt after copying just that file', () => {
    const r = rewriteDockerfile(
      parseDockerfile(
        df(
          'FROM python:3.11',
          'WORKDIR /app',
          'COPY . .',
          'RUN pip install --no-cache-dir -r requirements.txt',
        ),
      ),
      { context: ctx },
    );
    expect(r.dockerfile).toBe(
      df(
        'FROM python:3.11',
        'WORKDIR /app',
        'COPY requirements.txt /app/requirements.txt',
        'RUN pip install --no-cache-dir -r requirements.txt',
        'COPY . .',
      ),
    );
  });

  it('reports instead of moving when the install reads the project or other files', () => {
    const local = rewriteDockerfile(
      parseDockerfile(df('FROM python:3.11', 'WORKDIR /app', 'COPY . .', 'RUN pip install --no-cache-dir .')),
      { context: ctx },
    );
    expect(local.dockerfile).toContain('COPY . .\nRUN pip install');
    expect(local.notDone.map((n) => `${n.line}:${n.rule}`)).toContain('4:source-before-deps');

    const nested = snapshot({ 'requirements.txt': 20 }, '.git\n', {
      'requirements.txt': '-r base.txt\nnumpy\n',
    });
    const r = rewriteDockerfile(
      parseDockerfile(
        df(
          'FROM python:3.11',
          'WORKDIR /app',
          'COPY . .',
          'RUN pip install --no-cache-dir -r requirements.txt',
        ),
      ),
      { context: nested },
    );
    expect(r.notDone.find((n) => n.rule === 'source-before-deps')!.description).toMatch(
      /refers to other files/,
    );
    expect(r.dockerfile).toContain('COPY . .\nRUN pip install');
  });

  it('does not move an install across ENV, USER or a RUN it does not understand', () => {
    for (const between of ['ENV PIP_INDEX_URL=https://mirror/simple', 'USER app', 'RUN ./configure.sh']) {
      const text = df(
        'FROM python:3.11',
        'COPY app.py /app/',
        between,
        'RUN pip install --no-cache-dir numpy',
      );
      const r = rewriteDockerfile(parseDockerfile(text), { context: ctx });
      expect(r.dockerfile, between).toBe(text.replace(/\n$/, '\n'));
      expect(
        r.changes.filter((c) => c.rule === 'source-before-deps'),
        between,
      ).toEqual([]);
    }
  });

  it('never moves past a COPY into a system directory (it may configure the installer)', () => {
    const text = df(
      'FROM python:3.11',
      'COPY pip.conf /etc/pip.conf',
      'COPY app.py /app/',
      'RUN pip install --no-cache-dir numpy',
    );
    const r = rewriteDockerfile(parseDockerfile(text), {
      context: snapshot({ 'pip.conf': 10, 'app.py': 10 }),
    });
    expect(r.dockerfile).toBe(text);
    expect(r.notDone.find((n) => n.rule === 'source-before-deps')).toMatchObject({ line: 4 });
  });

  it('lists the findings whose fix changes behaviour as not done, with the fix; silenced ones are left out', () => {
    const text = df(
      'FROM nvidia/cuda:12.2.0-devel-ubuntu22.04',
      'ENV HF_TOKEN=abc',
      '# mlship-ignore: apt-no-install-recommends',
      'RUN apt-get update && apt-get install -y python3 && rm -rf /var/lib/apt/lists/*',
      'CMD ["python3", "-m", "http.server"]',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { ignore: ['root-user'] });
    expect(r.dockerfile).toBe(text);
    expect(r.notDone.map((n) => [n.rule, n.line])).toEqual([
      ['cuda-devel-runtime', 1],
      ['secret-in-env', 2],
      ['dev-server', 5],
    ]);
    expect(r.notDone[0]!.description).toMatch(
      /^changes behaviour, so it is yours to do: use the matching runtime image \(nvidia\/cuda:12\.2\.0-runtime-ubuntu22\.04\)/,
    );
  });

  it('excludes weights: drops a COPY of only weights, trims a mixed one, and says how to provide them', () => {
    const big = snapshot({ 'model.pt': 5000, 'app.py': 10, 'vocab.json': 10 }, null);
    const text = df(
      'FROM python:3.11',
      'COPY model.pt /models/model.pt',
      'COPY app.py model.pt vocab.json /app/',
      'USER app',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { context: big, largeFileBytes: 1000 });
    expect(r.dockerfile).toBe(df('FROM python:3.11', 'COPY app.py vocab.json /app/', 'USER app'));
    expect(r.dockerignore).toContain('\nmodel.pt\n');
    expect(r.excluded.map((x) => x.dest).sort()).toEqual(['/app/model.pt', '/models/model.pt']);
    expect(r.instructions.join('\n')).toMatch(/docker run -v "\$PWD\/model\.pt:\/models\/model\.pt:ro"/);
  });

  it('applies no fix that a comment or the project silenced', () => {
    const text = df(
      'FROM python:3.11',
      '# mlship-ignore: add-instead-of-copy',
      'ADD app.py /app/',
      'RUN pip install numpy',
      'USER app',
    );
    const r = rewriteDockerfile(parseDockerfile(text), {
      context: ctx,
      ignore: ['pip-cache', 'source-before-deps'],
    });
    expect(r.dockerfile).toBe(text);
    expect(r.changes).toEqual([]);
  });

  it('keeps a compile in place when its outputs are unknown, and says why', () => {
    const text = df(
      'FROM python:3.11',
      'RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*',
      'COPY . /src',
      'RUN make -C /src',
      'USER app',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { context: ctx });
    expect(r.dockerfile).not.toContain('AS mlship-build');
    expect(r.notDone.find((n) => n.rule === 'build-tools-in-final')!.description).toMatch(
      /line 4 may use the tools/,
    );
  });
});

describe('rewriteDockerfile: weights used by the build', () => {
  it('keeps a weights file that a later RUN reads, and reports it', () => {
    const text = df(
      'FROM python:3.11',
      'COPY model.pt /m/model.pt',
      'RUN python -c "open(\'/m/model.pt\')"',
      'USER app',
    );
    const r = rewriteDockerfile(parseDockerfile(text), {
      context: snapshot({ 'model.pt': 5000 }),
      largeFileBytes: 1000,
    });
    expect(r.dockerfile).toBe(text);
    expect(r.excluded).toEqual([]);
    expect(r.notDone.filter((n) => n.rule !== 'base-not-slim')).toEqual([
      {
        rule: 'large-file-copied',
        line: 2,
        description: 'model.pt is kept: a later RUN of the build uses it',
      },
    ]);
  });
});

describe('rewriteDockerfile: --slim-base', () => {
  const ctx = snapshot({ 'requirements.txt': 20, 'main.py': 100, 'fast.c': 100 }, '.git\n', {
    'requirements.txt': 'numpy==1.26.4\n',
  });
  const naive = df(
    'FROM python:3.11',
    'WORKDIR /app',
    'COPY . .',
    'RUN pip install -r requirements.txt',
    'RUN gcc -O2 -shared -fPIC -o libfast.so fast.c',
    'CMD ["python", "main.py"]',
  );
  const slimNotes = (r: ReturnType<typeof rewriteDockerfile>) =>
    r.notDone.filter((n) => n.rule === 'base-not-slim').map((n) => `${n.line}: ${n.description}`);

  it('without the flag switches nothing and reports why, naming --slim-base', () => {
    const r = rewriteDockerfile(parseDockerfile(naive), { context: ctx });
    expect(r.dockerfile).toMatch(/^FROM python:3\.11\n/);
    expect(r.dockerfile).not.toContain('mlship-build');
    expect(r.changes.filter((c) => c.rule === 'base-not-slim')).toEqual([]);
    const [note] = slimNotes(r);
    expect(note).toMatch(/^1: FROM python:3\.11 kept: python:3\.11-slim is not provably the same/);
    expect(note).toMatch(/runtime \.so/);
    expect(note).toContain('--slim-base');
    expect(r.checks).toEqual([]);
  });

  it('rebases the final stage; pip install (under --root) and compile run in builders on the full image', () => {
    const r = rewriteDockerfile(parseDockerfile(naive), { context: ctx, slimBase: true });
    expect(r.dockerfile).toBe(
      df(
        'FROM python:3.11 AS mlship-deps',
        'WORKDIR /app',
        'COPY requirements.txt /app/requirements.txt',
        '# mlship --slim-base: installed under /mlship-root, copied into the final stage; the build stops here',
        '# if pip replaced a package of the base image (the final stage would keep both versions).',
        'RUN mkdir -p /mlship-root && pip freeze --all > /tmp/mlship-pip-before.txt \\',
        '    && pip install --root /mlship-root --no-cache-dir -r requirements.txt \\',
        '    && pip freeze --all | diff /tmp/mlship-pip-before.txt -',
        '',
        // The compile builds on the pip stage (the same files as one stage); the final stage
        // copies the packages from a stage that a source change leaves alone.
        'FROM mlship-deps AS mlship-build',
        'COPY . .',
        'RUN gcc -O2 -shared -fPIC -o libfast.so fast.c',
        '',
        'FROM python:3.11-slim',
        'WORKDIR /app',
        'COPY --from=mlship-deps /mlship-root/ /',
        'COPY . .',
        'COPY --from=mlship-build /app/libfast.so /app/libfast.so',
        'CMD ["python", "main.py"]',
      ),
    );
    expect(r.changes.find((c) => c.rule === 'base-not-slim')).toMatchObject({
      line: 1,
      description: expect.stringContaining('onto python:3.11-slim; in a builder stage on python:3.11'),
    });
    expect(slimNotes(r)).toEqual([]);
    expect(r.checks.join('\n')).toMatch(/ldd/);
    expect(r.checks.join('\n')).toMatch(/pip check/);
  });

  it('with nothing to build only the FROM changes (flags, name and registry prefix kept); RUNs that stay are listed to check', () => {
    const text = df(
      'FROM --platform=linux/amd64 registry.example.com/mirror/node:20-bookworm AS app',
      'WORKDIR /app',
      'COPY package.json package-lock.json ./',
      'RUN npm ci --omit=dev',
      'COPY . .',
      'CMD ["node", "index.js"]',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { slimBase: true });
    expect(r.dockerfile).toBe(text.replace('node:20-bookworm AS', 'node:20-bookworm-slim AS'));
    expect(r.checks[1]).toMatch(/^line 4 stays in the final stage and now runs on .*node:20-bookworm-slim/);
  });

  it('with no compile after the pip install the builder is one stage, mlship-build', () => {
    const text = df(
      'FROM python:3.11',
      'WORKDIR /app',
      'COPY requirements.txt ./',
      'RUN pip install -r requirements.txt',
      'COPY . .',
      'CMD ["python", "main.py"]',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { slimBase: true });
    expect(r.dockerfile).toMatch(/^FROM python:3\.11 AS mlship-build\n/);
    expect(r.dockerfile).not.toContain('mlship-deps');
    expect(r.dockerfile).toContain('\nCOPY --from=mlship-build /mlship-root/ /\n');
  });

  it('keeps the builder on the platform of the final stage', () => {
    const r = rewriteDockerfile(
      parseDockerfile(naive.replace('FROM python', 'FROM --platform=linux/arm64 python')),
      {
        context: ctx,
        slimBase: true,
      },
    );
    expect(r.dockerfile).toMatch(/^FROM --platform=linux\/arm64 python:3\.11 AS mlship-deps\n/);
    expect(r.dockerfile).toContain('\nFROM mlship-deps AS mlship-build\n');
    expect(r.dockerfile).toContain('\nFROM --platform=linux/arm64 python:3.11-slim\n');
  });

  it.each([
    [
      'two pip RUNs',
      ['FROM python:3.11', 'RUN pip install --upgrade pip', 'RUN pip install numpy'],
      /pip installs in 2 RUNs \(lines 2, 3\).*merge them/,
    ],
    [
      'a RUN it does not understand before what moves',
      ['FROM python:3.11', 'RUN ./configure', 'RUN pip install numpy'],
      /line 2 runs before line 3 .* cannot be known/,
    ],
    ['a USER before what moves', ['FROM python:3.11', 'USER app', 'RUN pip install numpy'], /USER on line 2/],
    [
      'ENV PIP_TARGET',
      ['FROM python:3.11', 'ENV PIP_TARGET=/deps', 'RUN pip install numpy'],
      /ENV on line 2/,
    ],
    ['a build arg in the FROM', ['ARG PY=3.11', 'FROM python:$PY', 'RUN pip install numpy'], /build args/],
    [
      'a stage already named mlship-deps',
      ['FROM debian AS mlship-deps', 'RUN echo', 'FROM python:3.11', 'RUN pip install numpy'],
      /a stage is already named mlship-deps/,
    ],
    ['a digest', [`FROM python:3.11@sha256:${'a'.repeat(64)}`, 'RUN pip install numpy'], /pinned by digest/],
    [
      'a final stage built FROM another stage',
      ['FROM python:3.11 AS base', 'RUN pip install numpy', 'FROM base', 'CMD ["python"]'],
      /built FROM stage base/,
    ],
  ])('reports instead of switching with %s', (_name, lines, why) => {
    const text = df(...lines);
    const r = rewriteDockerfile(parseDockerfile(text), { slimBase: true });
    expect(r.dockerfile).not.toMatch(/-slim/);
    expect(r.dockerfile).not.toContain('mlship-build');
    expect(slimNotes(r).join('\n')).toMatch(why);
    expect(r.checks).toEqual([]);
  });

  it('replays an apt install that comes before the pip install in the builder, and keeps it in the final stage', () => {
    const apt =
      'RUN apt-get update && apt-get install -y --no-install-recommends swig && rm -rf /var/lib/apt/lists/*';
    const r = rewriteDockerfile(
      parseDockerfile(df('FROM python:3.11', apt, 'RUN pip install --no-cache-dir pkg')),
      {
        slimBase: true,
      },
    );
    const [builder, final] = r.dockerfile.split('\n\n');
    expect(builder).toContain(apt);
    expect(final).toBe(`FROM python:3.11-slim\n${apt}\nCOPY --from=mlship-build /mlship-root/ /\n`);
  });

  it('a silenced finding is not switched, with or without a comment', () => {
    const text = df('# mlship-ignore: base-not-slim', 'FROM python:3.11', 'RUN pip install --no-cache-dir x');
    for (const r of [
      rewriteDockerfile(parseDockerfile(text), { slimBase: true }),
      rewriteDockerfile(parseDockerfile(text.replace(/^# .*\n/, '')), {
        slimBase: true,
        ignore: ['base-not-slim'],
      }),
    ]) {
      expect(r.dockerfile).not.toContain('python:3.11-slim');
      expect(slimNotes(r)).toEqual([]);
    }
  });

  it('with the slim plan impossible, still moves an apt toolchain to a builder the plain way', () => {
    const text = df(
      'FROM python:3.11',
      'RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*',
      'COPY fast.c .',
      'RUN gcc -shared -o /fast.so fast.c',
      'RUN pip install --no-cache-dir a',
      'RUN pip install --no-cache-dir b',
    );
    const r = rewriteDockerfile(parseDockerfile(text), { slimBase: true });
    expect(r.dockerfile).toMatch(/^FROM python:3\.11 AS mlship-build\n/);
    expect(r.dockerfile).toContain('\nFROM python:3.11\n');
    expect(r.changes.map((c) => c.rule)).toContain('build-tools-in-final');
    expect(slimNotes(r).join('\n')).toMatch(/pip installs in 2 RUNs \(lines 5, 6\)/);
  });
});
