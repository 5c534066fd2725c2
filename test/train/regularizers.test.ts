// Forgetting safeguards: the L2-to-initial-weights and EWC gradients against their formulas, the Fisher
// diagonal against per-sample squared gradients computed by hand, and trainable-module selection.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { ForgettingRegularizer, selectTrainable } from '../../src/train/regularizers.ts';

test('L2-to-init adds λ(θ−θ0) to the gradient and returns (λ/2)‖θ−θ0‖²', async () => {
  const w = T.untracked(() => T.tensor([1, 2, 3])).requireGrad();
  const reg = await ForgettingRegularizer.create(new Map([['w', w]]), { l2InitCoef: 0.5, ewcCoef: 0 });
  (w.data as Float32Array).set([1.5, 2, 2]); // θ − θ0 = [0.5, 0, −1]
  const penalty = reg.addGradients();
  assert.ok(Math.abs(penalty - 0.25 * (0.25 + 1)) < 1e-7);
  assert.deepEqual(w.grad?.toArray(), [0.25, 0, -0.5]);
});

test('EWC: Fisher = mean of squared per-sample gradients at θ0; gradient λ·F·(θ−θ0)', async () => {
  // loss_i(w) = (w · x_i)²/2  →  ∂/∂w = (w·x_i) x_i
  const w = T.untracked(() => T.tensor([1, -1])).requireGrad();
  const xs = [[1, 2], [3, 1]];
  const reg = await ForgettingRegularizer.create(new Map([['w', w]]), {
    l2InitCoef: 0,
    ewcCoef: 2,
    fisherBatches: async function* () {
      yield* xs;
    },
    lossOf: (x: number[]) => {
      const d = T.sum(T.mul(w, T.tensor(x)));
      return T.mulScalar(T.mul(d, d), 0.5);
    },
  });
  // per-sample grads: (1−2)·[1,2] = [−1,−2];  (3−1)·[3,1] = [6,2]  → F = ([1,4] + [36,4]) / 2 = [18.5, 4]
  assert.deepEqual(Array.from(reg.fisherOf('w') ?? []), [18.5, 4]);
  assert.ok(w.grad === null || w.grad.toArray().every((v) => v === 0), 'gradients are left zeroed');
  (w.data as Float32Array).set([1.1, -1]);
  reg.addGradients();
  const g = w.grad?.toArray() ?? [];
  assert.ok(Math.abs(g[0] - 2 * 18.5 * 0.1) < 1e-5);
  assert.equal(g[1], 0);
});

test('selectTrainable freezes everything not matched and names patterns that match nothing', () => {
  const mk = () => T.untracked(() => T.zeros([2])).requireGrad();
  const named = new Map([['model.layers.0.mlp.up_proj.weight', mk()], ['model.layers.0.self_attn.q_proj.weight', mk()], ['lm_head.weight', mk()]]);
  const sel = selectTrainable(named, ['mlp', '/^lm_head/']);
  assert.deepEqual([...sel.keys()], ['model.layers.0.mlp.up_proj.weight', 'lm_head.weight']);
  assert.equal(named.get('model.layers.0.self_attn.q_proj.weight')?.requiresGrad, false);
  assert.throws(() => selectTrainable(named, ['vision_tower']), /'vision_tower' match no parameter/);
});
