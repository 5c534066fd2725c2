// Learning-rate schedules: hand-computed values at the key points of every type, then whole sequences recorded
// from transformers.get_scheduler / torch StepLR / CyclicLR (fixtures/schedules.json, made by
// fixtures/make_schedule_fixtures.py) compared to 1e-12 relative.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { learningRateAt, learningRates, lrScheduleFromKwargs, validateLrSchedule, warmupStepsFor, type LrScheduleConfig } from '../../src/train/schedule.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';

function close(actual: number, expected: number, what: string, rtol = 1e-12): void {
  const tol = rtol * Math.abs(expected) + 1e-300;
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);
}

const base = { learningRate: 1e-3, totalSteps: 10, warmupSteps: 2 };

describe('learningRateAt: hand-computed key points', () => {
  it('constant ignores the warmup (as transformers get_scheduler does)', () => {
    for (const s of [0, 1, 5, 20]) assert.equal(learningRateAt(s, { ...base, type: 'constant' }), 1e-3);
  });

  it('constant_with_warmup ramps from 0 at step 0 to the peak at step W', () => {
    const c: LrScheduleConfig = { ...base, type: 'constant_with_warmup', warmupSteps: 4 };
    assert.equal(learningRateAt(0, c), 0);
    close(learningRateAt(1, c), 0.25e-3, 'step 1');
    close(learningRateAt(3, c), 0.75e-3, 'step 3');
    assert.equal(learningRateAt(4, c), 1e-3);
    assert.equal(learningRateAt(100, c), 1e-3);
  });

  it('linear: W=2, N=10 → peak at 2, (10-s)/8 after, 0 at N and beyond', () => {
    const c: LrScheduleConfig = { ...base, type: 'linear' };
    assert.equal(learningRateAt(0, c), 0);
    close(learningRateAt(1, c), 0.5e-3, 'step 1');
    close(learningRateAt(2, c), 1e-3, 'step 2');
    close(learningRateAt(6, c), 0.5e-3, 'step 6');
    close(learningRateAt(9, c), 0.125e-3, 'step 9');
    assert.equal(learningRateAt(10, c), 0);
    assert.equal(learningRateAt(12, c), 0);
  });

  it('cosine: half wave by default, quarter point = (1+cos(π/4))/2, the floor with minLrRatio', () => {
    const c: LrScheduleConfig = { learningRate: 1, totalSteps: 10, warmupSteps: 2, type: 'cosine' };
    close(learningRateAt(2, c), 1, 'peak');
    close(learningRateAt(4, c), (1 + Math.SQRT1_2) / 2, 'progress 1/4');
    close(learningRateAt(6, c), 0.5, 'progress 1/2');
    assert.ok(Math.abs(learningRateAt(10, c)) < 1e-16, 'zero at the end');
    const m: LrScheduleConfig = { ...c, minLrRatio: 0.1 };
    close(learningRateAt(6, m), 0.55, 'midpoint with floor 0.1');
    close(learningRateAt(10, m), 0.1, 'floor at the end');
    // numCycles 1: a full wave, back at the peak at the end.
    close(learningRateAt(10, { ...c, numCycles: 1 }), 1, 'full wave');
    close(learningRateAt(6, { ...c, numCycles: 1 }), 0, 'full wave trough', 0);
  });

  it('cosine_with_restarts: 2 cycles over 8 steps restart at the peak at step W+4, 0 at the end', () => {
    const c: LrScheduleConfig = { learningRate: 1, totalSteps: 10, warmupSteps: 2, type: 'cosine_with_restarts', numCycles: 2 };
    close(learningRateAt(2, c), 1, 'peak');
    close(learningRateAt(4, c), 0.5, 'half of first cycle');
    close(learningRateAt(6, c), 1, 'restart');
    close(learningRateAt(7, c), (1 + Math.SQRT1_2) / 2, 'quarter of second cycle');
    assert.equal(learningRateAt(10, c), 0);
    close(learningRateAt(10, { ...c, minLrRatio: 0.2 }), 0.2, 'floor after the end');
  });

  it('polynomial: power 2 from lr to lrEnd, lrEnd past the end', () => {
    const c: LrScheduleConfig = { learningRate: 1, totalSteps: 10, warmupSteps: 2, type: 'polynomial', power: 2, lrEnd: 0.1 };
    close(learningRateAt(2, c), 1, 'peak');
    close(learningRateAt(6, c), 0.9 * 0.25 + 0.1, 'halfway: (lr-e)·0.5² + e');
    close(learningRateAt(10, c), 0.1, 'end');
    close(learningRateAt(11, c), 0.1, 'past the end');
    close(learningRateAt(6, { ...c, power: undefined, lrEnd: undefined }), 0.5 * (1 - 1e-7) + 1e-7, 'defaults: power 1, lr_end 1e-7');
  });

  it('step: warmup, then lr · gamma^⌊(s-W)/stepSize⌋', () => {
    const c: LrScheduleConfig = { learningRate: 1, totalSteps: 20, warmupSteps: 2, type: 'step', stepSize: 3, gamma: 0.5 };
    close(learningRateAt(1, c), 0.5, 'warmup');
    for (const [s, v] of [[2, 1], [4, 1], [5, 0.5], [7, 0.5], [8, 0.25], [11, 0.125]] as const) close(learningRateAt(s, c), v, `step ${s}`);
    close(learningRateAt(5, { ...c, gamma: undefined }), 0.1, 'default gamma 0.1');
  });

  it('cyclic: warmup to the base, then triangular base → peak → base with period 2·cycleSteps', () => {
    const c: LrScheduleConfig = { learningRate: 1, totalSteps: 40, warmupSteps: 2, type: 'cyclic', cycleSteps: 4, baseLrRatio: 0.2 };
    close(learningRateAt(1, c), 0.1, 'warmup ramps to the base 0.2');
    for (const [s, v] of [[2, 0.2], [4, 0.6], [6, 1], [8, 0.6], [10, 0.2], [14, 1]] as const) close(learningRateAt(s, c), v, `step ${s}`);
  });

  it('learningRates lists steps 0..N-1', () => {
    const lrs = learningRates({ ...base, type: 'linear' });
    assert.equal(lrs.length, 10);
    assert.equal(lrs[0], 0);
    close(lrs[9], 0.125e-3, 'last');
  });
});

