// pass@k over executed completions equals the hand-computed unbiased estimate, through the library and through
// `alignkit eval passatk`; bad problem / completion files are one-line errors naming file and line.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildProgram, readCompletions, readProblems } from '../../src/eval/passatk.ts';
import { repoRoot } from '../shared_assets.ts';
import { spawn } from 'node:child_process';

let dir = '';
const jsonl = (rows: object[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-passatk-test-'));
  // add: HumanEval form, 5 samples of which 2 are right. parity: simple form, 5 samples, none right (one crashes,
  // one loops). twice: Node, 4 samples, all right.
  writeFileSync(join(dir, 'problems.jsonl'), jsonl([
    { task_id: 'add', prompt: 'def add(a, b):\n    """Sum."""\n', test: 'def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n', entry_point: 'add' },
    { task_id: 'parity', program: 'import sys\n', test: 'assert is_even(4) and not is_even(3)\n' },
    { task_id: 'twice', language: 'node', test: 'if (twice(21) !== 42) process.exit(1);' },
  ]));
  writeFileSync(join(dir, 'completions.jsonl'), jsonl([
    { task_id: 'add', completion: '    return a + b\n' },
    { task_id: 'add', completion: '    return a - b\n' },
    { task_id: 'add', completion: '    return b + a\n' },
    { task_id: 'add', completion: '    return a * b\n' },
    { task_id: 'add', completion: '    return 5\n' },
    { task_id: 'parity', completion: 'def is_even(n):\n    return n % 2 == 1\n' },
    { task_id: 'parity', completion: 'def is_even(n):\n    raise ValueError("nope")\n' },
    { task_id: 'parity', completion: 'def is_even(n):\n    while True:\n        pass\n' },
    { task_id: 'parity', completion: 'def is_even(n) syntax error\n' },
    { task_id: 'parity', completion: 'def is_even(n):\n    return True\n' },
    { task_id: 'twice', completion: 'const twice = (x) => 2 * x;' },
    { task_id: 'twice', completion: 'function twice(x) { return x + x; }' },
    { task_id: 'twice', completion: 'const twice = (x) => x << 1;' },
    { task_id: 'twice', completion: 'const twice = (x) => x * 2;' },
  ]));
});

after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs `node bin/alignkit.mjs eval ...` as a user would. */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'alignkit.mjs'), 'eval', ...args], { timeout: 120_000 });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('pass@k', () => {
  it('builds programs like human-eval', () => {
    const [add] = readProblems(join(dir, 'problems.jsonl'));
    assert.equal(buildProgram(add, '    return a + b\n', 'python'), 'def add(a, b):\n    """Sum."""\n    return a + b\n\ndef check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n\ncheck(add)\n');
  });

  it('alignkit eval passatk: the unbiased estimate by hand', async () => {
    const r = await cli(['passatk', '--problems', join(dir, 'problems.jsonl'), '--completions', join(dir, 'completions.jsonl'), '-k', '1,2,5', '--timeout', '4', '--cpu', '2', '--memory-mb', '256', '--concurrency', '2', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.per_problem.map((p: { task_id: string; n: number; c: number }) => [p.task_id, p.n, p.c]), [['add', 5, 2], ['parity', 5, 0], ['twice', 4, 4]]);
    // pass@1 = mean(c/n) = (2/5 + 0 + 1) / 3.
    assert.ok(Math.abs(j['pass@1'] - (0.4 + 0 + 1) / 3) < 1e-12);
    // pass@2 for add: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7; parity 0; twice 1.
    assert.ok(Math.abs(j['pass@2'] - (0.7 + 0 + 1) / 3) < 1e-12);
    // pass@5 needs n >= 5 for every problem; twice has 4, so it is left out (as human-eval does).
    assert.equal(j['pass@5'], undefined);
    assert.deepEqual(j.skipped_k, [5]);
    const parity = j.samples.filter((s: { task_id: string }) => s.task_id === 'parity').map((s: { status: string }) => s.status);
    assert.deepEqual(parity.map((s: string) => s === 'passed'), [false, false, false, false, false]);
    assert.ok(['timeout', 'cpu_limit', 'killed'].includes(parity[2]), `the endless loop ended as ${parity[2]}`);
    assert.match(r.stderr, /pass@5 left out/);
  });

  it('Markdown table', async () => {
    const r = await cli(['passatk', '--problems', join(dir, 'problems.jsonl'), '--completions', join(dir, 'completions.jsonl'), '-k', '1', '--timeout', '3', '--cpu', '1', '--quiet']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\| pass@1 \| 0\.4667 \|/);
    assert.match(r.stdout, /3 problems, 14 samples/);
  });

  it('bad input names file and line', async () => {
    const bad = join(dir, 'bad_problems.jsonl');
    writeFileSync(bad, jsonl([{ task_id: 'a', test: 'pass' }, { task_id: 'b', prompt: 'x' }]));
    let r = await cli(['passatk', '--problems', bad, '--completions', join(dir, 'completions.jsonl')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^alignkit eval passatk: ${bad}:2: field 'test' is missing$`, 'm'));
    const badCompletions = join(dir, 'bad_completions.jsonl');
    writeFileSync(badCompletions, jsonl([{ task_id: 'add', completion: 'x' }, { task_id: 'nope', completion: 'y' }]));
    assert.throws(() => readCompletions(badCompletions, readProblems(join(dir, 'problems.jsonl'))), { message: `${badCompletions}:2: task_id 'nope' is not among the problems` });
    writeFileSync(badCompletions, jsonl([{ task_id: 'add', completion: 'x' }]));
    assert.throws(() => readCompletions(badCompletions, readProblems(join(dir, 'problems.jsonl'))), /no completions for 2 problem\(s\): parity, twice/);
    r = await cli(['passatk', '--problems', join(dir, 'problems.jsonl'), '--completions', join(dir, 'completions.jsonl'), '-k', '0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /-k must be a comma-separated list of positive integers/);
  });
});
