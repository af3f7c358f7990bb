// The lint rules. Each one looks at the parsed Dockerfile (and the build context
// when there is one) and returns findings worth acting on: every rule here either
// costs image size, push time, cache hits or a leaked secret when ignored.
// Stage-aware: rules about what ships check only the stages in the final image.
// The generic rules live here; the ones that know ML images, in rules/.

import { filesMatching, formatBytes, isArchive, isRemoteSource, isWeightLike } from './context.js';
import { copyParts, isContextCopy, isManifest } from './copies.js';
import { slimVariant } from './images.js';
import {
  commandText,
  finalLineage,
  finalStageIndex,
  type Instruction,
  lineageRoot,
  mounts,
  type Stage,
} from './parse.js';
import { ML_RULES } from './rules/ml.js';
import { inLineage, type Rule, type RuleInput } from './rules/rule.js';
import {
  aptInstallArgs,
  installsDependencies,
  isAptUpdate,
  isCleanupOnly,
  packagesOf,
  pipInstallArgs,
  splitShell,
} from './shell.js';

export type { Finding, Report, Rule, RuleInput } from './rules/rule.js';

/** The build toolchains that belong in a builder stage, not in what ships. */
const TOOLCHAIN =
  /^(build-essential|gcc(-\d+)?|g\+\+(-\d+)?|clang(-\d+)?|make|cmake|ninja-build|gfortran|cargo|rustc|autoconf|automake|libtool|pkg-config|cuda-toolkit(-[\d-]+)?|cuda-nvcc(-[\d-]+)?)$/;

export function toolchainPackages(ins: Instruction): string[] {
  if (ins.keyword !== 'RUN') return [];
  const cmds = splitShell(commandText(ins));
  const removed = new Set(
    cmds.flatMap((c) => {
      const i = c.words.findIndex((w) => /(^|\/)apt(-get)?$/.test(w));
      return i >= 0 && ['purge', 'remove'].includes(c.words[i + 1] ?? '') ? c.words.slice(i + 2) : [];
    }),
  );
  return cmds
    .flatMap((c) => packagesOf(aptInstallArgs(c) ?? []))
    .filter((p) => (TOOLCHAIN.test(p) || /-dev$/.test(p)) && !removed.has(p));
}

function stagesOf(input: RuleInput): Stage[] {
  return input.df.stages;
}

