// Entry point: parses the command line, builds the context, runs one command,
// renders errors once and sets the exit code. Nothing else in mlship exits.

import { Command, CommanderError, Option } from 'commander';
import { CleanupRegistry } from '../io/cleanup.js';
import { ExitCode, isMlshipError } from '../io/errors.js';
import { installSignalHandlers } from '../io/signals.js';
import { COMMANDS } from './commands/index.js';
import { type CliContext, type ContextHolder, createContext, type GlobalOptions } from './context.js';
import { VERSION } from './version.js';

function renderError(ctx: CliContext, error: unknown): number {
  const { io } = ctx;
  if (isMlshipError(error)) {
    io.failure(error.toJSON());
    io.error(error.message);
    for (const line of error.details) io.info(`  ${line}`);
    if (error.hint) io.info(`${io.style('dim', 'hint:')} ${error.hint}`);
    if (ctx.global.debug && error.stack) io.info(error.stack);
    return error.exitCode;
  }
  const message = error instanceof Error ? error.message : String(error);
  io.failure({ code: 'INTERNAL', message });
  io.error(`unexpected error: ${message}`);
  if (ctx.global.debug && error instanceof Error && error.stack) io.info(error.stack);
  else io.info(io.style('dim', 'run again with --debug for the stack trace, and please report it'));
  return ExitCode.failed;
}

export function buildProgram(holder: ContextHolder): Command {
  const program = new Command('mlship');
  program
    .description(
      'From a promising model repo to a service on AWS ECS:\n' +
        '  1. bakeoff   run candidate repos in pinned CUDA containers and compare them\n' +
        '  2. wrap      turn a model into a FastAPI/Node microservice\n' +
        '  3. compose   run the whole stack locally: models, NGINX, PostgreSQL, S3, UI\n' +
        '  4. optimize  lint, rewrite and measure Dockerfiles\n' +
        '  5. deploy    push to ECR and run on ECS (or write Kubernetes manifests)',
    )
    .version(VERSION, '-V, --version', 'print the mlship version')
    .option('--json', 'print one JSON result object on stdout (logs stay on stderr)', false)
    .option('-y, --yes', 'never prompt: accept every default', false)
    .option('--debug', 'show stack traces and debug logs', false)
    .addOption(new Option('--no-color', 'disable colours (NO_COLOR is honoured too)'))
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ sortSubcommands: false, showGlobalOptions: true })
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  for (const register of COMMANDS) register(program, holder);
  return program;
}

/** Runs the CLI; resolves with the exit code (also set on process.exitCode). */
export async function main(argv: string[] = process.argv): Promise<number> {
  const cleanup = new CleanupRegistry();
  let ctx: CliContext | undefined;
  let program: Command | undefined;
  const holder: ContextHolder = {
    get() {
      if (!ctx) {
        const opts = program!.opts<GlobalOptions>();
        ctx = createContext(
          { json: opts.json, yes: opts.yes, debug: opts.debug, color: opts.color },
          cleanup,
        );
      }
      return ctx;
    },
  };

  // `mlship ... | head`: the reader went away; that is not an error.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(ExitCode.ok);
      throw e;
    });
  }
  const uninstall = installSignalHandlers(
    process,
    cleanup,
    (line) => process.stderr.write(`${line}\n`),
    (code) => process.exit(code),
  );

  let code: number = ExitCode.ok;
  try {
    program = buildProgram(holder);
    await program.parseAsync(argv);
    code = typeof process.exitCode === 'number' ? process.exitCode : ExitCode.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      code =
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        error.code === 'commander.help'
          ? ExitCode.ok
          : error.exitCode === 0
            ? ExitCode.ok
            : ExitCode.usage;
    } else {
      code = renderError(holder.get(), error);
    }
  } finally {
    uninstall();
  }
  process.exitCode = code;
  return code;
}
