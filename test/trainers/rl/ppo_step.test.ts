// One full PPO update on the tiny Llama with a value head equals PyTorch's (fixtures/make_ppo_fixtures.py: TRL
// PPOTrainer's k1 KL penalty, token rewards, GAE with γ = 1 / λ = 0.95, masked whitening, clipped policy + value loss
// with vf_coef 0.1, clip_grad_norm_ 1.0, AdamW with decay / no-decay groups): every intermediate array, the losses and
// metrics, the gradient norm, and every updated parameter (value head included) within 1e-5 relative.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { positionIdsFromMask, tokenLogprobs } from '../../../src/generate/logprobs.ts';
import { openSafetensors } from '../../../src/io/safetensors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { AdamW, clipGradNorm } from '../../../src/optim/index.ts';
import { add, indexSelect, intTensor, mul, reshape, tidy, type Tensor } from '../../../src/tensor/index.ts';
import { weightDecayGroups } from '../../../src/train/loop.ts';
import { gae, selectMasked, tokenRewards, whiten } from '../../../src/trainers/rl/advantages.ts';
import { ppoPolicyLoss, ppoValueLoss } from '../../../src/trainers/rl/core.ts';
import { klPerToken } from '../../../src/trainers/rl/kl.ts';
import { fixtureDir } from '../../models/helpers.ts';

const FIX = join(fixtureDir('llama'), '..', '..', 'ppo');

interface Ref {
  config: {
    kl_coef: number; gamma: number; lam: number; cliprange: number; cliprange_value: number; vf_coef: number;
    learning_rate: number; weight_decay: number; max_grad_norm: number; adam_betas: [number, number]; adam_eps: number;
  };
  batch: { seq: number; response_seq: number; queries: number[][]; responses: number[][]; input_ids: number[][]; attention_mask: number[][]; response_mask: number[][] };
  value_head_init: { weight: number[]; bias: number[] };
  inputs: { old_logps: number[][]; old_values: number[][]; ref_logps: number[][]; scores: number[] };
  intermediate: Record<'kl' | 'non_score_rewards' | 'rewards' | 'advantages' | 'returns' | 'whitened_advantages' | 'new_logps' | 'new_values', number[][]>;
  metrics: { pg_loss: number; vf_loss: number; loss: number; pg_clipfrac: number; vf_clipfrac: number; approxkl: number; ratio_mean: number; grad_norm: number };
}
const ref = JSON.parse(readFileSync(join(FIX, 'llama_ppo_step.json'), 'utf8')) as Ref;
const flat = (m: number[][]): Float32Array => Float32Array.from(m.flat());

/** Asserts ‖got − want‖₂ ≤ rtol · ‖want‖₂ and every |got − want| ≤ worst · max|want| (+ a tiny absolute floor). */
function assertRel(got: ArrayLike<number>, want: ArrayLike<number>, what: string, rtol = 1e-5, worst = 5e-5): void {
  assert.equal(got.length, want.length, `${what}: length`);
  let num = 0;
  let den = 0;
  let maxDiff = 0;
  let maxWant = 0;
  for (let i = 0; i < got.length; i++) {
    const d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
    maxDiff = Math.max(maxDiff, Math.abs(d));
    maxWant = Math.max(maxWant, Math.abs(want[i]));
  }
  assert.ok(Math.sqrt(num) <= rtol * Math.sqrt(den) + 1e-12, `${what}: relative 2-norm error ${Math.sqrt(num / Math.max(den, 1e-30))}`);
  assert.ok(maxDiff <= worst * maxWant + 1e-12, `${what}: worst element off by ${maxDiff / Math.max(maxWant, 1e-30)} of the scale`);
}

function scalar(got: number, want: number, what: string, rtol = 1e-5): void {
  assert.ok(Math.abs(got - want) <= rtol * Math.abs(want) + 1e-9, `${what}: ${got} vs PyTorch ${want}`);
}

