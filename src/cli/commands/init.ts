import path from 'node:path';
import { type Command, Option } from 'commander';
import type { Register } from '../context.js';
import { examples } from '../examples.js';

interface InitFlags {
  name?: string;
  service?: string;
  entry?: string;
  model?: string;
  runtime?: 'python' | 'node';
  gpu?: boolean;
  region?: string;
  pythonImage?: string;
  with?: string;
  force: boolean;
  file: string;
}

export const registerInit: Register = (program: Command, holder) => {
  program
    .command('init')
    .description('create mlship.yaml (asks questions on a terminal; flags and --yes for scripts)')
    .option('-f, --file <path>', 'file to write', 'mlship.yaml')
    .option('--name <name>', 'project name (default: the directory name)')
    .option('--service <name>', 'first model service name (default: model)')
    .option('--entry <file:function>', 'Python callable that predicts, e.g. predict.py:predict')
    .option('--model <file>', 'serialized model file (.joblib/.pkl, .onnx, .pt)')
    .addOption(new Option('--runtime <runtime>', 'serving runtime').choices(['python', 'node']))
    .option('--gpu', 'the service needs a GPU')
    .option('--region <region>', 'AWS region for deploys')
    .option(
      '--python-image <image>',
      'base image override for Python services (mirrors, air-gapped machines)',
    )
    .option(
      '--with <addons>',
      'stack add-ons for `mlship compose`: proxy,frontend,database,storage,monitoring',
    )
    .option('--force', 'overwrite an existing file', false)
    .addHelpText(
      'after',
      examples([
        ['mlship init', 'answer a few questions'],
        ['mlship init --yes --name demo --entry predict.py:predict', 'no questions, for scripts'],
        [
          'mlship init --yes --python-image registry.local/python:3.11-slim',
          'air-gapped: use a mirrored base image',
        ],
      ]),
    )
    .action(async (flags: InitFlags) => {
      const ctx = holder.get();
      const [{ runInit }, { writeNewFile }] = await Promise.all([
        import('../../core/init/init.js'),
        import('../../io/files.js'),
      ]);
      const file = path.resolve(ctx.cwd, flags.file);
      const result = await runInit(
        {
          dir: path.dirname(file),
          file,
          force: flags.force,
          ...(flags.name !== undefined ? { name: flags.name } : {}),
          ...(flags.service !== undefined ? { service: flags.service } : {}),
          ...(flags.entry !== undefined ? { entry: flags.entry } : {}),
          ...(flags.model !== undefined ? { model: flags.model } : {}),
          ...(flags.runtime !== undefined ? { runtime: flags.runtime } : {}),
          ...(flags.gpu !== undefined
            ? { gpu: flags.gpu }
            : ctx.io.prompter.interactive
              ? {}
              : { gpu: false }),
          ...(flags.region !== undefined ? { region: flags.region } : {}),
          ...(flags.pythonImage !== undefined ? { pythonImage: flags.pythonImage } : {}),
          ...(flags.with !== undefined
            ? {
                addons: flags.with
                  .split(',')
                  .map((a) => a.trim())
                  .filter(Boolean),
              }
            : {}),
        },
        { prompter: ctx.io.prompter, writeNewFile },
      );
      const rel = path.relative(ctx.cwd, result.file) || result.file;
      ctx.io.result(
        { ok: true, file: result.file, project: result.project },
        `wrote ${rel}\nnext: mlship validate ${rel}`,
      );
    });
};