const GENERIC_RULES: Rule[] = [
  {
    id: 'source-before-deps',
    summary: 'source copied before dependencies are installed: every code change re-runs the install',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        let sourceCopy: Instruction | undefined;
        for (const ins of stage.instructions) {
          if (isContextCopy(ins) && !sourceCopy) {
            const { sources } = copyParts(ins);
            if (sources.some((s) => !isManifest(s) && !isRemoteSource(s))) sourceCopy = ins;
          } else if (ins.keyword === 'RUN' && sourceCopy && installsDependencies(commandText(ins))) {
            report(
              sourceCopy,
              `line ${sourceCopy.line} copies source before the dependency install on line ${ins.line}: any source change re-runs it and re-uploads its layer`,
              'copy only the dependency manifests (requirements.txt, pyproject.toml, package*.json) first, install, then copy the source',
            );
            break;
          }
        }
      }
    },
  },
  {
    id: 'large-file-copied',
    summary: 'weights, data sets or other large files copied into the image',
    check(input, report) {
      const ctx = input.context;
      if (!ctx) return;
      for (const stage of stagesOf(input)) {
        for (const ins of stage.instructions) {
          if (!isContextCopy(ins)) continue;
          const large = copyParts(ins)
            .sources.flatMap((s) => filesMatching(ctx.files, s))
            .filter((f) => f.size >= input.largeFileBytes)
            .sort((a, b) => b.size - a.size);
          if (!large.length) continue;
          const total = large.reduce((n, f) => n + f.size, 0);
          const names = large.slice(0, 3).map((f) => `${f.path} (${formatBytes(f.size)})`);
          report(
            ins,
            `copies ${large.length} large file${large.length === 1 ? '' : 's'} (${formatBytes(total)}) into the image: ${names.join(', ')}${large.length > 3 ? ', …' : ''}`,
            large.some((f) => isWeightLike(f.path))
              ? 'keep weights and data out of the image: add them to .dockerignore and mount them at run time or download them at start-up (`mlship optimize --write` does this)'
              : 'add them to .dockerignore unless the service needs them, or fetch them at start-up',
          );
        }
      }
    },
  },
  {
    id: 'dockerignore-weak',
    summary:
      'no .dockerignore, or one that lets .git, .env, venvs, node_modules, data or weights into the context',
    check(input, report) {
      const ctx = input.context;
      if (!ctx) return;
      const first = input.df.stages.flatMap((s) => s.instructions).find(isContextCopy);
      if (!first) return;
      const leaks: string[] = [];
      const seen = (re: RegExp) => ctx.files.find((f) => re.test(f.path));
      const checks: [string, RegExp][] = [
        ['.git', /(^|\/)\.git(\/|$)/],
        ['.env', /(^|\/)\.env(\.[^/]*)?$/],
        ['virtualenv', /(^|\/)(\.?venv|env|\.tox|\.conda)\/(bin|lib|pyvenv\.cfg)/],
        ['node_modules', /(^|\/)node_modules\//],
        ['__pycache__', /(^|\/)__pycache__\//],
      ];
      for (const [name, re] of checks) {
        const hit = seen(re);
        if (hit) leaks.push(`${name} (${hit.path})`);
      }
      const heavy = ctx.files.filter((f) => isWeightLike(f.path) && f.size >= input.largeFileBytes);
      if (heavy.length)
        leaks.push(
          `${heavy.length} large weight/data file${heavy.length === 1 ? '' : 's'} (${heavy[0]!.path})`,
        );
      if (ctx.dockerignore === null) {
        report(
          first,
          `no .dockerignore: the whole directory is sent to the engine${leaks.length ? ` and can end up in the image, including ${leaks.join(', ')}` : ''}`,
          'add a .dockerignore that excludes .git, .env, virtualenvs, node_modules, __pycache__, data and weights',
        );
      } else if (leaks.length) {
        report(
          first,
          `.dockerignore does not exclude ${leaks.join(', ')}`,
          'add those paths to .dockerignore (`mlship optimize --write` does this)',
        );
      }
    },
  },
  {
    id: 'apt-no-install-recommends',
    summary: 'apt-get install without --no-install-recommends',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        if (!inLineage(input, stage.index)) continue;
        for (const ins of stage.instructions) {
          if (ins.keyword !== 'RUN') continue;
          const cmds = splitShell(commandText(ins));
          const bad = cmds.some((c) => {
            const a = aptInstallArgs(c);
            return (
              a !== undefined &&
              !a.includes('--no-install-recommends') &&
              !a.some((x) => /Install-Recommends=(false|0)/i.test(x))
            );
          });
          if (bad) {
            report(
              ins,
              'apt-get install without --no-install-recommends pulls in recommended packages the service does not need',
              'add --no-install-recommends (and add back any package that turns out to be needed)',
            );
          }
        }
      }
    },
  },
  {
    id: 'apt-lists-kept',
    summary: 'apt lists not removed in the layer that downloaded them',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        if (!inLineage(input, stage.index)) continue;
        for (const ins of stage.instructions) {
          if (ins.keyword !== 'RUN') continue;
          const text = commandText(ins);
          const cmds = splitShell(text);
          if (!cmds.some((c) => isAptUpdate(c))) continue;
          const cached = mounts(ins).some(
            (m) => m.type === 'cache' && /\/var\/lib\/apt/.test(m.target ?? m.dst ?? ''),
          );
          if (cached || /rm\s+-[a-z]*r[a-z]*f?\s+[^&;]*\/var\/lib\/apt\/lists/.test(text)) continue;
          report(
            ins,
            'apt lists (tens of MB) stay in this layer: deleting them in a later RUN does not shrink the image',
            'end this RUN with `&& rm -rf /var/lib/apt/lists/*`, or use a cache mount for /var/lib/apt',
          );
        }
      }
    },
  },
  {
    id: 'pip-cache',
    summary: 'pip install without --no-cache-dir or a cache mount',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        if (!inLineage(input, stage.index)) continue;
        const envOff = stage.instructions.some(
          (i) =>
            i.keyword === 'ENV' &&
            i.properties.some(
              (p) => p.name === 'PIP_NO_CACHE_DIR' && /^(1|true|yes|on|off|0|false)$/i.test(p.value ?? ''),
            ),
        );
        if (envOff) continue;
        for (const ins of stage.instructions) {
          if (ins.keyword !== 'RUN') continue;
          const cmds = splitShell(commandText(ins));
          const bad = cmds.some((c) => {
            const a = pipInstallArgs(c);
            return a !== undefined && !a.includes('--no-cache-dir');
          });
          const cached = mounts(ins).some((m) => m.type === 'cache');
          if (bad && !cached) {
            report(
              ins,
              'pip keeps its download and wheel cache in this layer (often as large as the packages): it ships but is never used',
              'add --no-cache-dir, or use `RUN --mount=type=cache,target=/root/.cache/pip` (BuildKit) to keep the cache between builds',
            );
          }
        }
      }
    },
  },
  {
    id: 'base-unpinned',
    summary: 'base image without a tag, or :latest',
    check(input, report) {
      const names = new Set(input.df.stages.map((s) => s.name).filter(Boolean));
      for (const stage of stagesOf(input)) {
        const image = stage.resolvedImage;
        if (image === undefined || image === 'scratch' || names.has(image.toLowerCase())) continue;
        if (image.includes('@sha256:')) continue;
        const lastSlash = image.lastIndexOf('/');
        const colon = image.indexOf(':', lastSlash + 1);
        const tag = colon >= 0 ? image.slice(colon + 1) : undefined;
        if (tag === undefined || tag === 'latest') {
          report(
            stage.from,
            `base image ${image} is ${tag ? 'pinned to :latest' : 'not pinned'}: builds change under you and cached layers are invalidated without warning`,
            'pin a version tag (e.g. python:3.11-slim), or a digest (image@sha256:…) for reproducible builds',
          );
        }
      }
    },
  },
  {
    id: 'base-not-slim',
    summary: 'the final image is built on a full python/node image that has a slim variant',
    check(input, report) {
      // Like cuda-devel-runtime, only what ships counts: a builder stage may use the full image.
      const root = lineageRoot(input.df, input.target);
      const image = root.resolvedImage;
      const v = image === undefined ? undefined : slimVariant(image);
      if (!v) return;
      report(
        root.from,
        `the final image is built on ${image}, the full ${v.family} image: its compilers, -dev headers and tools (gcc, git, curl, …) add several hundred MB the service does not run with`,
        `use ${v.slim}${v.digest ? ' (and pin its digest)' : ''}, with anything that compiles in a builder stage on ${v.image.replace(/@.*$/, '')}; \`mlship optimize --write --slim-base\` does this. Not by default: a package built from source may link against a library whose runtime .so only the full image has`,
      );
    },
  },
  {
    id: 'build-tools-in-final',
    summary: 'compilers and -dev headers left in the final image',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        if (!inLineage(input, stage.index)) continue;
        for (const ins of stage.instructions) {
          const tools = toolchainPackages(ins);
          if (!tools.length) continue;
          report(
            ins,
            `build tools ${tools.join(', ')} stay in the final image (${input.df.stages.length > 1 ? 'this stage ships' : 'single-stage build'})`,
            'build in a builder stage (FROM … AS build) and COPY --from=build only the results (wheels, a venv, compiled files)',
          );
        }
      }
    },
  },
  {
    id: 'root-user',
    summary: 'the service runs as root',
    check(input, report) {
      const idx = finalStageIndex(input.df, input.target);
      // The user is inherited through FROM <stage>, so look at the whole lineage.
      const lineage = [...finalLineage(input.df, input.target)].sort((a, b) => a - b);
      const users = lineage.flatMap((i) =>
        input.df.stages[i]!.instructions.filter((x) => x.keyword === 'USER'),
      );
      const last = users.at(-1);
      const user = last?.argv[0]?.split(':')[0];
      if (last && user !== 'root' && user !== '0') return;
      report(
        last ?? input.df.stages[idx]!.from,
        last ? 'the final USER is root' : 'no USER instruction: the service runs as root',
        'create an unprivileged user (e.g. `RUN useradd --create-home app`) and switch with `USER app` before CMD',
      );
    },
  },
  {
    id: 'add-instead-of-copy',
    summary: 'ADD used where COPY does the same',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        for (const ins of stage.instructions) {
          if (ins.keyword !== 'ADD') continue;
          const { sources } = copyParts(ins);
          if (sources.some((s) => isRemoteSource(s) || isArchive(s))) continue;
          report(
            ins,
            'ADD of local files: ADD also fetches URLs and unpacks archives, so COPY says what is meant',
            `use COPY (${['COPY', ...ins.flags.map((f) => `--${f.name}${f.value === null ? '' : `=${f.value}`}`), ...copyParts(ins).sources, copyParts(ins).dest].join(' ')})`,
          );
        }
      }
    },
  },
  {
    id: 'secret-in-env',
    summary: 'secrets in ENV or ARG',
    check(input, report) {
      const NAME =
        /(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIALS?|API_?KEY|ACCESS_KEY(_ID)?|PRIVATE_KEY|AUTH_KEY)($|_)/i;
      const VALUE =
        /(AKIA[0-9A-Z]{16}|hf_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|xox[baprs]-[A-Za-z0-9-]{10,})/;
      const all = [...input.df.globalArgs, ...input.df.stages.flatMap((s) => s.instructions)];
      for (const ins of all) {
        if (ins.keyword !== 'ENV' && ins.keyword !== 'ARG') continue;
        for (const p of ins.properties) {
          const byName = NAME.test(p.name) && (ins.keyword === 'ARG' || (p.value ?? '') !== '');
          const byValue = VALUE.test(p.value ?? '');
          if (!byName && !byValue) continue;
          report(
            ins,
            `${ins.keyword} ${p.name} ${byValue ? 'holds what looks like a credential' : 'looks like a secret'}: ${ins.keyword === 'ENV' ? 'it is stored in the image config' : 'build args are recorded in the image history'} for anyone who pulls the image`,
            'pass it at run time (ECS secrets, `docker run -e`), or at build time with `RUN --mount=type=secret,id=…`',
          );
        }
      }
    },
  },
  {
    id: 'consecutive-run',
    summary: 'consecutive RUNs that must be one layer',
    check(input, report) {
      for (const stage of stagesOf(input)) {
        if (!inLineage(input, stage.index)) continue;
        const list = stage.instructions;
        for (let i = 1; i < list.length; i++) {
          const a = list[i - 1]!;
          const b = list[i]!;
          if (a.keyword !== 'RUN' || b.keyword !== 'RUN') continue;
          const ca = splitShell(commandText(a));
          const cb = splitShell(commandText(b));
          if (ca.length > 0 && ca.every(isAptUpdate)) {
            report(
              a,
              `apt-get update runs alone, so its layer is cached and line ${b.line} later installs from stale lists`,
              'run `apt-get update && apt-get install … && rm -rf /var/lib/apt/lists/*` in one RUN',
            );
            continue;
          }
          const cleans = isCleanupOnly(cb);
          if (cleans) {
            report(
              b,
              `this RUN only deletes files created by line ${a.line}: they stay in the earlier layer, so the image does not shrink`,
              `merge it into the RUN on line ${a.line} (… && ${cb.map((c) => c.words.join(' ')).join(' && ')})`,
            );
          }
        }
      }
    },
  },
];

export const RULES: Rule[] = [...GENERIC_RULES, ...ML_RULES];

export const RULE_IDS = RULES.map((r) => r.id);