test('one PPO update (rewards, GAE, whitening, clipped losses, clipping, AdamW) equals PyTorch', () => {
  const { config: c, batch, inputs } = ref;
  const B = batch.input_ids.length;
  const T = batch.seq;
  const R = batch.response_seq;
  const mask = Uint8Array.from(batch.response_mask.flat());

  // ---- rollout math on plain arrays ([B, R] response layout)
  const oldLogps = flat(inputs.old_logps);
  const refLogps = flat(inputs.ref_logps);
  const oldValues = flat(inputs.old_values);
  const kl = klPerToken(oldLogps, refLogps, 'k1').map((v, i) => (mask[i] ? v : 0));
  assertRel(kl, flat(ref.intermediate.kl), 'kl');
  const { rewards, nonScore } = tokenRewards(Float32Array.from(inputs.scores), kl, mask, B, R, c.kl_coef);
  assertRel(nonScore, flat(ref.intermediate.non_score_rewards), 'non-score rewards');
  assertRel(rewards, flat(ref.intermediate.rewards), 'rewards');
  const { advantages, returns } = gae(rewards, oldValues, mask, B, R, c.gamma, c.lam);
  assertRel(advantages, flat(ref.intermediate.advantages), 'advantages');
  assertRel(returns, flat(ref.intermediate.returns), 'returns');
  const whitened = whiten(advantages, mask).map((v, i) => (mask[i] ? v : 0));
  assertRel(whitened, flat(ref.intermediate.whitened_advantages), 'whitened advantages');

  // ---- the model: tiny Llama + value head with the fixture's initial weights
  const model = loadModel(fixtureDir('llama'), { trainable: true });
  try {
    const head = model.attachValueHead();
    (head.weight.data as Float32Array).set(ref.value_head_init.weight);
    (head.bias.data as Float32Array).set(ref.value_head_init.bias);
    model.setTrainable(true);
    const named = model.namedParameters();
    const opt = new AdamW(weightDecayGroups(named, c.weight_decay), { lr: c.learning_rate, beta1: c.adam_betas[0], beta2: c.adam_betas[1], eps: c.adam_eps });

    // The hidden state that predicts response token j of row b sits at ids position q_b + j − 1; the value of the
    // state before that token is read there too.
    const positions: number[] = [];
    const targets: number[] = [];
    batch.responses.forEach((resp, b) => resp.forEach((tok, j) => {
      positions.push(b * T + batch.queries[b].length + j - 1);
      targets.push(tok);
    }));

    const metrics = tidy(() => {
      const ids = intTensor(batch.input_ids.flat(), [B, T]);
      const attn = intTensor(batch.attention_mask.flat(), [B, T]);
      const hidden = model.forward(ids, { attentionMask: attn, positionIds: positionIdsFromMask(attn) }); // [B, T, H]
      const H = model.config.hiddenSize;
      const at = intTensor(positions);
      const picked = indexSelect(reshape(hidden, [B * T, H]), 0, at); // [N, H]
      const newLogps = tokenLogprobs(model, picked, intTensor(targets)); // [N]
      const newValues = indexSelect(reshape(model.values(hidden), [B * T]), 0, at); // [N]
      assertRel(newLogps.data as Float32Array, selectMasked(flat(ref.intermediate.new_logps), mask), 'new log-probs');
      assertRel(newValues.data as Float32Array, selectMasked(flat(ref.intermediate.new_values), mask), 'new values');

      const pg = ppoPolicyLoss(newLogps, selectMasked(oldLogps, mask), selectMasked(whitened, mask), c.cliprange);
      const vf = ppoValueLoss(newValues, selectMasked(oldValues, mask), selectMasked(returns, mask), c.cliprange_value);
      const loss: Tensor = add(pg.loss, mul(vf.loss, c.vf_coef));
      loss.backward();
      return {
        pg_loss: pg.loss.item(), vf_loss: vf.loss.item(), loss: loss.item(), pg_clipfrac: pg.clipfrac, vf_clipfrac: vf.clipfrac,
        approxkl: pg.approxKl, ratio_mean: pg.ratioMean,
      };
    });
    const want = ref.metrics;
    for (const k of ['pg_loss', 'vf_loss', 'loss', 'approxkl', 'ratio_mean'] as const) scalar(metrics[k], want[k], k);
    // the clip fractions are counts over 12 tokens: exact
    assert.equal(metrics.pg_clipfrac, want.pg_clipfrac);
    assert.ok(Math.abs(metrics.vf_clipfrac - want.vf_clipfrac) < 1e-7, `vf_clipfrac ${metrics.vf_clipfrac} vs ${want.vf_clipfrac}`);
    assert.ok(want.pg_clipfrac > 0 && want.vf_clipfrac > 0, 'the fixture exercises both clips');

    const clip = clipGradNorm([...named.values()], c.max_grad_norm);
    scalar(clip.totalNorm, want.grad_norm, 'grad norm');
    assert.ok(clip.clipped);
    opt.step();

    const after = openSafetensors(join(FIX, 'llama_after_ppo_step.safetensors'));
    try {
      assert.equal(after.tensors.length, named.size, 'the fixture holds every parameter');
      for (const [name, t] of named) assertRel(t.data as Float32Array, after.load(name).toArray(), `after the step: ${name}`);
    } finally {
      after.close();
    }
  } finally {
    model.dispose();
  }
});
