// mlship's cache directory (bare mirrors, exported trees, the weights cache), as
// `bakeoff` and `wrap --from-bakeoff` both find it: $MLSHIP_CACHE_DIR, else
// $XDG_CACHE_HOME/mlship, else ~/.cache/mlship.

import os from 'node:os';
import path from 'node:path';

export function cacheDirFrom(env: NodeJS.ProcessEnv): string {
  if (env.MLSHIP_CACHE_DIR) return env.MLSHIP_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'mlship');
}
