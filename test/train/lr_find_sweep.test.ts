// The learning-rate range test (schedule, smoothing, divergence stop, suggestion) and hyperparameter sweeps
// (grid and seeded random planning, validation errors, ranking with failed trials last).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AdamW, SGD } from '../../src/optim/index.ts';
import { lrRangeTest, rangeTestLr, suggestLr } from '../../src/train/lr_find.ts';
import { parseSweepSpec, planTrials, runSweep } from '../../src/train/sweep.ts';
import { ToyTask } from './toy_task.ts';

test('range-test learning rates grow geometrically from min to max', () => {
  const o = { minLr: 1e-6, maxLr: 1, steps: 7 };
  const lrs = Array.from({ length: 7 }, (_, i) => rangeTestLr(i, o));
  lrs.forEach((lr, i) => assert.ok(Math.abs(lr / 10 ** (-6 + i) - 1) < 1e-12));
});

test('suggestLr picks the steepest descent before the minimum of a synthetic curve', () => {
  // smoothed loss falls slowly, then fast around lr = 1e-3, bottoms out at 1e-2, then explodes
  const lrs = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1];
  const losses = [5, 4.9, 4.5, 2.5, 1.0, 9];
  const pts = lrs.map((lr, i) => ({ step: i, lr, loss: losses[i], smoothedLoss: losses[i] }));
  const s = suggestLr(pts);
  assert.equal(s.minLossLr, 1e-2);
  assert.equal(s.suggestedLr, 1e-3);
});

test('lrRangeTest on the toy task: loss falls, then diverges and stops early', async () => {
  const task = ToyTask.make(3, 24, 24);
  const r = await lrRangeTest(task, new SGD([task.w], { lr: 1 }), { minLr: 1e-4, maxLr: 100, steps: 100, gradientAccumulationSteps: 1, maxGradNorm: null });
  assert.ok(r.diverged, 'an lr of 100 with plain SGD must blow up');
  assert.ok(r.points.length < 100);
  // the toy loss falls fastest around lr 0.1-1 (plain SGD on a well-conditioned least-squares problem)
  assert.ok(r.suggestedLr !== null && r.suggestedLr > 1e-2 && r.suggestedLr < 3, `suggested ${r.suggestedLr}`);
  const raw = r.points.map((p) => p.loss);
  assert.ok(Math.min(...raw) < raw[0] / 10, 'the loss falls by 10x somewhere along the range');
  const t2 = ToyTask.make(3, 24, 24);
  const again = await lrRangeTest(t2, new SGD([t2.w], { lr: 1 }), { minLr: 1e-4, maxLr: 100, steps: 100, gradientAccumulationSteps: 1, maxGradNorm: null });
  assert.deepEqual(again.points, r.points, 'deterministic');
  await assert.rejects(() => lrRangeTest(task, new AdamW([task.w]), { minLr: 1, maxLr: 0.1 }), /min_lr < max_lr/);
});

test('sweep: grid is the cartesian product cut to the budget; random is seeded; bad files name the key', () => {
  const grid = parseSweepSpec({ method: 'grid', budget: 5, parameters: { learning_rate: [1e-4, 1e-3, 1e-2], lora_r: { values: [8, 16] } } }, 'sweep.yaml');
  const g = planTrials(grid);
  assert.equal(g.length, 5);
  assert.deepEqual(g[0], { learning_rate: 1e-4, lora_r: 8 });
  assert.deepEqual(g[1], { learning_rate: 1e-4, lora_r: 16 });
  const rnd = parseSweepSpec({ method: 'random', budget: 20, seed: 4, parameters: { learning_rate: { min: 1e-5, max: 1e-2, log: true }, warmup_steps: { min: 0, max: 10, integer: true } } }, 's.yaml');
  const a = planTrials(rnd);
  assert.deepEqual(a, planTrials(rnd));
  for (const t of a) {
    assert.ok((t.learning_rate as number) >= 1e-5 && (t.learning_rate as number) <= 1e-2);
    assert.ok(Number.isInteger(t.warmup_steps) && (t.warmup_steps as number) <= 10);
  }
  assert.notDeepEqual(a, planTrials({ ...rnd, seed: 5 }));
  assert.throws(() => parseSweepSpec({ parameters: { lr: { min: 0, max: 1, log: true } } }, 's.yaml'), /s.yaml: key 'parameters.lr': a log-uniform range needs min > 0/);
  assert.throws(() => parseSweepSpec({ budgett: 3, parameters: { a: [1] } }, 's.yaml'), /key 'budgett': unknown key/);
  assert.throws(() => planTrials(parseSweepSpec({ method: 'grid', parameters: { a: { min: 0, max: 1 } } }, 's')), /grid search needs a list of values for 'a'/);
});

test('runSweep ranks by the metric (lower loss first) and records failed trials last', async () => {
  const spec = parseSweepSpec({ method: 'grid', budget: 4, metric: 'eval_loss', parameters: { x: [3, 1, 'boom', 2] } }, 's');
  const r = await runSweep(spec, async (o) => {
    if (o.x === 'boom') throw new Error('trial crashed');
    return { metrics: { eval_loss: o.x as number }, outputDir: `trial-${String(o.x)}` };
  });
  assert.deepEqual(r.ranked.map((t) => t.overrides.x), [1, 2, 3, 'boom']);
  assert.equal(r.ranked[3].error, 'trial crashed');
  assert.equal(r.greaterIsBetter, false);
});
