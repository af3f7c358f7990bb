// Each rewrite pass alone, on a state made from a small Dockerfile: what the pass
// edits, and what it leaves for the passes after it. The whole sequence is
// covered by parse-rewrite.test.ts and the fixture goldens.

import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../../src/core/optimize/parse.js';
import { addToCopy } from '../../../src/core/optimize/rewrite/add-to-copy.js';
import { planBuilder, planFinalStage } from '../../../src/core/optimize/rewrite/builder-plan.js';
import { moveToBuilder } from '../../../src/core/optimize/rewrite/builder-stage.js';
import { dropCaches } from '../../../src/core/optimize/rewrite/caches.js';
import {
  dockerignoreText,
  excludeFromContext,
  excludeOwnFiles,
  reportLargeUnknownFiles,
} from '../../../src/core/optimize/rewrite/context-exclusion.js';
import { hoistInstalls } from '../../../src/core/optimize/rewrite/install-hoisting.js';
import { installPython } from '../../../src/core/optimize/rewrite/python-install.js';
import { cudaRebaseOf, slimBaseOf } from '../../../src/core/optimize/rewrite/rebase.js';
import { render } from '../../../src/core/optimize/rewrite/render.js';
import { mergeRuns } from '../../../src/core/optimize/rewrite/run-merging.js';
import { createState, liveOrder, type RewriteOptions } from '../../../src/core/optimize/rewrite/state.js';
import { df, snapshot } from './helpers.js';

function state(text: string, options: RewriteOptions = {}) {
  return createState(parseDockerfile(text), options);
}
const rules = (list: { rule: string; line: number }[]) => list.map((c) => `${c.line}:${c.rule}`);

describe('render', () => {
  it('writes an untouched state back byte for byte, comments, continuations and blank lines included', () => {
    const text = df(
      'ARG V=3.11',
      '# base',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build-arg reference
      'FROM python:${V}-slim AS app',
      '',
      'RUN apt-get update \\',
      '    && apt-get install -y curl',
      '  # trailing comment',
    );
    expect(render(state(text))).toBe(text);
  });

  it('drops a removed instruction with its comments; a replaced-by-nothing one keeps its blank lines', () => {
    const s = state(df('FROM python:3.11-slim', '', '# why', 'RUN a', '', '# note', 'RUN b', 'CMD ["x"]'));
    const [a, b] = s.finalStage.instructions;
    s.removed.add(a!);
    s.replaced.set(b!, []);
    expect(render(s)).toBe(df('FROM python:3.11-slim', '', 'CMD ["x"]'));
  });
});

