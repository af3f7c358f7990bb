// The rules that know ML images, in the order the docs list them.

import { cudaDevelRuntimeRule, cudaTwiceRule } from './cuda.js';
import { unpinnedInstallRule, unpinnedSourceRule } from './pinning.js';
import { pythonMissingRule } from './python-missing.js';
import type { Rule } from './rule.js';
import { devServerRule, devToolsInFinalRule } from './serving.js';

export const ML_RULES: Rule[] = [
  pythonMissingRule,
  devServerRule,
  cudaDevelRuntimeRule,
  cudaTwiceRule,
  unpinnedInstallRule,
  unpinnedSourceRule,
  devToolsInFinalRule,
];

export const ML_RULE_IDS = ML_RULES.map((r) => r.id);
