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
    expect(r.notDone[0]!.description).toMatch(/refers to other files/);
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
    expect(r.notDone[0]).toMatchObject({ rule: 'source-before-deps', line: 4 });
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
    expect(r.notDone).toEqual([
      {
        rule: 'large-file-copied',
        line: 2,
        description: 'model.pt is kept: a later RUN of the build uses it',
      },
    ]);
  });
});
