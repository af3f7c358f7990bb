// moto in server mode for the deploy benchmarks (run.mjs, weights.mjs): a free port, AWS's
// managed policies loaded (the execution role attaches AmazonECSTaskExecutionRolePolicy, as
// on AWS), ready when its API answers; and the environment the CLI runs with against it.
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

/** Starts moto on `host` (0.0.0.0 when containers must reach it); `{ moto, endpoint, env }`. */
export async function startMoto(host = '127.0.0.1') {
  const port = await new Promise((resolve) => {
    const srv = createServer().listen(0, host, () => {
      const p = srv.address().port;
      srv.close(() => resolve(p));
    });
  });
  const moto = spawn(path.resolve('.venv/bin/moto_server'), ['-H', host, '-p', String(port)], {
    stdio: 'ignore',
    env: { ...process.env, MOTO_IAM_LOAD_MANAGED_POLICIES: 'true' },
  });
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${endpoint}/moto-api/`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const env = {
    ...process.env,
    CI: 'true',
    AWS_ACCESS_KEY_ID: 'AKIAMLSHIPBENCHKEY00',
    AWS_SECRET_ACCESS_KEY: 'mlship-bench-secret',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  return { moto, endpoint, env };
}
