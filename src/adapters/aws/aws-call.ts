// AWS SDK errors → typed mlship errors with a hint; credentials never appear in a message.

import { CredentialsError, OperationFailedError } from '../../io/errors.js';

function translate(e: unknown, what: string): Error {
  const err = e as { name?: string; message?: string };
  const name = err.name ?? '';
  if (
    /CredentialsProviderError|ExpiredToken|UnrecognizedClientException|InvalidClientTokenId|AuthFailure/.test(
      name,
    )
  ) {
    return new CredentialsError(
      `AWS refused or could not find credentials while trying to ${what} (${name})`,
    );
  }
  if (/AccessDenied/.test(name)) {
    return new OperationFailedError('AWS_ACCESS_DENIED', `not allowed to ${what}: ${err.message ?? name}`, {
      hint: 'the credentials in use lack this permission; see docs/deploy.md for the IAM actions mlship uses',
    });
  }
  return new OperationFailedError('AWS_ERROR', `${what} failed: ${name}: ${err.message ?? ''}`.trim());
}

export async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw translate(e, what);
  }
}
