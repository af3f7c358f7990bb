// `mlship jobs submit|status|results|retry`: batch predictions through a service's queue
// worker, against the local stack (default) or AWS (--aws); only the endpoints differ.

import path from 'node:path';
import type { Command } from 'commander';
import type { JobsDeps, JobTarget } from '../../core/jobs/deps.js';
import type { CliContext, Register } from '../context.js';
import { examples } from '../examples.js';

interface TargetFlags {
  file: string;
  out?: string;
  aws: boolean;
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
}

function withTargetFlags(cmd: Command): Command {
  return cmd
    .option('-f, --file <path>', 'project config', 'mlship.yaml')
    .option('--aws', 'the deployed stack on AWS (default: the local stack of `mlship compose up`)', false)
    .option('--region <region>', 'with --aws: the AWS region (default: as `deploy ecs` resolves it)')
    .option('--account-id <id>', 'with --aws: the 12-digit account (default: from the credentials)')
    .option('--profile <name>', 'with --aws: a profile of ~/.aws/config')
    .option('--endpoint-url <url>', 'with --aws: an AWS-compatible endpoint (an emulator)');
}

/** A text bar per tenth of the way, on stderr: enough to see it move, not a flood in a CI log. */
export function progressPrinter(ctx: CliContext): JobsDeps['progress'] {
  const shown = new Map<string, number>();
  return (label, done, total) => {
    const tenth = total ? Math.floor((done / total) * 10) : 10;
    if ((shown.get(label) ?? -1) >= tenth) return;
    shown.set(label, tenth);
    ctx.io.info(`${label} [${'#'.repeat(tenth)}${'.'.repeat(10 - tenth)}] ${done}/${total}`);
  };
}

async function jobsContext(ctx: CliContext, flags: TargetFlags) {
  const file = path.resolve(ctx.cwd, flags.file);
  const [{ createJobApis }, { realClock }] = await Promise.all([
    import('../../adapters/aws/jobs-apis.js'),
    import('../../io/clock.js'),
  ]);
  let target: JobTarget;
  let apis: Awaited<ReturnType<typeof createJobApis>>;
  let project: import('../../config/schema.js').Project;
  if (!flags.aws) {
    const { localJobTarget } = await import('../../core/jobs/target.js');
    const local = await localJobTarget(file, flags.out);
    ({ target, project } = local);
    apis = await createJobApis({
      region: 'us-east-1',
      bucket: target.bucket,
      endpoints: { sqs: local.endpoints.sqs, s3: local.endpoints.s3 },
      credentials: {
        accessKeyId: local.endpoints.accessKeyId,
        secretAccessKey: local.endpoints.secretAccessKey,
      },
    });
  } else {
    const [{ loadProject }, { requireRegion, requireAccount }, t, { resolveAwsFor }] = await Promise.all([
      import('../../config/load.js'),
      import('../../core/aws/aws-config.js'),
      import('../../core/jobs/target.js'),
      import('../deployed-stack.js'),
    ]);
    project = await loadProject(file);
    const aws = await resolveAwsFor(ctx, flags, project.aws, 'required');
    const region = requireRegion(aws);
    target = t.awsJobTarget(project, region, requireAccount(aws));
    apis = await createJobApis({
      region,
      bucket: target.bucket,
      ...(aws.profile ? { profile: aws.profile } : {}),
      ...(aws.endpointUrl ? { endpoints: { sqs: aws.endpointUrl, s3: aws.endpointUrl } } : {}),
    });
  }
  const deps: JobsDeps = {
    queue: apis.queue,
    store: apis.store,
    clock: realClock,
    log: (line) => ctx.io.info(line),
    ...(ctx.io.json ? {} : { progress: progressPrinter(ctx) }),
  };
  return { deps, target, project, file, done: () => apis.destroy() };
}

