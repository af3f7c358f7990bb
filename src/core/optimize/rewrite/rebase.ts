// Which base the final stage may move to, decided before anything moves. Two
// cases, one mechanism (a builder stage on the old base, the final stage on the
// new one, the builds' results copied across): a full python/node image to its
// slim variant (opt-in, --slim-base), and a CUDA devel image that the final
// stage needs only to build, to its runtime counterpart. Says in `notDone` why
// not whenever it does not.

import { isCudaDevel, runtimeOf, slimVariant } from '../images.js';
import { finalStageIndex, lineageRoot, type Stage } from '../parse.js';
import { buildSteps } from '../rules/cuda.js';
import type { RuleInput } from '../rules/rule.js';
import { allowed, type RewriteState } from './state.js';

export interface Rebase {
  kind: 'slim' | 'cuda';
  /** The finding this fixes. */
  rule: 'base-not-slim' | 'cuda-devel-runtime';
  /** The image the final stage is on now (the builder keeps it), and the one it moves to. */
  image: string;
  to: string;
  /** With a CUDA rebase: the lines that build, which must all move to the builder. */
  builds: number[];
}

/** Why the final stage's FROM cannot be switched automatically, if it cannot. */
function fromBlocker(s: RewriteState, root: Stage, to: string, digest: boolean): string | undefined {
  if (root.index !== finalStageIndex(s.df, s.options.target))
    return `the final stage is built FROM stage ${root.name}; switch that stage's FROM by hand`;
  if (root.image !== root.resolvedImage)
    return `the FROM names the image through build args (${root.image}); change the tag by hand`;
  if (digest) return `it is pinned by digest, and the digest of ${to} is not known here`;
  return undefined;
}

/** The slim variant to move a full python/node final stage to (--slim-base), or undefined. */
export function slimBaseOf(s: RewriteState): Rebase | undefined {
  const root = lineageRoot(s.df, s.options.target);
  const v = root.resolvedImage === undefined ? undefined : slimVariant(root.resolvedImage);
  if (!v || !allowed(s, 'base-not-slim', root.from)) return undefined;
  const kept = (why: string): undefined => {
    s.notDone.push({
      rule: 'base-not-slim',
      line: root.from.line,
      description: `FROM ${v.image} kept: ${why}`,
    });
    return undefined;
  };
  if (!s.options.slimBase)
    return kept(
      `${v.slim} is not provably the same (a package built from source may link against a library whose runtime .so only the full image has); --slim-base switches, with the builds in a builder stage on ${v.image}`,
    );
  const blocker = fromBlocker(s, root, v.slim, v.digest);
  if (blocker) return kept(blocker);
  return { kind: 'slim', rule: 'base-not-slim', image: v.image, to: v.slim, builds: [] };
}

/**
 * The runtime image to move a CUDA devel final stage to, when the stage visibly
 * builds (otherwise there is nothing to split, and switching the base is left to
 * the user with the lint's fix). Marks the finding as reported by this pass.
 */
export function cudaRebaseOf(s: RewriteState): Rebase | undefined {
  const root = lineageRoot(s.df, s.options.target);
  const final = s.finalStage;
  const image = final.resolvedImage ?? final.image;
  if (root !== final || !isCudaDevel(image) || !allowed(s, 'cuda-devel-runtime', final.from))
    return undefined;
  const input: RuleInput = { df: s.df, context: s.ctx, largeFileBytes: s.large, target: s.options.target };
  const { visible, unseen } = buildSteps(input, final);
  if (!visible.length) return undefined;
  s.handled.add('cuda-devel-runtime');
  const to = runtimeOf(image);
  const kept = (why: string): undefined => {
    s.notDone.push({
      rule: 'cuda-devel-runtime',
      line: final.from.line,
      description: `FROM ${image} kept, no builder stage made: ${why}; do the split by hand (the lint's fix says how)`,
    });
    return undefined;
  };
  if (!to) return kept('no runtime image is known to match it');
  if (s.changes.some((c) => c.rule === 'python-missing'))
    return kept('this rewrite installs Python first; run `mlship optimize --write` again to split the build');
  if (unseen.length) return kept(`line ${unseen[0]!.line} may build too (${unseen[0]!.what})`);
  const blocker = fromBlocker(s, root, to, image.includes('@'));
  if (blocker) return kept(blocker);
  return {
    kind: 'cuda',
    rule: 'cuda-devel-runtime',
    image,
    to,
    builds: [...new Set(visible.map((v) => v.line))],
  };
}
