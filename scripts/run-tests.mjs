// Runs every test file under test/ with Node's test runner (through tsx) and fails if none ran.
// (On Node 20, `node --test test/` with a directory silently runs zero tests; we list the files.)
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filter = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = walk(join(root, 'test'));
if (filter.length) files = files.filter((f) => filter.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
console.log(`run-tests: ${files.length} test files`);

const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', '--test-reporter-destination=.test-results.tap', ...files.map((f) => relative(root, f))], {
  cwd: root,
  stdio: 'inherit',
});
child.on('exit', async (code) => {
  const { readFileSync } = await import('node:fs');
  let tap = '';
  try { tap = readFileSync(join(root, '.test-results.tap'), 'utf8'); } catch { /* no tap */ }
  const num = (k) => Number((tap.match(new RegExp(`^# ${k} (\\d+)$`, 'm')) ?? [])[1] ?? NaN);
  const tests = num('tests'), pass = num('pass'), fail = num('fail'), skipped = num('skipped');
  if (!(tests > 0)) {
    console.error(`run-tests: the runner executed no tests (exit ${code}); failing.`);
    process.exit(1);
  }
  console.log(`${pass} passed, ${fail} failed, ${skipped} skipped`);
  process.exit(code === 0 && fail === 0 ? 0 : 1);
});
