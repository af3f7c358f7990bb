// The tags every resource mlship creates carries: mlship:managed (what mlship may change or
// delete) and the deploy's own (mlship:stack, by which a budget filters costs and a tag scan
// after --destroy finds what is left). Each AWS API spells a tag its own way.

export type Tags = Record<string, string>;

const all = (extra: Tags): Tags => ({ 'mlship:managed': 'true', ...extra });

/** EC2, ELB, ECR, Auto Scaling, IAM, RDS: [{ Key, Value }]. */
export const keyValueTags = (extra: Tags) =>
  Object.entries(all(extra)).map(([Key, Value]) => ({ Key, Value }));

/** ECS: [{ key, value }]. */
export const ecsTags = (extra: Tags) => Object.entries(all(extra)).map(([key, value]) => ({ key, value }));

/** CloudWatch Logs: { key: value }. */
export const mapTags = (extra: Tags): Tags => all(extra);
