// How AWS is configured: one resolution for deploy and doctor, in the AWS CLI's order,
// with the account from STS when none is given and a mismatch refused.

import { describe, expect, it } from 'vitest';
import {
  describeAws,
  requireAccount,
  requireIdentity,
  requireRegion,
  resolveAws,
} from '../../../src/core/aws/aws-config.js';
import type { AwsEnvironment, AwsIdentity } from '../../../src/core/aws/deps.js';
import { CredentialsError, UsageError } from '../../../src/io/errors.js';

function environment(
  env: Record<string, string>,
  over: { profileRegion?: Record<string, string>; identity?: AwsIdentity } = {},
): AwsEnvironment & { asked: unknown[] } {
  const asked: unknown[] = [];
  return {
    env,
    asked,
    profileRegion: async (profile) => over.profileRegion?.[profile ?? 'default'],
    identity: async (target) => {
      asked.push(target);
      if (!over.identity) throw new Error('this test declared no STS answer');
      return over.identity;
    },
  };
}

const ME: AwsIdentity = { ok: true, account: '210987654321', arn: 'arn:aws:iam::210987654321:user/dev' };

describe('AWS configuration', () => {
  it('region: --region, then mlship.yaml, then AWS_REGION, AWS_DEFAULT_REGION, then the profile', async () => {
    const env = environment(
      { AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-central-1', AWS_PROFILE: 'ml' },
      { profileRegion: { ml: 'ap-south-1' } },
    );
    const opts = { credentials: 'if-needed' as const };
    const acct = { account_id: '123456789012' };
    expect(
      await resolveAws({ region: 'us-east-2' }, { region: 'us-west-2', ...acct }, env, opts),
    ).toMatchObject({
      region: 'us-east-2',
      regionSource: '--region',
    });
    expect(await resolveAws({}, { region: 'us-west-2', ...acct }, env, opts)).toMatchObject({
      region: 'us-west-2',
      regionSource: 'aws.region in mlship.yaml',
    });
    expect(await resolveAws({}, acct, env, opts)).toMatchObject({
      region: 'eu-west-1',
      regionSource: 'AWS_REGION',
      profile: 'ml',
      profileSource: 'AWS_PROFILE',
    });
    const noAwsRegion = environment(
      { AWS_DEFAULT_REGION: 'eu-central-1' },
      { profileRegion: { default: 'ap-south-1' } },
    );
    expect(await resolveAws({}, acct, noAwsRegion, opts)).toMatchObject({
      region: 'eu-central-1',
      regionSource: 'AWS_DEFAULT_REGION',
    });
    const profileOnly = environment({}, { profileRegion: { ml: 'ap-south-1' } });
    const r = await resolveAws({ profile: 'ml' }, acct, profileOnly, opts);
    expect(r).toMatchObject({ region: 'ap-south-1', regionSource: 'profile ml in ~/.aws/config' });
    expect(describeAws(r)).toEqual([
      'region ap-south-1 (from profile ml in ~/.aws/config)',
      'profile ml (from --profile)',
      'account 123456789012 (from aws.account_id in mlship.yaml)',
    ]);
    // With an account given, an offline plan never asks STS.
    expect(profileOnly.asked).toEqual([]);
  });

  it('a malformed region is a usage error naming where it came from', async () => {
    const env = environment({ AWS_REGION: 'Europe' });
    const e = await resolveAws({}, undefined, env, { credentials: 'if-needed' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UsageError);
    expect((e as Error).message).toBe('AWS_REGION is "Europe", which is not an AWS region');
  });

  it('no region anywhere: every place it can come from is named', async () => {
    const r = await resolveAws({}, undefined, environment({}), { credentials: 'if-needed' });
    expect(() => requireRegion(r)).toThrow(UsageError);
    try {
      requireRegion(r);
    } catch (e) {
      expect((e as UsageError).hint).toMatch(/--region.*aws\.region.*AWS_REGION.*~\/\.aws\/config/);
    }
  });

  it('the account comes from STS when none is given, through the endpoint and profile in use', async () => {
    const env = environment({ AWS_REGION: 'us-east-1' }, { identity: ME });
    const r = await resolveAws({ endpointUrl: 'http://127.0.0.1:5123', profile: 'ml' }, undefined, env, {
      credentials: 'if-needed',
    });
    expect(r).toMatchObject({
      accountId: '210987654321',
      accountSource: 'STS GetCallerIdentity (the credentials in use)',
    });
    expect(env.asked).toEqual([{ region: 'us-east-1', profile: 'ml', endpointUrl: 'http://127.0.0.1:5123' }]);
  });

  it('offline (no credentials, no account): the plan asks for --account-id and says why', async () => {
    const env = environment(
      { AWS_REGION: 'us-east-1' },
      {
        identity: {
          ok: false,
          reason: 'CredentialsProviderError: Could not load credentials from any providers',
        },
      },
    );
    const r = await resolveAws({}, undefined, env, { credentials: 'if-needed' });
    expect(() => requireAccount(r)).toThrow(
      'no AWS account id (no credentials to ask STS: CredentialsProviderError: Could not load credentials from any providers)',
    );
    expect(() => requireIdentity(r)).toThrow(CredentialsError);
  });

  it('credentials of another account than the stack names are refused before anything happens', async () => {
    const env = environment({ AWS_REGION: 'us-east-1' }, { identity: ME });
    const r = await resolveAws({ accountId: '123456789012' }, undefined, env, { credentials: 'required' });
    expect(() => requireIdentity(r)).toThrow(
      'the credentials in use belong to account 210987654321, but --account-id says 123456789012',
    );
    const same = await resolveAws({ accountId: '210987654321' }, undefined, env, { credentials: 'required' });
    expect(requireIdentity(same)).toEqual({ account: '210987654321', arn: ME.arn });
  });
});
