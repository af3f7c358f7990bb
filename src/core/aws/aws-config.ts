// How AWS is configured, decided in one place for every command that talks to AWS
// (deploy ecs, data, jobs, rollout) and for `mlship doctor`, which prints the same
// sources: the region from --region, mlship.yaml, then AWS_REGION, AWS_DEFAULT_REGION
// and the profile's config file, as the AWS CLI reads them; the account from
// --account-id or mlship.yaml, else from STS GetCallerIdentity when credentials
// resolve; a given account that differs from the credentials' own is refused before
// anything is built or created.

import { CredentialsError, UsageError } from '../../io/errors.js';
import type { AwsEnvironment, AwsIdentity } from './deps.js';

/** The `aws:` section of mlship.yaml, as far as resolution needs it. */
export interface AwsSettings {
  region?: string;
  account_id?: string;
  profile?: string;
}

export interface AwsFlags {
  region?: string;
  accountId?: string;
  profile?: string;
  endpointUrl?: string;
}

/** The AWS flags a command was given, without the ones left unset (commander gives undefined). */
export function awsFlagsOf(flags: { [K in keyof AwsFlags]?: string | undefined }): AwsFlags {
  return Object.fromEntries(Object.entries(flags).filter(([, v]) => v)) as AwsFlags;
}

export interface ResolvedAws {
  region?: string;
  /** Where the region came from, e.g. "AWS_REGION" or "profile ml in ~/.aws/config". */
  regionSource?: string;
  profile?: string;
  profileSource?: string;
  accountId?: string;
  accountSource?: string;
  endpointUrl?: string;
  /** Present when credentials were asked for. */
  identity?: AwsIdentity;
}

const REGION = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/;

async function resolveRegion(
  flags: AwsFlags,
  settings: AwsSettings | undefined,
  profile: string | undefined,
  env: AwsEnvironment,
): Promise<Pick<ResolvedAws, 'region' | 'regionSource'>> {
  const candidates: [string | undefined, string][] = [
    [flags.region, '--region'],
    [settings?.region, 'aws.region in mlship.yaml'],
    [env.env.AWS_REGION, 'AWS_REGION'],
    [env.env.AWS_DEFAULT_REGION, 'AWS_DEFAULT_REGION'],
  ];
  for (const [value, source] of candidates) {
    if (!value) continue;
    if (!REGION.test(value)) {
      throw new UsageError(`${source} is "${value}", which is not an AWS region`, {
        hint: 'a region looks like eu-west-1 or us-east-1 (aws ec2 describe-regions lists them)',
      });
    }
    return { region: value, regionSource: source };
  }
  const fromProfile = await env.profileRegion(profile);
  return fromProfile
    ? { region: fromProfile, regionSource: `profile ${profile ?? 'default'} in ~/.aws/config` }
    : {};
}

/**
 * Resolves region, profile and account. With `credentials: 'required'` (anything that will
 * call AWS), the credentials must resolve and belong to the account the stack names.
 */
export async function resolveAws(
  flags: AwsFlags,
  settings: AwsSettings | undefined,
  env: AwsEnvironment,
  options: { credentials: 'required' | 'if-needed' | 'report' },
): Promise<ResolvedAws> {
  const [profile, profileSource] = flags.profile
    ? [flags.profile, '--profile']
    : settings?.profile
      ? [settings.profile, 'aws.profile in mlship.yaml']
      : env.env.AWS_PROFILE
        ? [env.env.AWS_PROFILE, 'AWS_PROFILE']
        : [undefined, undefined];
  const out: ResolvedAws = {
    ...(profile ? { profile, profileSource } : {}),
    ...(await resolveRegion(flags, settings, profile, env)),
    ...(flags.endpointUrl ? { endpointUrl: flags.endpointUrl } : {}),
  };
  const given = flags.accountId
    ? { accountId: flags.accountId, accountSource: '--account-id' }
    : settings?.account_id
      ? { accountId: settings.account_id, accountSource: 'aws.account_id in mlship.yaml' }
      : undefined;
  if (given) Object.assign(out, given);
  const ask =
    options.credentials === 'required' ||
    options.credentials === 'report' ||
    (options.credentials === 'if-needed' && !given);
  if (!ask || !out.region) return out;
  out.identity = await env.identity({
    region: out.region,
    ...(profile ? { profile } : {}),
    ...(flags.endpointUrl ? { endpointUrl: flags.endpointUrl } : {}),
  });
  if (out.identity.ok && !given) {
    out.accountId = out.identity.account;
    out.accountSource = 'STS GetCallerIdentity (the credentials in use)';
  }
  return out;
}

/** The region, or a usage error that lists every place it can come from. */
export function requireRegion(r: ResolvedAws): string {
  if (r.region) return r.region;
  throw new UsageError('no AWS region', {
    hint: 'pass --region, set aws.region in mlship.yaml, export AWS_REGION, or set a region for the profile in ~/.aws/config',
  });
}

/** The account id, or why there is none (offline plans need --account-id). */
export function requireAccount(r: ResolvedAws): string {
  if (r.accountId) return r.accountId;
  const why = r.identity && !r.identity.ok ? ` (no credentials to ask STS: ${r.identity.reason})` : '';
  throw new UsageError(`no AWS account id${why}`, {
    hint: 'pass --account-id, set aws.account_id in mlship.yaml (quoted, 12 digits), or configure credentials so mlship reads it from STS',
  });
}

/** Credentials that resolve and belong to the account the stack names; throws otherwise. */
export function requireIdentity(r: ResolvedAws): { account: string; arn: string } {
  const id = r.identity;
  if (!id?.ok) {
    throw new CredentialsError(
      `no usable AWS credentials${id && !id.ok ? `: ${id.reason}` : ''}`,
      `configure credentials before anything is built: aws configure, aws sso login${r.profile ? ` --profile ${r.profile}` : ''}, or AWS_PROFILE (mlship doctor shows what it finds)`,
    );
  }
  if (r.accountId && r.accountId !== id.account) {
    throw new UsageError(
      `the credentials in use belong to account ${id.account}, but ${r.accountSource} says ${r.accountId}`,
      {
        hint: `deploy with credentials of account ${r.accountId} (another --profile), or correct ${r.accountSource}`,
      },
    );
  }
  return { account: id.account, arn: id.arn };
}

/** The resolved settings and their sources, for --json results (no identity, no secret). */
export function awsSummary(r: ResolvedAws): Omit<ResolvedAws, 'identity'> {
  const { identity: _identity, ...rest } = r;
  return rest;
}

/** One line per setting with its source, as doctor and `deploy ecs` print them. */
export function describeAws(r: ResolvedAws): string[] {
  return [
    `region ${r.region ?? 'not set'}${r.regionSource ? ` (from ${r.regionSource})` : ''}`,
    ...(r.profile ? [`profile ${r.profile} (from ${r.profileSource})`] : []),
    ...(r.accountId ? [`account ${r.accountId} (from ${r.accountSource})`] : []),
    ...(r.endpointUrl ? [`endpoint ${r.endpointUrl} (--endpoint-url)`] : []),
  ];
}
