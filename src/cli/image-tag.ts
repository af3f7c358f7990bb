// The tag images are pushed under: --tag, else the git commit (with a content hash
// when the tree has uncommitted changes, so a change always gets a new tag).

import { UsageError } from '../io/errors.js';
import type { IoHost } from '../io/io-host.js';

export async function resolveImageTag(
  io: IoHost,
  dir: string,
  explicit: string | undefined,
  pushing: boolean,
): Promise<string> {
  if (explicit) return explicit;
  const { sourceTag } = await import('../adapters/git.js');
  const source = await sourceTag(dir);
  if (source) {
    if (source.dirty)
      io.warn(`uncommitted changes: images are tagged ${source.tag} (commit to get a clean tag)`);
    return source.tag;
  }
  if (pushing) {
    throw new UsageError('not a git checkout, so there is no commit to tag the images with', {
      hint: 'pass --tag <version> (a moving tag such as "latest" would be refused by immutable ECR tags)',
    });
  }
  io.warn('not a git checkout: the files name images with the tag "latest" (pass --tag to pin them)');
  return 'latest';
}
