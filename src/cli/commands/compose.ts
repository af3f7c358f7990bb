import path from 'node:path';
import type { Command } from 'commander';
import type { Stack } from '../../core/stack/model.js';
import type { IoHost } from '../../io/io-host.js';
import { examples } from '../examples.js';
import type { Register } from './index.js';

function renderStack(io: IoHost, stack: Stack): string {
  const lines = [
    `stack ${stack.name} (${stack.services.length} service${stack.services.length === 1 ? '' : 's'}) from ${stack.file}`,
  ];
  for (const s of stack.services) {
    const what =
      s.image ??
      (s.build ? `build ${s.build.context}${s.build.target ? ` (target ${s.build.target})` : ''}` : '?');
    const ports = s.ports
      .map((p) => (p.published ? `${p.published}→${p.container}` : `${p.container}`))
      .join(', ');
    const extra = [
      s.gpus ? `gpu ${s.gpus}` : '',
      s.healthcheck ? 'healthcheck' : '',
      s.secretEnv.length ? `secrets: ${s.secretEnv.join(', ')}` : '',
    ].filter(Boolean);
    lines.push(
      `  ${io.style('bold', s.name.padEnd(14))} ${s.role.padEnd(9)} ${what}${ports ? `  ports ${ports}` : ''}${extra.length ? `  [${extra.join('; ')}]` : ''}`,
    );
  }
  if (stack.warnings.length) {
    lines.push(
      '',
      `${stack.warnings.length} thing${stack.warnings.length === 1 ? '' : 's'} not carried over:`,
    );
    for (const w of stack.warnings) {
      lines.push(
        `  ${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? io.style('dim', ` (fix: ${w.fix})`) : ''}`,
      );
    }
  }
  return lines.join('\n');
}

export const registerCompose: Register = (program: Command, holder) => {
  const compose = program
    .command('compose')
    .description('step 3: the local multi-container stack (import an existing compose file)');
  compose
    .command('import')
    .description("read a compose file into mlship's stack model; report what cannot be carried over")
    .argument('<file>', 'compose file (compose.yaml, docker-compose.yml)')
    .option('--name <name>', 'stack name (default: the compose name, or the folder name)')
    .addHelpText(
      'after',
      examples([
        ['mlship compose import docker-compose.yml', 'services, roles, ports, and warnings with file:line'],
        ['mlship compose import compose.yaml --json', 'the stack model as JSON, for tools'],
      ]),
    )
    .action(async (file: string, opts: { name?: string }) => {
      const ctx = holder.get();
      const { loadComposeStack } = await import('../../core/stack/load-stack.js');
      const rel = path.relative(ctx.cwd, path.resolve(ctx.cwd, file)) || file;
      const stack = await loadComposeStack(rel, opts.name);
      ctx.io.result({ ok: true, stack }, renderStack(ctx.io, stack));
    });
};
