// Early stopping with transformers' EarlyStoppingCallback semantics. The expected sequences are worked out by
// hand from that callback's rule: reset the counter when the value beats state.best_metric (which moves on
// every strict improvement) by more than the threshold, else add one; stop when the counter reaches patience.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EarlyStopping } from '../../src/train/early_stopping.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';

function run(es: EarlyStopping, values: number[]): { improved: boolean; isBest: boolean; shouldStop: boolean }[] {
  return values.map((v, i) => es.update((i + 1) * 100, v));
}

describe('EarlyStopping', () => {
  it('min mode, patience 2: stops after two evaluations without improvement', () => {
    const es = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 2, minDelta: 0 });
    const r = run(es, [2.0, 1.5, 1.6, 1.4, 1.4, 1.45]);
    assert.deepEqual(r.map((x) => x.improved), [true, true, false, true, false, false]);
    assert.deepEqual(r.map((x) => x.shouldStop), [false, false, false, false, false, true]);
    assert.deepEqual(es.best, { step: 400, value: 1.4 }); // an equal value is not an improvement
  });

  it('max mode: larger is better', () => {
    const es = new EarlyStopping({ metric: 'eval_accuracy', mode: 'max', patience: 1, minDelta: 0 });
    const r = run(es, [0.5, 0.7, 0.6]);
    assert.deepEqual(r.map((x) => [x.improved, x.shouldStop]), [[true, false], [true, false], [false, true]]);
    assert.deepEqual(es.best, { step: 200, value: 0.7 });
  });

  it('minDelta: gains at or below the threshold do not reset patience, but still move the best value', () => {
    const es = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 3, minDelta: 0.1 });
    // 1.0 first; 0.95 (gain 0.05) is a new best but not an improvement; 0.9 vs best 0.95: gain 0.05 again;
    // 0.7 vs 0.9: gain 0.2 > 0.1 improves; then 0.65, 0.62, 0.6 are small gains: the third stops the run.
    const r = run(es, [1.0, 0.95, 0.9, 0.7, 0.65, 0.62, 0.6]);
    assert.deepEqual(r.map((x) => x.improved), [true, false, false, true, false, false, false]);
    assert.deepEqual(r.map((x) => x.isBest), [true, true, true, true, true, true, true]);
    assert.deepEqual(r.map((x) => x.shouldStop), [false, false, false, false, false, false, true]);
    assert.equal(es.best?.value, 0.6);
    // A gain of exactly minDelta is not enough (transformers: abs(diff) > threshold).
    const exact = new EarlyStopping({ metric: 'm', mode: 'max', patience: 5, minDelta: 0.5 });
    assert.equal(exact.update(1, 1).improved, true);
    assert.equal(exact.update(2, 1.5).improved, false);
    assert.equal(exact.update(3, 2.01).improved, true);
  });

  it('NaN never improves, is never the best, and counts against patience', () => {
    const es = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 2, minDelta: 0 });
    assert.deepEqual(es.update(10, NaN), { improved: false, isBest: false, shouldStop: false });
    assert.equal(es.best, null);
    assert.deepEqual(es.update(20, 3), { improved: true, isBest: true, shouldStop: false });
    assert.deepEqual(es.update(30, NaN), { improved: false, isBest: false, shouldStop: false });
    assert.deepEqual(es.update(40, NaN), { improved: false, isBest: false, shouldStop: true });
    assert.deepEqual(es.best, { step: 20, value: 3 });
  });

  it('state() / restore() continue where a run stopped', () => {
    const a = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 3, minDelta: 0 });
    run(a, [1, 0.8, 0.9, 0.85]); // two evaluations without improvement
    const saved = JSON.parse(JSON.stringify(a.state()));
    const b = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 3, minDelta: 0 });
    b.restore(saved);
    assert.equal(b.evaluationsWithoutImprovement, 2);
    assert.deepEqual(b.best, { step: 200, value: 0.8 });
    assert.equal(b.update(500, 0.81).shouldStop, true);
    // The same continuation on the original instance agrees.
    assert.equal(a.update(500, 0.81).shouldStop, true);
  });

  it('restore() refuses a state for another metric or direction', () => {
    const a = new EarlyStopping({ metric: 'eval_loss', mode: 'min', patience: 3, minDelta: 0 });
    a.update(1, 1);
    const b = new EarlyStopping({ metric: 'eval_accuracy', mode: 'max', patience: 3, minDelta: 0 });
    assert.throws(() => b.restore(a.state()), /tracked 'eval_loss' \(min\) but this run tracks 'eval_accuracy' \(max\)/);
  });

  it('best is a copy, and invalid options are errors', () => {
    const es = new EarlyStopping({ metric: 'm', mode: 'min', patience: 1, minDelta: 0 });
    es.update(1, 5);
    const b = es.best!;
    b.value = -1;
    assert.equal(es.best?.value, 5);
    assert.throws(() => new EarlyStopping({ metric: 'm', mode: 'min', patience: 0, minDelta: 0 }), (e: unknown) => e instanceof AlignkitError && /patience must be an integer >= 1/.test(e.message));
    assert.throws(() => new EarlyStopping({ metric: 'm', mode: 'min', patience: 1, minDelta: -1 }), /minDelta must be a finite number >= 0/);
  });
});