function statusText(s: import('../../core/jobs/jobs.js').JobStatus): string {
  return [
    `job ${s.job} (${s.service}, ${s.where}): ${s.complete ? 'complete' : 'running'}`,
    `  items ${s.items}: ${s.done} done, ${s.failed} failed${s.deadLettered ? ` (${s.deadLettered} in the dead-letter queue: \`mlship jobs retry ${s.job}\`)` : ''}, ${s.retrying} retrying, ${s.pending} pending`,
    `  queue: ${s.queue.visible} waiting, ${s.queue.inFlight} being worked on, ${s.queue.deadLetter} dead letters`,
    ...(s.ratePerSecond
      ? [`  rate ${s.ratePerSecond} items/s${s.etaSeconds ? `, about ${s.etaSeconds} s to go` : ''}`]
      : []),
  ].join('\n');
}

export const registerJobs: Register = (program: Command, holder) => {
  const jobs = program
    .command('jobs')
    .description("batch predictions through a service's queue worker (locally, or on AWS with --aws)");

  withTargetFlags(jobs.command('submit'))
    .description(
      "send every item of a JSONL or CSV file to the service's queue (again: only items without a result)",
    )
    .argument('<input>', 'one JSON input per line (.jsonl), or a CSV file with a header')
    .requiredOption('--service <name>', 'the service whose worker predicts')
    .option('--job <id>', 'the job id (default: from the service and the items, so a re-run resumes)')
    .option('--wait', 'wait until every item has a result or failed for good', false)
    .option('--timeout <seconds>', 'with --wait: how long', '3600')
    .option('-o, --out <file>', 'with --wait: write the results here (JSONL, input order)')
    .addHelpText(
      'after',
      examples([
        ['mlship jobs submit inputs.jsonl --service iris', 'prints the job id'],
        ['mlship jobs submit rows.csv --service iris --wait --out results.jsonl', 'and collects the results'],
        ['mlship jobs submit inputs.jsonl --service iris --aws', 'the same on the deployed stack'],
      ]),
    )
    .action(
      async (
        input: string,
        flags: TargetFlags & { service: string; job?: string; wait: boolean; timeout: string; out?: string },
      ) => {
        const ctx = holder.get();
        const { submitJob, waitForJob, jobResults } = await import('../../core/jobs/jobs.js');
        const { checkWorkerService } = await import('../../core/jobs/target.js');
        const { out, ...targetFlags } = flags;
        const j = await jobsContext(ctx, targetFlags);
        try {
          checkWorkerService(j.project, flags.service, flags.file);
          const submitted = await submitJob(j.deps, j.target, {
            file: path.resolve(ctx.cwd, input),
            service: flags.service,
            ...(flags.job ? { job: flags.job } : {}),
          });
          const lines = [
            `job ${submitted.job}: ${submitted.sent} item(s) sent to ${j.target.queueName(flags.service)} (${submitted.where})${submitted.alreadyDone ? `, ${submitted.alreadyDone} already done` : ''}${submitted.byKey ? `, ${submitted.byKey} by object key (over the message size limit)` : ''}`,
          ];
          if (!flags.wait) {
            lines.push(`follow it: mlship jobs status ${submitted.job}${flags.aws ? ' --aws' : ''}`);
            ctx.io.result({ ok: true, ...submitted }, lines.join('\n'));
            return;
          }
          const status = await waitForJob(j.deps, j.target, submitted.job, {
            timeoutSeconds: Number(flags.timeout),
          });
          const results = out
            ? await jobResults(j.deps, submitted.job, path.resolve(ctx.cwd, out))
            : undefined;
          lines.push(statusText(status), ...(results ? [`results: ${results.out}`] : []));
          ctx.io.result(
            { ok: status.failed === 0, ...submitted, status, ...(results ? { results } : {}) },
            lines.join('\n'),
          );
          if (status.failed) process.exitCode = 1;
        } finally {
          j.done();
        }
      },
    );

  withTargetFlags(jobs.command('status'))
    .description('items done, failed, retrying, in the dead-letter queue; rate and time to go')
    .argument('<job>', 'the job id `jobs submit` printed')
    .action(async (job: string, flags: TargetFlags) => {
      const ctx = holder.get();
      const { jobStatus } = await import('../../core/jobs/jobs.js');
      const j = await jobsContext(ctx, flags);
      try {
        const s = await jobStatus(j.deps, j.target, job);
        ctx.io.result({ ok: true, ...s }, statusText(s));
      } finally {
        j.done();
      }
    });

  withTargetFlags(jobs.command('results'))
    .description('write one line per item in input order: its output, or its failure with the reason')
    .argument('<job>', 'the job id')
    .requiredOption('-o, --out <file>', 'where to write them (JSONL)')
    .action(async (job: string, flags: TargetFlags & { out: string }) => {
      const ctx = holder.get();
      const { jobResults } = await import('../../core/jobs/jobs.js');
      const { out, ...targetFlags } = flags;
      const j = await jobsContext(ctx, targetFlags);
      try {
        const r = await jobResults(j.deps, job, path.resolve(ctx.cwd, out));
        const text = [
          `${r.out}: ${r.done} result(s), ${r.failed} failure(s), ${r.pending} pending, of ${r.items}`,
          ...r.failures.map(
            (f) =>
              `  item ${f.item}: ${f.type}: ${f.message} (${f.attempts} attempt(s)${f.deadLetter ? ', in the dead-letter queue' : ''})`,
          ),
        ].join('\n');
        ctx.io.result({ ok: true, ...r }, text);
      } finally {
        j.done();
      }
    });

  withTargetFlags(jobs.command('retry'))
    .description("move the job's items from the dead-letter queue back to its queue")
    .argument('<job>', 'the job id')
    .action(async (job: string, flags: TargetFlags) => {
      const ctx = holder.get();
      const { retryJob } = await import('../../core/jobs/jobs.js');
      const j = await jobsContext(ctx, flags);
      try {
        const r = await retryJob(j.deps, j.target, job);
        ctx.io.result(
          { ok: true, ...r },
          `job ${r.job}: ${r.moved} item(s) back in the queue${r.leftForOtherJobs ? ` (${r.leftForOtherJobs} dead letter(s) of other jobs left alone)` : ''}`,
        );
      } finally {
        j.done();
      }
    });
};
