// IAM: whether the roles task definitions name exist.

import type * as IamSdk from '@aws-sdk/client-iam';
import type { IamApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createIamApi(iamSdk: typeof IamSdk, iamClient: IamSdk.IAMClient): IamApi {
  return {
    async roleExists(name) {
      return call(`look up IAM role ${name}`, async () => {
        try {
          await iamClient.send(new iamSdk.GetRoleCommand({ RoleName: name }));
          return true;
        } catch (e) {
          if ((e as { name?: string }).name === 'NoSuchEntityException') return false;
          throw e;
        }
      });
    },
  };
}
