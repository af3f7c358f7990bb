// Resolves AWS credentials and region through the SDK's standard chain (env,
// profiles, SSO, container and instance roles). Only *whether* they resolved is
// ever reported: keys and tokens never leave this function.

export interface AwsProbeResult {
  credentials: 'resolved' | 'missing';
  /** Why resolution failed, without any secret in it. */
  reason?: string;
  region?: string;
  profile?: string;
}

export async function probeAws(
  options: { profile?: string; region?: string; timeoutMs?: number } = {},
): Promise<AwsProbeResult> {
  const { fromNodeProviderChain } = await import('@aws-sdk/credential-providers');
  const profile = options.profile ?? process.env.AWS_PROFILE;
  let region = options.region;
  if (!region) {
    // The client resolves the region exactly as deploy will (env, then profile files).
    const { ECRClient } = await import('@aws-sdk/client-ecr');
    const client = new ECRClient(profile ? { profile } : {});
    try {
      region = await client.config.region();
    } catch {
      region = undefined;
    } finally {
      client.destroy();
    }
  }
  const timeoutMs = options.timeoutMs ?? 3000;
  const provider = fromNodeProviderChain({
    ...(profile ? { profile } : {}),
    timeout: Math.min(timeoutMs, 1000),
    maxRetries: 0,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const creds = await Promise.race([
      provider(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    const ok = Boolean(creds.accessKeyId && creds.secretAccessKey);
    return {
      credentials: ok ? 'resolved' : 'missing',
      ...(region ? { region } : {}),
      ...(profile ? { profile } : {}),
    };
  } catch (e) {
    // SDK messages name the providers tried, never the secret values.
    const reason = (e as Error).message.split('\n')[0]?.slice(0, 200);
    return {
      credentials: 'missing',
      ...(reason ? { reason } : {}),
      ...(region ? { region } : {}),
      ...(profile ? { profile } : {}),
    };
  } finally {
    if (timer) clearTimeout(timer);
  }
}
