// `mlship predict INPUT --service NAME|URL --out OUT`: a file through a service's /predict,
// without a queue (core/jobs/predict.ts).

import path from 'node:path';
import type { Command } from 'commander';
import type { Register } from '../context.js';
import { examples } from '../examples.js';
import { progressPrinter } from './jobs.js';

export const registerPredict: Register = (program: Command, holder) => {
  program
    .command('predict')
    .description('send every item of a JSONL or CSV file to a service over HTTP, results in input order')
    .argument('<input>', 'one JSON input per line (.jsonl), or a CSV file with a header')
    .requiredOption(
      '--service <name|url>',
      "a service of mlship.yaml (through the local stack's proxy), or its URL",
    )
    .requiredOption('-o, --out <file>', 'results (JSONL, input order); failures go to <out>.failures.jsonl')
    .option('-f, --file <path>', 'project config (for a service name)', 'mlship.yaml')
    .option('--concurrency <n>', 'requests in flight at once', '8')
    .option('--attempts <n>', 'tries of one item on 503 or a dropped connection', '5')
    .option('--timeout <seconds>', 'of one request', '60')
    .addHelpText(
      'after',
      examples([
        ['mlship predict inputs.jsonl --service iris --out preds.jsonl', 'through the local stack'],
        ['mlship predict rows.csv --service http://127.0.0.1:8080 --out preds.jsonl', 'any mlship service'],
      ]),
    )
    .action(
      async (
        input: string,
        flags: {
          service: string;
          out: string;
          file: string;
          concurrency: string;
          attempts: string;
          timeout: string;
        },
      ) => {
        const ctx = holder.get();
        const [{ predictFile }, { serviceUrl }, { realClock }] = await Promise.all([
          import('../../core/jobs/predict.js'),
          import('../../core/jobs/predict-url.js'),
          import('../../io/clock.js'),
        ]);
        const url = await serviceUrl(flags.service, path.resolve(ctx.cwd, flags.file));
        const r = await predictFile(
          {
            fetch,
            clock: realClock,
            log: (l) => ctx.io.info(l),
            ...(ctx.io.json ? {} : { progress: progressPrinter(ctx) }),
          },
          {
            file: path.resolve(ctx.cwd, input),
            url,
            out: path.resolve(ctx.cwd, flags.out),
            concurrency: Number(flags.concurrency),
            attempts: Number(flags.attempts),
            timeoutSeconds: Number(flags.timeout),
          },
        );
        ctx.io.result(
          { ok: r.failed === 0, ...r },
          `${r.out}: ${r.done} of ${r.items} item(s) in ${r.seconds} s${r.resumed ? ` (${r.resumed} from an earlier run)` : ''}, ${r.retries} retried request(s)${r.failed ? `; ${r.failed} failed: ${r.failuresFile}` : ''}`,
        );
        if (r.failed) process.exitCode = 1;
      },
    );
};
