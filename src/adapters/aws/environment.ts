// The machine's AWS configuration as the SDK sees it: the profile's region from the
// shared config files, and who the credentials are (the SDK's standard chain: env,
// profiles, SSO, container and instance roles; then STS GetCallerIdentity). Only the
// account and ARN ever leave this file: keys and tokens are never read by mlship.

import type { AwsEnvironment, AwsIdentity } from '../../core/aws/deps.js';

/** Bounded: an instance-metadata probe on a laptop must not hang a command. */
const IDENTITY_TIMEOUT_MS = 5000;

async function profileRegion(profile: string | undefined): Promise<string | undefined> {
  // The files the SDK reads (AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE honoured).
  const { loadSharedConfigFiles } = await import('@smithy/shared-ini-file-loader');
  try {
    const files = await loadSharedConfigFiles();
    const name = profile ?? 'default';
    return files.configFile[name]?.region ?? files.credentialsFile[name]?.region ?? undefined;
  } catch {
    return undefined;
  }
}

async function identity(target: {
  region: string;
  profile?: string;
  endpointUrl?: string;
}): Promise<AwsIdentity> {
  const [{ STSClient, GetCallerIdentityCommand }, { fromNodeProviderChain }] = await Promise.all([
    import('@aws-sdk/client-sts'),
    import('@aws-sdk/credential-providers'),
  ]);
  const client = new STSClient({
    region: target.region,
    ...(target.endpointUrl ? { endpoint: target.endpointUrl } : {}),
    maxAttempts: 2,
    credentials: fromNodeProviderChain({
      ...(target.profile ? { profile: target.profile } : {}),
      timeout: 1000,
      maxRetries: 0,
    }),
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      client.send(new GetCallerIdentityCommand({})),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${IDENTITY_TIMEOUT_MS / 1000} s`)),
          IDENTITY_TIMEOUT_MS,
        );
      }),
    ]);
    if (!r.Account) return { ok: false, reason: 'STS returned no account' };
    return { ok: true, account: r.Account, arn: r.Arn ?? '' };
  } catch (e) {
    // SDK messages name the providers tried and the error, never the secret values.
    const err = e as { name?: string; message?: string };
    const first = (err.message ?? String(e)).split('\n')[0]!.slice(0, 200);
    return { ok: false, reason: err.name && err.name !== 'Error' ? `${err.name}: ${first}` : first };
  } finally {
    if (timer) clearTimeout(timer);
    client.destroy();
  }
}

export function createAwsEnvironment(env: Record<string, string | undefined> = process.env): AwsEnvironment {
  return { env, profileRegion, identity };
}
