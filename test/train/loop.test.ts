// The shared training loop on a toy task: exact resume from any checkpoint (weights, optimizer, data position,
// RNG), atomic checkpoints with rotation, NaN/Inf skip-and-count and abort, evaluation, early stopping that
// restores the best weights, and loss normalisation that makes accumulation invariant.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AdamW } from '../../src/optim/index.ts';
import { runTrainingLoop, NonFiniteError, type LoopOptions, type StopCriterion } from '../../src/train/loop.ts';
import { listCheckpoints, readTrainerState } from '../../src/train/checkpoint.ts';
import { ToyTask } from './toy_task.ts';

const silent = { log: () => {} };

function options(outputDir: string, over: Partial<LoopOptions> = {}): LoopOptions {
  return {
    outputDir, totalSteps: 12, gradientAccumulationSteps: 2, maxGradNorm: 1, lrAt: (s) => 0.05 * (1 - s / 12), loggingSteps: 1,
    evalSteps: null, evaluateAtEnd: false, saveSteps: 4, saveTotalLimit: null, metricForBestModel: 'eval_loss', greaterIsBetter: false,
    loadBestModelAtEnd: false, earlyStopping: null, maxNanSteps: 3, resumeFrom: null, config: { toy: true }, ...over,
  };
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'alignkit-loop-'));
}

async function train(dir: string, over: Partial<LoopOptions> = {}, setup?: (t: ToyTask) => void): Promise<{ w: Float32Array; task: ToyTask }> {
  const task = ToyTask.make(1);
  setup?.(task);
  const opt = new AdamW([task.w], { lr: 0.05 });
  await runTrainingLoop(task, opt, silent, options(dir, over));
  return { w: Float32Array.from(task.w.data as Float32Array), task };
}

test('resume from any checkpoint ends bit-identical to an uninterrupted run', async () => {
  const full = tmp();
  const parts = tmp();
  try {
    const { w: want } = await train(full);
    assert.deepEqual(listCheckpoints(full).map((c) => c.step), [4, 8]);
    // stop after 8 steps (as a crash after checkpoint-8 would), then resume twice from different points
    await train(parts, { totalSteps: 12, lrAt: (s) => 0.05 * (1 - s / 12) }, (t) => {
      t.poisonAt = new Set(); // healthy
    });
    for (const from of ['checkpoint-4', 'checkpoint-8']) {
      const { w } = await train(parts, { resumeFrom: join(parts, from) });
      assert.deepEqual(Array.from(w), Array.from(want), `resumed from ${from}`);
    }
    const { w: latest, task } = await train(parts, { resumeFrom: 'latest' });
    assert.deepEqual(Array.from(latest), Array.from(want));
    assert.equal(task.loaded.length, 1);
    const st = readTrainerState(join(parts, 'checkpoint-8'));
    assert.equal(st.globalStep, 8);
    assert.deepEqual(st.config, { toy: true });
    assert.equal(st.optimizer.kind, 'AdamW');
  } finally {
    rmSync(full, { recursive: true, force: true });
    rmSync(parts, { recursive: true, force: true });
  }
});

test('checkpoints are atomic: staging leftovers are ignored and removed; rotation keeps the newest', async () => {
  const dir = tmp();
  try {
    mkdirSync(join(dir, '.checkpoint-staging-99-abc'));
    writeFileSync(join(dir, '.checkpoint-staging-99-abc', 'half.bin'), 'x');
    mkdirSync(join(dir, 'checkpoint-100')); // no trainer_state.json: incomplete, never resumed from
    await train(dir, { saveSteps: 2, saveTotalLimit: 2 });
    assert.ok(!existsSync(join(dir, '.checkpoint-staging-99-abc')));
    assert.deepEqual(listCheckpoints(dir).map((c) => c.step), [8, 10]);
    assert.ok(readdirSync(dir).every((f) => !f.includes('staging')));
    await assert.rejects(() => train(tmp(), { resumeFrom: 'latest' }), /no complete checkpoint/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a NaN loss skips the step and is counted; too many abort with a message naming the step', async () => {
  const dir = tmp();
  try {
    const { task } = await train(dir, { saveSteps: null }, (t) => (t.poisonAt = new Set([3])));
    assert.ok(task.w.data.every((v) => Number.isFinite(v)));
    const opt = new AdamW([task.w]);
    const t2 = ToyTask.make(1);
    t2.poisonAt = new Set([1, 3, 5, 7, 9]);
    await assert.rejects(
      () => runTrainingLoop(t2, new AdamW([t2.w]), silent, options(dir, { saveSteps: null, maxNanSteps: 2 })),
      (e: unknown) => e instanceof NonFiniteError && /aborted at step 3: 3 steps had a non-finite loss/.test(e.message),
    );
    opt.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('early stopping stops after `patience` evaluations without improvement and restores the best weights', async () => {
  const dir = tmp();
  try {
    // a criterion whose verdicts are scripted: improve at evals 1 and 2, then never
    let calls = 0;
    const stop: StopCriterion = {
      update: () => {
        calls++;
        return { improved: calls <= 2, shouldStop: calls >= 4 };
      },
      state: () => ({ calls }),
      restore: () => {},
    };
    const { task } = await train(dir, { evalSteps: 2, saveSteps: null, earlyStopping: stop, totalSteps: 40 });
    assert.equal(calls, 4);
    assert.equal(task.evalCalls, 4);
    // best = eval 2 = step 4: saved because it improved, and loaded back at the end
    assert.deepEqual(task.loaded, [join(dir, 'checkpoint-4')]);
    assert.equal(readTrainerState(join(dir, 'checkpoint-4')).best?.checkpoint, 'checkpoint-4');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('gradient accumulation: 1 row x 6 micro-batches equals 6 rows x 1 micro-batch', async () => {
  const a = ToyTask.make(2, 24, 1);
  const b = ToyTask.make(2, 24, 6);
  // jitter draws differ between the two layouts (one draw of 6 rows vs six of 1): disable it
  a.jitter = false;
  b.jitter = false;
  const dir = tmp();
  try {
    const gradsOf = async (t: ToyTask, accum: number) => {
      const opt = new AdamW([t.w], { lr: 0 });
      const grads: number[][] = [];
      const wrapped = { ...t, nextMicroBatch: () => t.nextMicroBatch(), lossUnits: t.lossUnits.bind(t), tokens: t.tokens.bind(t), epoch: () => 0, saveModel: () => {}, loadModel: () => {}, state: t.state.bind(t), restore: t.restore.bind(t),
        forwardBackward: (mb: Parameters<ToyTask['forwardBackward']>[0], n: number) => t.forwardBackward(mb, n), regularize: () => {
          grads.push(t.w.grad ? t.w.grad.toArray() : []);
          return 0;
        } };
      await runTrainingLoop(wrapped, opt, silent, options(dir, { totalSteps: 2, gradientAccumulationSteps: accum, saveSteps: null, maxGradNorm: null }));
      return grads;
    };
    const ga = await gradsOf(a, 6);
    const gb = await gradsOf(b, 1);
    assert.equal(ga.length, 2);
    for (let s = 0; s < 2; s++) for (let i = 0; i < ga[s].length; i++) assert.ok(Math.abs(ga[s][i] - gb[s][i]) < 1e-5 * Math.max(1, Math.abs(gb[s][i])), `step ${s} grad[${i}] ${ga[s][i]} vs ${gb[s][i]}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
