// The rules about what a serving image runs and carries. dev-server: the
// container's command starts a development server (Flask's, uvicorn with
// --reload, http.server, Django's runserver, a notebook server, a Node dev
// server), which serves one request at a time, reloads on file changes or runs
// code for anyone with the token. dev-tools-in-final: notebooks, test runners
// and linters installed in the final image of a service.

import path from 'node:path';
import { findSourceOf, workdirAt } from '../copies.js';
import { isJupyterImage } from '../images.js';
import { DEV_TOOLS_PIP } from '../packages.js';
import {
  finalLineage,
  finalStageIndex,
  type Instruction,
  lineageRoot,
  type ParsedDockerfile,
} from '../parse.js';
import type { SimpleCommand } from '../shell.js';
import { containerCommands, isPython, osInstallArgs, program, runCommands } from './commands.js';
import { pipRuns } from './pip-installs.js';
import { inLineage, type Rule, type RuleInput } from './rule.js';

interface DevServer {
  what: string;
  fix: string;
}

const GUNICORN =
  'serve it with a production server (`gunicorn -w 2 -b 0.0.0.0:8000 app:app`), or let `mlship wrap` generate the service';

/** A development server started by one command, by its words. */
function devServer(c: SimpleCommand, notebookImage: boolean): DevServer | undefined {
  const { name, args } = program(c);
  const mod = isPython(name) && args[0] === '-m' ? args[1] : undefined;
  const tool = mod ?? name;
  const rest = mod ? args.slice(2) : args;
  if (tool === 'flask' && rest.includes('run'))
    return {
      what: "`flask run` starts Flask's development server (one process, not for production, as its banner says)",
      fix: GUNICORN,
    };
  if (
    ['uvicorn', 'hypercorn'].includes(tool) &&
    rest.some((a) => a === '--reload' || a.startsWith('--reload='))
  )
    return {
      what: `${tool} --reload watches the files and restarts on change, with one worker`,
      fix: `drop --reload; for several workers \`gunicorn -k uvicorn.workers.UvicornWorker -w 2 app:app\`, or let \`mlship wrap\` generate the service`,
    };
  if (tool === 'fastapi' && rest[0] === 'dev')
    return {
      what: '`fastapi dev` runs uvicorn with --reload',
      fix: 'use `fastapi run` (or uvicorn/gunicorn without --reload)',
    };
  if (tool === 'http.server' || tool === 'SimpleHTTPServer')
    return {
      what: "Python's http.server is a development file server",
      fix: 'serve files with nginx (`mlship compose` sets one up), and the model with a real app server',
    };
  if (rest.includes('runserver') && rest.some((a) => a.endsWith('manage.py')))
    return {
      what: "Django's runserver is a development server",
      fix: 'serve it with gunicorn (`gunicorn <project>.wsgi`)',
    };
  const notebook =
    (tool === 'jupyter' && /^(notebook|lab|server|nbclassic)$/.test(rest[0] ?? '')) ||
    /^jupyter-(notebook|lab|server)$/.test(tool);
  if (notebook && !notebookImage)
    return {
      what: 'a Jupyter server runs any code for whoever has its token: an interactive development tool, not a service',
      fix: 'serve the model with an app server (`mlship wrap` generates one); if this image is meant as a notebook environment, silence the rule (`# mlship-ignore: dev-server`)',
    };
  if (tool === 'gradio' && /\.py$/.test(rest[0] ?? ''))
    return {
      what: 'the `gradio` command runs the app in reload mode',
      fix: 'run the app with `python app.py` (its launch() serves without reloading)',
    };
  const nodeDev =
    (['npm', 'yarn', 'pnpm'].includes(tool) &&
      (rest[0] === 'dev' || (rest[0] === 'run' && /^(dev|start:dev|serve)$/.test(rest[1] ?? '')))) ||
    (tool === 'next' && rest[0] === 'dev') ||
    (tool === 'vite' && !['build', 'preview'].includes(rest[0] ?? '')) ||
    tool === 'nodemon';
  if (nodeDev)
    return {
      what: `\`${c.words.join(' ')}\` runs a development server`,
      fix: 'build the app and run its production server (`npm run build`, then `npm start` or `node server.js`)',
    };
  return undefined;
}

/** `.py` files the container's command runs (`python app.py`), by the path it names. */
function scriptsOf(c: SimpleCommand): string[] {
  const { name, args } = program(c);
  return isPython(name) && args[0] && /\.py$/.test(args[0]) ? [args[0]] : [];
}

/** Base names of the scripts the final command runs, so the context loader reads them. */
export function entryScripts(df: ParsedDockerfile): string[] {
  return containerCommands(df, undefined)
    .flatMap(({ commands }) => commands.flatMap(scriptsOf))
    .map((p) => path.posix.basename(p));
}

