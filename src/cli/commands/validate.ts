import path from 'node:path';
import type { Command } from 'commander';
import type { Register } from '../context.js';
import { examples } from '../examples.js';

export const registerValidate: Register = (program: Command, holder) => {
  program
    .command('validate')
    .description('check mlship.yaml and report every problem with file:line:column (exit 2 when broken)')
    .argument('[file]', 'config file', 'mlship.yaml')
    .addHelpText(
      'after',
      examples([
        ['mlship validate', 'check ./mlship.yaml'],
        ['mlship validate ci/mlship.yaml --json', 'machine-readable problems, for editors and CI'],
      ]),
    )
    .action(async (file: string) => {
      const ctx = holder.get();
      const { loadProject } = await import('../../config/load.js');
      const rel = path.relative(ctx.cwd, path.resolve(ctx.cwd, file)) || file;
      const project = await loadProject(rel);
      const services = Object.keys(project.services);
      ctx.io.result(
        { ok: true, file: rel, name: project.name, services },
        `${rel}: valid (project ${project.name}, ${services.length} service${services.length === 1 ? '' : 's'})`,
      );
    });
};
