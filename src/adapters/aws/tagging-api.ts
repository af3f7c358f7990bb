// Resource Groups Tagging API: every resource of the region that carries a tag, for the
// scan after `deploy ecs --destroy` (what is still there, and so still billed).

import type * as TaggingSdk from '@aws-sdk/client-resource-groups-tagging-api';
import type { TaggingApi } from '../../core/deploy/aws-apis.js';
import { call } from './aws-call.js';

export function createTaggingApi(
  sdk: typeof TaggingSdk,
  client: TaggingSdk.ResourceGroupsTaggingAPIClient,
): TaggingApi {
  return {
    async resourcesTagged(key, value) {
      const found: { arn: string; tags: Record<string, string> }[] = [];
      let PaginationToken: string | undefined;
      do {
        const r = await call(`find the resources tagged ${key}=${value}`, () =>
          client.send(
            new sdk.GetResourcesCommand({ TagFilters: [{ Key: key, Values: [value] }], PaginationToken }),
          ),
        );
        for (const m of r.ResourceTagMappingList ?? []) {
          if (!m.ResourceARN) continue;
          found.push({
            arn: m.ResourceARN,
            tags: Object.fromEntries((m.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? ''])),
          });
        }
        PaginationToken = r.PaginationToken || undefined;
      } while (PaginationToken);
      return found;
    },
  };
}
