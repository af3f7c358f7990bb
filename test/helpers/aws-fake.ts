// A fake of the AWS APIs the deploy core calls that answers only what a test declares:
// any other call throws, naming it, so a test can never pass on an answer nobody wrote
// (and a new AWS call in the code shows up as a failing test, not as `undefined`).

import type { AwsDeployApis } from '../../src/core/deploy/aws-apis.js';

type Declared = { [K in keyof AwsDeployApis]?: Partial<AwsDeployApis[K]> | Record<string, unknown> };

function strictGroup(group: string, answers: Record<string, unknown>): unknown {
  return new Proxy(answers, {
    get(target, prop) {
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      if (prop in target) return target[prop];
      return () => {
        throw new Error(`unexpected AWS call aws.${group}.${prop}: this test declared no answer for it`);
      };
    },
  });
}

export function strictAws(declared: Declared): AwsDeployApis {
  const groups = Object.fromEntries(
    Object.entries(declared).map(([name, answers]) => [
      name,
      strictGroup(name, answers as Record<string, unknown>),
    ]),
  );
  return new Proxy(groups, {
    get(target, prop) {
      if (prop === 'destroy') return () => undefined;
      if (typeof prop !== 'string' || prop === 'then') return undefined;
      if (prop in target) return target[prop];
      return strictGroup(prop, {});
    },
  }) as unknown as AwsDeployApis;
}
