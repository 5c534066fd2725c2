// The command line as a user runs it: help, version, info, the engine demo (deterministic), bad arguments.
// (`alignkit demo`, the pipeline demo, is tested in test/pipeline/demo.test.ts.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');

function run(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('alignkit CLI', () => {
  it('--version prints the package version', () => {
    const r = run(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout.trim(), /^\d+\.\d+\.\d+$/);
  });

  it('--help lists the commands', () => {
    const r = run(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['info', 'demo', 'demo-engine', 'pipeline', 'tokenize']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });

  it('info --json reports the backend', () => {
    const r = run(['info', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { backend: string; threads: number; isa: string };
    assert.ok(['native', 'js'].includes(info.backend));
    assert.ok(info.threads >= 1);
  });

  it('the engine demo learns, and the same seed gives the same numbers on 1 and 2 threads', () => {
    const a = run(['demo-engine', '--steps', '12', '--batch-size', '2', '--json', '--seed', '3'], { ALIGNKIT_THREADS: '1' });
    const b = run(['demo-engine', '--steps', '12', '--batch-size', '2', '--json', '--seed', '3'], { ALIGNKIT_THREADS: '2' });
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const ra = JSON.parse(a.stdout) as { losses: number[]; sample: string; finalLoss: number; firstLoss: number };
    const rb = JSON.parse(b.stdout) as { losses: number[]; sample: string };
    assert.deepEqual(rb.losses, ra.losses);
    assert.equal(rb.sample, ra.sample);
    assert.ok(ra.finalLoss < ra.firstLoss, `loss fell: ${ra.firstLoss} -> ${ra.finalLoss}`);
  });

  it('the engine demo also runs on the TypeScript backend', () => {
    const r = run(['demo-engine', '--steps', '2', '--batch-size', '1', '--json'], { ALIGNKIT_BACKEND: 'js' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).backend, 'js');
  });

  it('bad arguments and missing files fail with a one-line message and a non-zero exit', () => {
    const bad = run(['demo-engine', '--steps', 'many']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--steps must be an integer >= 1/);
    const missing = run(['demo-engine', '--text', '/nonexistent/file.txt', '--steps', '1']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^alignkit: .*\/nonexistent\/file.txt/m);
    assert.doesNotMatch(missing.stderr, /\n\s+at /, 'no stack trace');
  });
});
