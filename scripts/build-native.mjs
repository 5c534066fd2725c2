// Builds the C++ addon with node-gyp (run by `npm install`). Nothing is downloaded: node-gyp uses the
// headers of the running Node (npm's `nodedir`) and node-addon-api from node_modules.
// If the build fails, alignkit still works on its pure-TypeScript backend, so this script reports the
// failure clearly and exits 0 (unless --strict is given, as CI does).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const strict = process.argv.includes('--strict') || process.env.ALIGNKIT_STRICT_BUILD === '1';
const force = process.argv.includes('--force') || strict;
const output = join(nativeDir, 'build', 'Release', 'alignkit_native.node');

if (process.env.ALIGNKIT_SKIP_NATIVE === '1') {
  console.log('alignkit: ALIGNKIT_SKIP_NATIVE=1, not building the native addon (TypeScript backend only).');
  process.exit(0);
}
if (!force && existsSync(output) && process.env.npm_lifecycle_event !== 'install') {
  process.exit(0);
}

function findNodeGyp() {
  if (process.env.npm_config_node_gyp && existsSync(process.env.npm_config_node_gyp)) return process.env.npm_config_node_gyp;
  const require = createRequire(import.meta.url);
  const candidates = [];
  try { candidates.push(require.resolve('node-gyp/bin/node-gyp.js')); } catch { /* not a dependency */ }
  const npmDir = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  candidates.push(npmDir);
  return candidates.find((c) => existsSync(c));
}

const gyp = findNodeGyp();
if (!gyp) {
  const msg = 'alignkit: node-gyp not found; the native addon was not built (TypeScript backend only).';
  console.warn(msg);
  process.exit(strict ? 1 : 0);
}
const jobs = process.env.JOBS ?? 'max';
const args = [gyp, 'rebuild', `--jobs=${jobs}`];
// Use the installed Node's own headers so nothing is downloaded (npm passes its `nodedir` config as env).
const nodedir = process.env.npm_config_nodedir ?? join(dirname(process.execPath), '..');
if (existsSync(join(nodedir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${nodedir}`);
const res = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: 'inherit' });
if (res.status !== 0) {
  console.warn('alignkit: the native addon failed to build; alignkit will run on the slow TypeScript backend.');
  process.exit(strict ? 1 : 0);
}
console.log(`alignkit: native addon built at ${output}`);
