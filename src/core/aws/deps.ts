// What resolving the AWS configuration reads from the machine: environment variables,
// the profile's region in the shared config files, and who the credentials are (STS).
// Implemented by adapters/aws/environment.ts; tests pass their own.

export type AwsIdentity = { ok: true; account: string; arn: string } | { ok: false; reason: string };

/** What resolution reads from the machine (implemented in adapters/aws/environment.ts). */
export interface AwsEnvironment {
  env: Record<string, string | undefined>;
  /** The region of `profile` (default: "default") in the shared config files, if set there. */
  profileRegion(profile: string | undefined): Promise<string | undefined>;
  /** Credentials through the SDK chain, then STS GetCallerIdentity; never a secret in `reason`. */
  identity(target: { region: string; profile?: string; endpointUrl?: string }): Promise<AwsIdentity>;
}
