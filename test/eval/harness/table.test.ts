// The results table against the harness's own expected output (lm-evaluation-harness's test data:
// ai2_arc_10_pythia-14m_expected_table.txt), and the stderr / group arithmetic against hand-computed values.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { meanStderr, pooledSampleStderr, renderResults, renderRows, sampleStddev, weightedMean, type BenchmarkResults } from '../../../src/eval/harness/index.ts';
import { assetsDir, readAssetText, SKIP_NO_ASSETS } from '../../shared_assets.ts';

const task = (name: string, acc: number, accNorm: number) => ({
  name, alias: name, version: 1, numFewshot: 0, n: 10, samples: [],
  metrics: [
    { metric: 'acc_norm', value: accNorm, stderr: null, higherIsBetter: true },
    { metric: 'acc', value: acc, stderr: null, higherIsBetter: true },
  ],
});

test('table: identical to the harness expected table for ai2_arc with --limit 10 (stderr N/A)', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const want = readAssetText('benchmarks', 'lm-eval-harness', 'ai2_arc_10_pythia-14m_expected_table.txt');
  const r: BenchmarkResults = { tasks: [task('arc_easy', 0.3, 0.1), task('arc_challenge', 0, 0)], groups: [], groupDefs: [], documents: 20, seconds: 1 };
  assert.equal(renderResults(r), want.endsWith('\n') ? want : `${want}\n`);
});

test('table: numeric stderr column is right-aligned, decimals per column, groups indented', () => {
  const out = renderRows([
    { name: 'mmlu', version: 2, filter: 'none', nShot: null, metric: 'acc', higherIsBetter: true, value: 0.25, stderr: 0.0146 },
    { name: ' - stem', version: 2, filter: 'none', nShot: null, metric: 'acc', higherIsBetter: true, value: 0.3, stderr: 0.0412 },
    { name: '  - anatomy', version: 1, filter: 'none', nShot: 5, metric: 'acc', higherIsBetter: true, value: 0.46591, stderr: 0.1 },
  ]);
  const lines = out.trimEnd().split('\n');
  assert.equal(lines[0], '|   Tasks   |Version|Filter|n-shot|Metric|   |Value |   |Stderr|');
  assert.equal(lines[1], '|-----------|------:|------|-----:|------|---|-----:|---|-----:|');
  assert.equal(lines[2], '|mmlu       |      2|none  |      |acc   |↑  |0.2500|±  |0.0146|');
  assert.equal(lines[4], '|  - anatomy|      1|none  |     5|acc   |↑  |0.4659|±  |0.1000|');
});

test('stderr: sample std / sqrt(n); pooled group stderr; weighted mean (hand-computed)', () => {
  const xs = [1, 0, 0, 1, 1];
  // mean 0.6, squared deviations 0.16*3 + 0.36*2 = 1.2, sample variance 0.3
  assert.ok(Math.abs(sampleStddev(xs) - Math.sqrt(0.3)) < 1e-15, 'sample stddev');
  assert.ok(Math.abs((meanStderr(xs) as number) - Math.sqrt(0.3 / 5)) < 1e-15, 'mean stderr');
  assert.equal(meanStderr([1]), null);
  assert.equal(weightedMean([0.5, 0.2], [10, 30]), (5 + 6) / 40);
  // ((10-1)*0.1^2*10 + (30-1)*0.2^2*30) / (40 - 2) / 40
  const want = Math.sqrt((9 * 0.01 * 10 + 29 * 0.04 * 30) / 38 / 40);
  assert.ok(Math.abs(pooledSampleStderr([0.1, 0.2], [10, 30]) - want) < 1e-15, 'pooled stderr');
});
