// Locates the third-party test assets (../shared/assets next to the repository; see its README.md and
// MANIFEST.json for what each file is and where it came from). They are never copied into the repository: tests
// that need them skip, with a visible message, when they are absent (a user's clone without ../shared).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** ALIGNKIT_ASSETS when set (the only place looked at); else ../shared/assets, or two levels up for a git
 *  worktree one level deeper (…/wt/<name>). */
function findAssets(): string | null {
  const env = process.env.ALIGNKIT_ASSETS;
  const candidates = env ? [env] : [join(repoRoot, '..', 'shared', 'assets'), join(repoRoot, '..', '..', 'shared', 'assets')];
  for (const c of candidates) if (c && existsSync(join(c, 'MANIFEST.json'))) return c;
  return null;
}

export const assetsDir: string | null = findAssets();
export const SKIP_NO_ASSETS = 'third-party assets not found at ../shared/assets (set ALIGNKIT_ASSETS); skipped';

/** Absolute path of an asset; throws SKIP_NO_ASSETS when the assets are absent (check assetsDir first). */
export function asset(...parts: string[]): string {
  if (assetsDir === null) throw new Error(SKIP_NO_ASSETS);
  return join(assetsDir, ...parts);
}

export function readAssetJson(...parts: string[]): unknown {
  return JSON.parse(readFileSync(asset(...parts), 'utf8')) as unknown;
}

export function readAssetText(...parts: string[]): string {
  return readFileSync(asset(...parts), 'utf8');
}
