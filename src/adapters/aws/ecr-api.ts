// ECR: repositories (immutable tags, scan on push, lifecycle), authorization, image lookups.

import type * as EcrSdk from '@aws-sdk/client-ecr';
import type { EcrApi } from '../../core/deploy/aws-apis.js';
import { CredentialsError } from '../../io/errors.js';
import { call } from './aws-call.js';
import { keyValueTags, type Tags } from './tags.js';

export function createEcrApi(ecrSdk: typeof EcrSdk, ecrClient: EcrSdk.ECRClient, tags: Tags = {}): EcrApi {
  return {
    async ensureRepository(name, keepImages, movingTag) {
      const existing = await call(`describe ECR repository ${name}`, async () => {
        try {
          const r = await ecrClient.send(new ecrSdk.DescribeRepositoriesCommand({ repositoryNames: [name] }));
          return r.repositories?.[0];
        } catch (e) {
          if ((e as { name?: string }).name === 'RepositoryNotFoundException') return undefined;
          throw e;
        }
      });
      const exclusion = movingTag ? [{ filterType: 'WILDCARD' as const, filter: movingTag }] : undefined;
      if (existing?.repositoryUri) {
        const excluded = (existing.imageTagMutabilityExclusionFilters ?? []).some(
          (f) => f.filter === movingTag,
        );
        if (exclusion && existing.imageTagMutability !== 'MUTABLE' && !excluded) {
          await call(`let ${movingTag} move in ${name}`, () =>
            ecrClient.send(
              new ecrSdk.PutImageTagMutabilityCommand({
                repositoryName: name,
                imageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
                imageTagMutabilityExclusionFilters: [
                  ...(existing.imageTagMutabilityExclusionFilters ?? []),
                  ...exclusion,
                ],
              }),
            ),
          );
        }
        return { uri: existing.repositoryUri, created: false };
      }
      const created = await call(`create ECR repository ${name}`, () =>
        ecrClient.send(
          new ecrSdk.CreateRepositoryCommand({
            repositoryName: name,
            // Commit tags never move; only the moving tag, when asked for, may.
            imageTagMutability: exclusion ? 'IMMUTABLE_WITH_EXCLUSION' : 'IMMUTABLE',
            ...(exclusion ? { imageTagMutabilityExclusionFilters: exclusion } : {}),
            imageScanningConfiguration: { scanOnPush: true },
            encryptionConfiguration: { encryptionType: 'AES256' },
            tags: keyValueTags(tags),
          }),
        ),
      );
      await call(`set the lifecycle policy of ${name}`, () =>
        ecrClient.send(
          new ecrSdk.PutLifecyclePolicyCommand({
            repositoryName: name,
            lifecyclePolicyText: JSON.stringify({
              rules: [
                {
                  rulePriority: 1,
                  description: `keep the last ${keepImages} images`,
                  selection: { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: keepImages },
                  action: { type: 'expire' },
                },
              ],
            }),
          }),
        ),
      );
      return { uri: created.repository!.repositoryUri!, created: true };
    },
    async authorization() {
      const r = await call('get an ECR authorization token', () =>
        ecrClient.send(new ecrSdk.GetAuthorizationTokenCommand({})),
      );
      const data = r.authorizationData?.[0];
      if (!data?.authorizationToken || !data.proxyEndpoint)
        throw new CredentialsError('ECR returned no authorization token');
      const [username, password] = Buffer.from(data.authorizationToken, 'base64').toString('utf8').split(':');
      return {
        username: username ?? 'AWS',
        password: password ?? '',
        serveraddress: data.proxyEndpoint.replace(/^https?:\/\//, ''),
      };
    },
    async imageDigest(repository, tag) {
      return call(`look up ${repository}:${tag}`, async () => {
        try {
          const r = await ecrClient.send(
            new ecrSdk.DescribeImagesCommand({ repositoryName: repository, imageIds: [{ imageTag: tag }] }),
          );
          return r.imageDetails?.[0]?.imageDigest;
        } catch (e) {
          if (/ImageNotFoundException|RepositoryNotFoundException/.test((e as { name?: string }).name ?? ''))
            return undefined;
          throw e;
        }
      });
    },
  };
}