describe('excludeFromContext', () => {
  const ctx = snapshot(
    { 'model.pt': 5000, 'app.py': 10, '.git/HEAD': 1, 'venv/bin/python': 1, 'notes.mp4': 9000 },
    null,
  );

  it('moves weights and junk to .dockerignore, trims the COPYs, and says where the weights were', () => {
    const s = state(df('FROM python:3.11-slim', 'COPY model.pt /m/', 'COPY . /app', 'CMD ["python"]'), {
      context: ctx,
      largeFileBytes: 1000,
    });
    excludeFromContext(s);
    // `COPY . /app` still copies app.py: the pass edits sources, not whole-context COPYs.
    expect(render(s)).toBe(df('FROM python:3.11-slim', 'COPY . /app', 'CMD ["python"]'));
    expect(s.excluded.filter((x) => x.why === 'weights').map((x) => x.dest)).toEqual([
      '/m/model.pt',
      '/app/model.pt',
    ]);
    expect(dockerignoreText(s)).toMatch(/# added by mlship optimize.*\nmodel\.pt\n\*\*\/\.git\nvenv\n$/);
    expect(s.instructions[0]).toMatch(/^\/m\/model\.pt .* no longer in the image/);
    expect(rules(s.changes)).toEqual(['2:large-file-copied', '1:large-file-copied', '1:dockerignore-weak']);
  });

  it('keeps a weights file a later RUN names, and junk when dockerignore-weak is silenced', () => {
    const s = state(df('FROM python:3.11-slim', 'COPY . /app', 'RUN python check.py /app/model.pt'), {
      context: snapshot({ 'model.pt': 5000, 'app.py': 10, '.git/HEAD': 1 }, null),
      largeFileBytes: 1000,
      ignore: ['dockerignore-weak'],
    });
    excludeFromContext(s);
    expect(s.ignoreAdd).toEqual([]);
    expect(s.notDone.map((n) => n.description)).toEqual([
      'model.pt is kept: a later RUN of the build uses it',
    ]);
  });

  it('does nothing without a context; large files of unknown type are reported, not excluded', () => {
    const none = state(df('FROM python:3.11-slim', 'COPY . /app'));
    excludeFromContext(none);
    expect(none.changes).toEqual([]);
    const s = state(df('FROM python:3.11-slim', 'COPY . /app'), { context: ctx, largeFileBytes: 1000 });
    excludeFromContext(s);
    reportLargeUnknownFiles(s);
    expect(s.notDone.map((n) => n.description)).toEqual([
      'notes.mp4 (8.8 kB) is large but not a known weight/data type: kept',
    ]);
  });

  it('lists the Dockerfile and .dockerignore a broad COPY takes along, once the rewrite changes them', () => {
    const s = state(df('FROM python:3.11-slim', 'WORKDIR /app', 'COPY . .'), {
      context: snapshot({ 'app.py': 1 }),
    });
    excludeOwnFiles(s, s.df.text);
    expect(s.excluded).toEqual([]);
    excludeOwnFiles(s, `${s.df.text}# changed\n`);
    expect(s.excluded.map((x) => x.dest)).toEqual(['/app/Dockerfile', '/app/.dockerignore']);
  });
});

describe('addToCopy', () => {
  it('turns ADD of local files into COPY, flags kept; archives and URLs stay ADD', () => {
    const s = state(
      df(
        'FROM python:3.11-slim',
        'ADD --chown=app app.py /app/',
        'ADD vendor.tar.gz /opt/',
        'ADD https://example.com/x /x',
      ),
    );
    addToCopy(s);
    expect(render(s)).toBe(
      df(
        'FROM python:3.11-slim',
        'COPY --chown=app app.py /app/',
        'ADD vendor.tar.gz /opt/',
        'ADD https://example.com/x /x',
      ),
    );
    expect(rules(s.changes)).toEqual(['2:add-instead-of-copy']);
  });
});

describe('hoistInstalls', () => {
  const ctx = snapshot({ 'requirements.txt': 20, 'app.py': 10, 'fast.c': 10 }, '.git\n', {
    'requirements.txt': 'numpy==1.26.4\n',
  });

  it('moves installs above the source COPY, copying only the requirements file first', () => {
    const s = state(
      df(
        'FROM python:3.11-slim',
        'WORKDIR /app',
        'COPY . .',
        'RUN apt-get update && apt-get install -y --no-install-recommends libgomp1',
        'RUN pip install -r requirements.txt',
      ),
      { context: ctx },
    );
    hoistInstalls(s);
    expect(render(s)).toBe(
      df(
        'FROM python:3.11-slim',
        'WORKDIR /app',
        'RUN apt-get update && apt-get install -y --no-install-recommends libgomp1',
        'COPY requirements.txt /app/requirements.txt',
        'RUN pip install -r requirements.txt',
        'COPY . .',
      ),
    );
    expect(rules(s.changes)).toEqual(['4:source-before-deps', '5:source-before-deps']);
  });

  it('a compile in between holds the install back, unless it is leaving for the builder', () => {
    const text = df(
      'FROM python:3.11-slim',
      'COPY . /app',
      'RUN gcc -shared -o /app/libfast.so /app/fast.c',
      'RUN pip install numpy',
    );
    const held = state(text, { context: ctx });
    hoistInstalls(held);
    expect(render(held)).toBe(text);
    // The compile is a RUN it does not understand: the scan stops there, silently (not an install).
    expect(held.notDone).toEqual([]);
    const free = state(text, { context: ctx });
    hoistInstalls(free, new Set([free.finalStage.instructions[1]!]));
    expect(liveOrder(free, 0).map((i) => i.line)).toEqual([4, 2, 3]);
  });
});

describe('mergeRuns', () => {
  it('joins a lone apt-get update to the next RUN (with the lists removed) and a cleanup RUN to the one before', () => {
    const s = state(
      df(
        'FROM debian:bookworm-slim',
        'RUN apt-get update',
        'RUN apt-get install -y --no-install-recommends curl',
        'RUN make',
        'RUN rm -rf /tmp/build',
      ),
    );
    mergeRuns(s);
    expect(render(s)).toBe(
      df(
        'FROM debian:bookworm-slim',
        'RUN apt-get update \\',
        '    && apt-get install -y --no-install-recommends curl \\',
        '    && rm -rf /var/lib/apt/lists/*',
        'RUN make \\',
        '    && rm -rf /tmp/build',
      ),
    );
    expect(rules(s.changes)).toEqual(['2:consecutive-run', '5:consecutive-run']);
  });

  it('joins a chain of cleanup RUNs in one rewrite (a second rewrite finds nothing left)', () => {
    const s = state(df('FROM debian:bookworm-slim', 'RUN make', 'RUN rm -rf /tmp/a', 'RUN rm -rf /tmp/b'));
    mergeRuns(s);
    expect(render(s)).toBe(
      df('FROM debian:bookworm-slim', 'RUN make \\', '    && rm -rf /tmp/a \\', '    && rm -rf /tmp/b'),
    );
    expect(s.changes.map((c) => c.description)).toEqual([
      'cleanup merged into the RUN on line 2',
      'cleanup merged into the RUN on line 2',
    ]);
  });

  it('leaves builder stages alone: their layers do not ship', () => {
    const text = df(
      'FROM debian:bookworm-slim AS b',
      'RUN apt-get update',
      'RUN apt-get install -y gcc',
      'FROM b AS x',
      'FROM debian:bookworm-slim',
      'COPY --from=b /x /x',
    );
    const s = state(text);
    mergeRuns(s);
    expect(render(s)).toBe(text);
  });
});

describe('dropCaches', () => {
  it('adds --no-cache-dir and removes apt lists in the same RUN; cache mounts and PIP_NO_CACHE_DIR are left alone', () => {
    const s = state(
      df(
        'FROM python:3.11-slim',
        'RUN apt-get update && apt-get install -y --no-install-recommends curl',
        'RUN pip install numpy && pip3 install --no-cache-dir six',
        'RUN --mount=type=cache,target=/root/.cache/pip pip install scipy',
      ),
    );
    dropCaches(s);
    expect(render(s)).toBe(
      df(
        'FROM python:3.11-slim',
        'RUN apt-get update && apt-get install -y --no-install-recommends curl \\',
        '    && rm -rf /var/lib/apt/lists/*',
        'RUN pip install --no-cache-dir numpy && pip3 install --no-cache-dir six',
        'RUN --mount=type=cache,target=/root/.cache/pip pip install scipy',
      ),
    );
    const off = state(df('FROM python:3.11-slim', 'ENV PIP_NO_CACHE_DIR=1', 'RUN pip install numpy'));
    dropCaches(off);
    expect(off.changes).toEqual([]);
  });
});

describe('builder plan and builder stage', () => {
  const tools =
    'RUN apt-get update && apt-get install -y --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*';

  it('plans the toolchain install and the compile with a named output', () => {
    const s = state(
      df('FROM python:3.11-slim', tools, 'COPY fast.c .', 'RUN gcc -shared -o /fast.so fast.c'),
    );
    const { plan } = planFinalStage(s, undefined);
    expect(plan).toMatchObject({ ok: true, packages: ['gcc'], outputs: ['/fast.so'] });
  });

  it.each([
    [['RUN make'], /line 3 may use the tools/],
    [['RUN apt-get install -y curl gcc'], /more than one RUN/],
    [[], /nothing visibly uses them/],
  ])('says why nothing moves (%j)', (extra, why) => {
    const s = state(df('FROM python:3.11-slim', tools, ...extra));
    const plan = planBuilder(s, liveOrder(s, 0), undefined);
    expect(plan.ok).toBe(false);
    expect(plan.ok ? '' : plan.reason).toMatch(why);
  });

  it('moveToBuilder writes the builder above the final stage and copies the outputs back', () => {
    const s = state(
      df('FROM python:3.11-slim', tools, 'COPY fast.c .', 'RUN gcc -shared -o /fast.so fast.c'),
    );
    moveToBuilder(s, undefined);
    expect(render(s)).toBe(
      df(
        'FROM python:3.11-slim AS mlship-build',
        tools,
        'COPY fast.c .',
        'RUN gcc -shared -o /fast.so fast.c',
        '',
        'FROM python:3.11-slim',
        'COPY fast.c .',
        'COPY --from=mlship-build /fast.so /fast.so',
      ),
    );
    expect(rules(s.changes)).toEqual(['2:build-tools-in-final']);
  });

  it('slimBaseOf names the slim variant only with --slim-base, and otherwise says why not', () => {
    const text = df('FROM python:3.11', 'RUN pip install numpy');
    const off = state(text);
    expect(slimBaseOf(off)).toBeUndefined();
    expect(off.notDone[0]!.description).toMatch(/--slim-base switches/);
    expect(slimBaseOf(state(text, { slimBase: true }))).toMatchObject({
      kind: 'slim',
      to: 'python:3.11-slim',
    });
  });
});

describe('installPython', () => {
  it('puts Python in a venv before the first pip on a Python-less apt image', () => {
    const s = state(df('FROM nvidia/cuda:12.4.1-runtime-ubuntu22.04', 'RUN pip install six==1.16.0'));
    installPython(s);
    const out = render(s);
    expect(out).toMatch(
      /python3 python3-venv \\\n.*\n {4}&& python3 -m venv \/opt\/venv\nENV PATH=\/opt\/venv\/bin:\$PATH\nRUN pip install six/,
    );
    expect(rules(s.changes)).toEqual(['2:python-missing']);
  });

  it('says why not on alpine and under a non-root USER', () => {
    const alpine = state(df('FROM alpine:3.20', 'RUN pip install six'));
    installPython(alpine);
    expect(alpine.notDone[0]!.description).toMatch(/does not install with apt-get/);
    const user = state(df('FROM debian:bookworm-slim', 'USER app', 'RUN pip install six'));
    installPython(user);
    expect(user.notDone[0]!.description).toMatch(/USER app on line 2 is in effect/);
    expect(render(user)).toBe(user.df.text);
  });
});

describe('cudaRebaseOf', () => {
  const devel = 'FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-devel';
  it('moves a devel stage that visibly builds to the runtime image', () => {
    const s = state(df(devel, 'COPY ext/ /ext/', 'RUN pip install /ext'));
    expect(cudaRebaseOf(s)).toMatchObject({
      kind: 'cuda',
      to: 'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
      builds: [3],
    });
  });
  it('leaves a stage that builds nothing to the user, and says why it cannot split the others', () => {
    expect(cudaRebaseOf(state(df(devel, 'RUN pip install fastapi==0.115.0')))).toBeUndefined();
    const unseen = state(df(devel, 'COPY . /src', 'RUN pip install /src && /src/post-install.sh'));
    expect(cudaRebaseOf(unseen)).toBeUndefined();
    expect(unseen.notDone[0]!.description).toMatch(/may build too/);
    const args = state(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a Dockerfile build-arg reference
      df('ARG V=2.5.1', 'FROM pytorch/pytorch:${V}-cuda12.4-cudnn9-devel', 'RUN pip install .'),
    );
    expect(cudaRebaseOf(args)).toBeUndefined();
    expect(args.notDone[0]!.description).toMatch(/build args/);
  });
});
