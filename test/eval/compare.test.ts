// `alignkit eval compare`: deltas of every metric two runs share, and paired tests on per-sample data that eval
// commands store in their --output reports. The corpus-BLEU p-values equal sacreBLEU-style paired tests on the
// texts (significance.ts); the mean-metric randomization p-value is checked against an exact permutation test.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../shared_assets.ts';
import { Bleu } from '../../src/eval/bleu.ts';
import { squadScores } from '../../src/eval/squad.ts';
import { pairedApproximateRandomization, pairedBootstrap } from '../../src/eval/significance.ts';
import { compareRuns, comparisonHtml, sampleSeries } from '../../src/eval/compare.ts';

let dir = '';

function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'alignkit.mjs'), 'eval', ...args], { cwd: dir, timeout: 120_000 });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const refs = ['the cat sat on the mat', 'a quick brown fox jumps', 'it is raining in the city today', 'we went to the market', 'the results were not good', 'she reads a book every night', 'open the window please', 'my brother plays the guitar'];
const base = ['the cat sat on a mat', 'a fast brown fox jumped', 'it rains in town today', 'we go to market', 'results were bad', 'she read books at night', 'open window', 'my brother plays guitar'];
const sys = ['the cat sat on the mat', 'a quick brown fox jumps', 'it is raining in the city', 'we went to market', 'the results were not great', 'she reads a book at night', 'open the window', 'my brother plays the guitar'];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-compare-test-'));
  writeFileSync(join(dir, 'ref.txt'), refs.join('\n') + '\n');
  writeFileSync(join(dir, 'base.txt'), base.join('\n') + '\n');
  writeFileSync(join(dir, 'sys.txt'), sys.join('\n') + '\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('alignkit eval compare', () => {
  it('BLEU reports from eval text: delta, and p-values equal to the paired tests on the texts', async () => {
    mkdirSync(join(dir, 'run1'));
    mkdirSync(join(dir, 'run2'));
    for (const [run, hyp] of [['run1', 'base.txt'], ['run2', 'sys.txt']]) {
      const r = await cli(['text', '--metric', 'bleu', '--predictions', hyp, '--references', 'ref.txt', '--output', join(run, 'bleu')]);
      assert.equal(r.code, 0, r.stderr);
      const r2 = await cli(['text', '--metric', 'exact_match', '--predictions', hyp, '--references', 'ref.txt', '--output', join(run, 'squad')]);
      assert.equal(r2.code, 0, r2.stderr);
    }
    writeFileSync(join(dir, 'run1', 'only_here.json'), '{"score": 1}');
    const r = await cli(['compare', 'run1', 'run2', '--json', '--n-randomization', '2000', '--html', 'cmp.html']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const bleu = j.comparisons.find((c: { file: string; metric: string }) => c.file === 'bleu.json' && c.metric === 'score');
    const metric = new Bleu();
    const b1 = metric.scoreFromStatistics(metric.segmentStatistics(base, [refs]).reduce((a, s) => a.map((v, k) => v + s[k])));
    const b2 = metric.scoreFromStatistics(metric.segmentStatistics(sys, [refs]).reduce((a, s) => a.map((v, k) => v + s[k])));
    assert.ok(Math.abs(bleu.run1 - b1) < 1e-9 && Math.abs(bleu.run2 - b2) < 1e-9);
    assert.ok(Math.abs(bleu.delta - (b2 - b1)) < 1e-9);
    assert.equal(bleu.n, 8);
    assert.equal(bleu.test, 'corpus');
    assert.equal(bleu.p_paired_bootstrap, pairedBootstrap(metric, base, sys, [refs]).pValue);
    assert.equal(bleu.p_approximate_randomization, pairedApproximateRandomization(metric, base, sys, [refs], { nSamples: 2000 }).pValue);
    // Other BLEU numbers are compared too (no test: no per-sample data for them).
    assert.ok(j.comparisons.some((c: { metric: string; n: number | null }) => c.metric === 'bp' && c.n === null));
    const em = j.comparisons.find((c: { file: string; metric: string }) => c.file === 'squad.json' && c.metric === 'exact_match');
    assert.equal(em.run1, squadScores(base, refs.map((r) => [r])).exactMatch);
    assert.equal(em.run2, squadScores(sys, refs.map((r) => [r])).exactMatch);
    assert.ok(em.delta > 0);
    assert.equal(em.test, 'mean');
    assert.deepEqual(j.unmatched, [`only_here.json (only in run1)`]);
    const html = readFileSync(join(dir, 'cmp.html'), 'utf8');
    assert.match(html, /<table>/);
    assert.match(html, /<td>bleu\.json<\/td><td>score<\/td>/);
    const md = await cli(['compare', join('run1', 'bleu.json'), join('run2', 'bleu.json'), '--n-randomization', '200']);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /^\| metric \| run 1 \| run 2 \| Δ \(2 − 1\) \| n \| p \(paired bootstrap\) \| p \(approx\. randomization\) \|$/m);
  });

  it('mean metrics: approximate randomization approaches the exact permutation test', () => {
    const x = [0.2, 0.5, 0.1, 0.9, 0.4, 0.3, 0.6, 0.2, 0.7, 0.1];
    const y = [0.4, 0.5, 0.3, 0.8, 0.7, 0.6, 0.6, 0.5, 0.9, 0.2];
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ metric: 'rouge', scores: { rouge1: { fmeasure: x.reduce((s, v) => s + v) / x.length } }, per_sample: { 'scores.rouge1.fmeasure': x } }));
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ metric: 'rouge', scores: { rouge1: { fmeasure: y.reduce((s, v) => s + v) / y.length } }, per_sample: { 'scores.rouge1.fmeasure': y } }));
    const r = compareRuns(join(dir, 'a.json'), join(dir, 'b.json'), { nRandomization: 20000 });
    const c = r.comparisons.find((m) => m.metric === 'scores.rouge1.fmeasure')!;
    const d = x.map((v, i) => y[i] - v);
    const observed = Math.abs(d.reduce((s, v) => s + v));
    // Exact: over all 2^10 swaps, the share whose |sum of signed differences| reaches the observed one (ties
    // count: these values are multiples of 0.1, so many swaps tie with the observed sum).
    let exceed = 0;
    for (let mask = 0; mask < 1 << d.length; mask++) {
      const s = d.reduce((acc, v, i) => acc + (mask & (1 << i) ? -v : v), 0);
      if (Math.abs(s) > observed - 1e-9) exceed++;
    }
    const exact = exceed / (1 << d.length);
    assert.ok(Math.abs(c.pRandomization! - exact) < 0.01, `AR p ${c.pRandomization} vs exact ${exact}`);
    assert.ok(Math.abs(c.delta - 0.15) < 1e-12); // means 0.40 and 0.55
    assert.ok(c.pBootstrap! > 0 && c.pBootstrap! < 0.1);
  });

  it('discrete per-sample scores: ties with the observed difference count, unlike sacreBLEU\'s corpus tests', () => {
    // Win/loss per comparison; the runs differ on two of six items only, both the same way: of the 4 relevant
    // swaps, 2 give a difference as large as the observed one, so the exact permutation p is 0.5.
    writeFileSync(join(dir, 'w1.json'), JSON.stringify({ win_rate: 0.75, per_sample: { win_rate: [1, 0, 1, 0.5, 1, 1] } }));
    writeFileSync(join(dir, 'w2.json'), JSON.stringify({ win_rate: 5 / 12, per_sample: { win_rate: [0, 0, 1, 0.5, 0, 1] } }));
    const c = compareRuns(join(dir, 'w1.json'), join(dir, 'w2.json'), { nRandomization: 10000 }).comparisons.find((m) => m.metric === 'win_rate')!;
    assert.ok(Math.abs(c.pRandomization! - 0.5) < 0.02, `AR p ${c.pRandomization}`);
  });

  it('bench reports: per-document results are paired; different sample counts are not', () => {
    const bench = (accs: number[]) => ({ results: { arc_easy: { alias: 'arc_easy', n: accs.length, metrics: { acc: { value: accs.reduce((s, v) => s + v) / accs.length, stderr: 0.1 } }, samples: accs.map((a) => ({ result: { acc: a, acc_norm: 1 - a } })) } }, groups: {} });
    writeFileSync(join(dir, 'bench1.json'), JSON.stringify(bench([1, 0, 0, 1, 0, 0])));
    writeFileSync(join(dir, 'bench2.json'), JSON.stringify(bench([1, 1, 1, 1, 0, 1])));
    writeFileSync(join(dir, 'bench3.json'), JSON.stringify(bench([1, 1, 1])));
    assert.deepEqual([...sampleSeries({ file: 'bench1.json', json: bench([1, 0]) }).keys()], ['arc_easy acc', 'arc_easy acc_norm']);
    const r = compareRuns(join(dir, 'bench1.json'), join(dir, 'bench2.json'), { nRandomization: 1000 });
    const acc = r.comparisons.find((c) => c.metric === 'arc_easy acc')!;
    assert.equal(acc.n, 6);
    assert.ok(Math.abs(acc.delta - 0.5) < 1e-12);
    const r3 = compareRuns(join(dir, 'bench1.json'), join(dir, 'bench3.json'));
    assert.match(r3.comparisons.find((c) => c.metric === 'arc_easy acc')!.note!, /different sample counts \(6 vs 3\)/);
    assert.match(comparisonHtml(r), /arc_easy acc/);
  });

  it('bad input names the file', async () => {
    writeFileSync(join(dir, 'broken.json'), '{"score": ');
    const r = await cli(['compare', 'broken.json', 'a.json']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^alignkit eval compare: broken\.json: invalid JSON/m);
    assert.throws(() => compareRuns(join(dir, 'a.json'), join(dir, 'missing.json')), /missing\.json: not found/);
  });
});