/** Flask's (or Dash's) `app.run(...)` in a script the command runs, with its line. */
function runInScript(input: RuleInput, ins: Instruction, script: string): DevServer | undefined {
  const ctx = input.context;
  if (!ctx) return undefined;
  const lineage = [...finalLineage(input.df, input.target)].sort((a, b) => a - b);
  const stage = input.df.stages[lineage.at(-1)!]!;
  const abs = path.posix.resolve(workdirAt(stage, ins.line), script);
  const copies = lineage.flatMap((i) => input.df.stages[i]!.instructions);
  const src = lineage.map((i) => findSourceOf(abs, copies, input.df.stages[i]!, ctx)).find(Boolean);
  const text = src ? ctx.readText(src.path) : undefined;
  if (!text || !/^\s*(from|import)\s+(flask|dash)\b/m.test(text)) return undefined;
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^\s*\w+\.run(_server)?\(/.test(l) && !/^\s*#/.test(l));
  if (at < 0) return undefined;
  return {
    what: `${src!.path} starts Flask's development server (\`${lines[at]!.trim()}\` on its line ${at + 1}), one process, not for production`,
    fix: GUNICORN,
  };
}

/** The dev server the final image's command starts, and the instruction that says so. */
export function devServerOf(input: RuleInput): { ins: Instruction; server: DevServer } | undefined {
  const final = input.df.stages[finalStageIndex(input.df, input.target)]!;
  if (/^(dev|devel|development|debug|local)$/.test(final.name ?? '')) return undefined;
  const notebookImage = isJupyterImage(lineageRoot(input.df, input.target).resolvedImage ?? '');
  for (const { ins, commands } of containerCommands(input.df, input.target)) {
    for (const c of commands) {
      const server =
        devServer(c, notebookImage) ??
        scriptsOf(c)
          .map((s) => runInScript(input, ins, s))
          .find(Boolean);
      if (server) return { ins, server };
    }
  }
  return undefined;
}

export const devServerRule: Rule = {
  id: 'dev-server',
  summary:
    'the container starts a development server (flask run, app.run(), --reload, http.server, a notebook)',
  check(input, report) {
    const hit = devServerOf(input);
    if (hit) report(hit.ins, `the container starts a development server: ${hit.server.what}`, hit.server.fix);
  },
};

// -- dev-tools-in-final ---------------------------------------------------------------

const SERVERS =
  /^(gunicorn|uvicorn|hypercorn|waitress-serve|daphne|granian|torchserve|tritonserver|tensorflow_model_server|text-generation-launcher|streamlit|gradio|bentoml|mlflow|ray|vllm|node|nginx|flask|fastapi|serve)$/;

/** Does the final image serve something (not a notebook environment, a training or a tool image)? */
function isServingImage(input: RuleInput): boolean {
  const words = containerCommands(input.df, input.target)
    .flatMap(({ commands }) => commands)
    .map((c) => program(c));
  if (words.some((p) => p.name === 'jupyter' || p.name.startsWith('jupyter-'))) return false;
  if (
    words.some(
      (p) =>
        SERVERS.test(p.name) ||
        p.args.includes('serve') ||
        (isPython(p.name) && p.args[0] === '-m' && SERVERS.test(p.args[1] ?? '')),
    )
  )
    return true;
  const lineage = finalLineage(input.df, input.target);
  return input.df.stages.some(
    (s) => lineage.has(s.index) && s.instructions.some((i) => i.keyword === 'EXPOSE'),
  );
}

const DEV_TOOLS_OS = /^(vim|vim-tiny|nano|emacs(-nox)?|htop|screen|tmux|gdb|strace|valgrind)$/;

function isDevTool(name: string): boolean {
  return DEV_TOOLS_PIP.has(name) || name.startsWith('pytest-');
}

/** The development tools one RUN installs: pip packages (inline and from read requirements files) and OS packages. */
function devToolsOf(input: RuleInput, stageIndex: number, ins: Instruction): string[] {
  const stage = input.df.stages[stageIndex]!;
  const pip = pipRuns(input, stage, ins).flatMap((r) => [
    ...r.requirements,
    ...r.read.flatMap((f) => f.requirements),
  ]);
  const os = ins.keyword === 'RUN' ? runCommands(ins).flatMap((c) => osInstallArgs(c) ?? []) : [];
  return [
    ...new Set([...pip.map((r) => r.name).filter(isDevTool), ...os.filter((p) => DEV_TOOLS_OS.test(p))]),
  ];
}

export const devToolsInFinalRule: Rule = {
  id: 'dev-tools-in-final',
  summary: 'notebooks, test runners, linters or debuggers installed in the final image of a service',
  check(input, report) {
    if (!isServingImage(input)) return;
    for (const stage of input.df.stages.filter((s) => inLineage(input, s.index))) {
      for (const ins of stage.instructions) {
        const tools = devToolsOf(input, stage.index, ins);
        if (!tools.length) continue;
        report(
          ins,
          `development tools in the final image of a service: ${tools.join(', ')}. They add size and attack surface${tools.some((t) => /^(jupyter|jupyterlab|notebook)$/.test(t)) ? ' (a notebook server runs any code it is given)' : ''} and the service does not use them`,
          'install them in a stage of their own for development and tests (`FROM app AS dev`, or a requirements-dev.txt installed only there), and keep the serving image to what the service imports',
        );
      }
    }
  },
};
