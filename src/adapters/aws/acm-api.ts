// ACM: whether a certificate for the HTTPS listeners is there and issued.

import type * as AcmSdk from '@aws-sdk/client-acm';
import type { AcmApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createAcmApi(acmSdk: typeof AcmSdk, acmClient: AcmSdk.ACMClient): AcmApi {
  return {
    async certificateStatus(arn) {
      return call(`look up certificate ${arn}`, async () => {
        try {
          const r = await acmClient.send(new acmSdk.DescribeCertificateCommand({ CertificateArn: arn }));
          return r.Certificate?.Status ?? 'UNKNOWN';
        } catch (e) {
          if ((e as { name?: string }).name === 'ResourceNotFoundException') return undefined;
          throw e;
        }
      });
    },
  };
}
