import path from 'node:path';
import type { Command } from 'commander';
import type { K8sDeployResult } from '../../core/deploy/k8s.js';
import type { IoHost } from '../../io/io-host.js';
import type { ContextHolder } from '../context.js';
import { examples } from '../examples.js';

interface K8sFlags {
  file: string;
  out?: string;
  namespace?: string;
  tag?: string;
  registry?: string;
  weightsUrlPrefix?: string;
  force: boolean;
}

function render(io: IoHost, r: K8sDeployResult, cwd: string): string {
  return [
    `manifests for stack ${r.stack} in namespace ${r.namespace} (nothing was sent to a cluster):`,
    ...r.plan.map((p) => `  + ${p}`),
    '',
    ...(r.warnings.length
      ? [
          `${r.warnings.length} thing(s) not carried over as they are:`,
          ...r.warnings.map(
            (w) =>
              `  ${w.file}:${w.line}:${w.column} ${w.path}: ${w.message}${w.fix ? io.style('dim', ` (fix: ${w.fix})`) : ''}`,
          ),
          '',
        ]
      : []),
    `wrote ${r.written.map((f) => path.relative(cwd, f) || f).join(', ')}; apply with kubectl apply -f ${path.relative(cwd, r.written[0]!) || r.written[0]}`,
  ].join('\n');
}

export function addK8sCommand(deploy: Command, holder: ContextHolder): void {
  deploy
    .command('k8s')
    .description(
      'translate the stack into Kubernetes manifests (Deployments, Services, autoscalers, GPU limits, probes)',
    )
    .option('-f, --file <path>', 'mlship.yaml or a compose file', 'mlship.yaml')
    .option('-o, --out <dir>', 'where to write manifests.yaml (default: deploy/k8s beside the stack file)')
    .option('--namespace <name>', 'namespace of every object (default: the stack name)')
    .option('--tag <tag>', 'tag of the images mlship builds (default: the git commit)')
    .option('--registry <host>', 'registry the built images are pushed to (prefixes their names)')
    .option(
      '--weights-url-prefix <url>',
      "where the models' local weights files are uploaded (s3://bucket/prefix or https://…): each pod downloads its own at start-up",
    )
    .option('--force', 'write into a folder mlship did not create', false)
    .addHelpText(
      'after',
      examples([
        ['mlship deploy k8s', 'deploy/k8s/manifests.yaml for mlship.yaml'],
        ['mlship deploy k8s -f compose.yaml --namespace ml', 'from a compose file, into namespace ml'],
        ['mlship deploy k8s --registry ghcr.io/acme --tag v1', 'name the pushed images'],
        ['mlship deploy k8s --json | jq .requiredSecretKeys', 'the keys the Secret must hold'],
      ]),
    )
    .action(async (flags: K8sFlags) => {
      const ctx = holder.get();
      const { deployK8s } = await import('../../core/deploy/k8s.js');
      const file = path.resolve(ctx.cwd, flags.file);
      const { resolveImageTag } = await import('../image-tag.js');
      const tag = await resolveImageTag(ctx.io, path.dirname(file), flags.tag, false);
      const r = await deployK8s({
        file,
        imageTag: tag,
        force: flags.force,
        ...(flags.out ? { outDir: path.resolve(ctx.cwd, flags.out) } : {}),
        ...(flags.namespace ? { namespace: flags.namespace } : {}),
        ...(flags.registry ? { registry: flags.registry } : {}),
        ...(flags.weightsUrlPrefix ? { weightsUrlPrefix: flags.weightsUrlPrefix } : {}),
      });
      ctx.io.result(
        {
          ok: true,
          stack: r.stack,
          namespace: r.namespace,
          outDir: r.outDir,
          written: r.written,
          plan: r.plan,
          secretName: r.secretName,
          requiredSecretKeys: r.requiredSecretKeys,
          warnings: r.warnings,
        },
        render(ctx.io, r, ctx.cwd),
      );
    });
}