describe('learningRateAt: invalid configurations', () => {
  it('names every bad field in one error', () => {
    assert.throws(() => learningRateAt(-1, { type: 'step', learningRate: 0, totalSteps: 1.5, warmupSteps: -2 }), (e: unknown) => {
      assert.ok(e instanceof AlignkitError);
      for (const f of ['step:', 'learningRate:', 'totalSteps:', 'warmupSteps:', 'stepSize: required']) assert.ok(e.message.includes(f), `${f} in ${e.message}`);
      return true;
    });
  });
  it('polynomial needs lrEnd below the learning rate; cyclic needs cycleSteps', () => {
    assert.match(validateLrSchedule({ ...base, type: 'polynomial', lrEnd: 1 }).join(), /lrEnd: must be >= 0 and below/);
    assert.match(validateLrSchedule({ ...base, type: 'cyclic' }).join(), /cycleSteps: required/);
    assert.deepEqual(validateLrSchedule({ ...base, type: 'cyclic', cycleSteps: 3 }), []);
  });
});

describe('warmupStepsFor (TrainingArguments.get_warmup_steps)', () => {
  it('warmup_steps wins when > 0, else ceil(ratio · total)', () => {
    assert.equal(warmupStepsFor(1000, 0.1, 0), 100);
    assert.equal(warmupStepsFor(1001, 0.1, 0), 101); // ceil(100.1)
    assert.equal(warmupStepsFor(1000, 0.1, 7), 7);
    assert.equal(warmupStepsFor(1000, 0, 0), 0);
    assert.equal(warmupStepsFor(3, 0.5, 0), 2);
    assert.throws(() => warmupStepsFor(10, 1.5, 0), /warmup_ratio must be in \[0, 1\]/);
  });
});

describe('lrScheduleFromKwargs (lr_scheduler_kwargs)', () => {
  it('maps transformers / torch kwarg names', () => {
    const r = lrScheduleFromKwargs('cosine', 1e-3, 100, 10, { min_lr: 1e-4, num_cycles: 0.5 });
    assert.deepEqual(r.problems, []);
    assert.ok(r.schedule);
    close(r.schedule.minLrRatio ?? NaN, 0.1, 'min_lr → ratio');
    const cyc = lrScheduleFromKwargs('cyclic', 1e-2, 100, 0, { step_size_up: 5, base_lr: 1e-3 });
    assert.equal(cyc.schedule?.cycleSteps, 5);
    close(cyc.schedule?.baseLrRatio ?? NaN, 0.1, 'base_lr → ratio');
  });
  it('rejects kwargs of another scheduler, duplicates and missing requirements', () => {
    const r = lrScheduleFromKwargs('linear', 1e-3, 100, 0, { num_cycles: 2 });
    assert.deepEqual(r.problems, [`num_cycles: not a parameter of the 'linear' scheduler (it takes none)`]);
    const d = lrScheduleFromKwargs('cosine', 1e-3, 100, 0, { min_lr: 1e-4, min_lr_rate: 0.1 });
    assert.match(d.problems.join(), /min_lr_rate: sets the same parameter as min_lr/);
    const s = lrScheduleFromKwargs('step', 1e-3, 100, 0, { gamma: 0.5 });
    assert.match(s.problems.join(), /^step_size: required/);
    const t = lrScheduleFromKwargs('step', 1e-3, 100, 0, { step_size: '3' });
    assert.match(t.problems.join(), /step_size: must be a finite number, got "3"/);
  });
});

interface Fixture {
  generator: string;
  transformers_version: string;
  torch_version: string;
  cases: Record<string, { reference: string; config: LrScheduleConfig; lrs: number[] }>;
}

describe('learningRateAt matches transformers / torch (fixtures/schedules.json)', () => {
  const path = fileURLToPath(new URL('../../fixtures/schedules.json', import.meta.url));
  const fx = JSON.parse(readFileSync(path, 'utf8')) as Fixture;
  it('covers every scheduler type', () => {
    const types = new Set(Object.values(fx.cases).map((c) => c.config.type));
    for (const t of ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts', 'polynomial', 'step', 'cyclic']) assert.ok(types.has(t as LrScheduleConfig['type']), t);
  });
  for (const [name, c] of Object.entries(fx.cases)) {
    it(`${name} (${c.reference}, ${c.lrs.length} steps)`, () => {
      assert.ok(c.lrs.length > 0);
      c.lrs.forEach((expected, step) => close(learningRateAt(step, c.config), expected, `${name} step ${step}`));
    });
  }
});
