// The rollout pieces the RL trainers share: the token layout, the ONE log-prob code path (generate's log-probs, the
// rollout's no-grad scoring and the training forward with gradients agree to 1e-5, at the sampling temperature,
// with left-padded prompts of different lengths), values at the right positions, prompt loading errors that name
// the file, line and prompt, the minibatch schedule, group baselines with dropped samples, and the plot.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeTinyChatModel } from '../../../src/demo/tiny_chat.ts';
import { loadModel, type PretrainedLM } from '../../../src/models/index.ts';
import { loadTokenizer, type Tokenizer } from '../../../src/tokenizer/index.ts';
import { intTensor, noGrad, reshape, tidy } from '../../../src/tensor/index.ts';
import { positionIdsFromMask } from '../../../src/generate/logprobs.ts';
import {
  broadcastRows, groupwise, layoutBatch, loadPrompts, minibatchPieces, repetitionRate, responseForward, rewardKlSvg, rolloutRowSeed,
  rowSums, sampleResponses, scoreResponses, type ScoredRollout,
} from '../../../src/trainers/rl/rollout.ts';
import { ppoAdvantages } from '../../../src/trainers/rl/ppo.ts';
import { grpoAdvantages } from '../../../src/trainers/rl/grpo.ts';
import { rlooRolloutAdvantages } from '../../../src/trainers/rl/rloo.ts';
import { assertClose } from '../../util.ts';

describe('RL rollouts', () => {
  let dir = '';
  let model: PretrainedLM;
  let tok: Tokenizer;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-rollout-'));
    writeTinyChatModel(join(dir, 'm'), { hidden: 32, layers: 2, heads: 4, kvHeads: 2, seed: 3 });
    model = loadModel(join(dir, 'm'), { trainable: true });
    model.attachValueHead(5);
    tok = loadTokenizer(join(dir, 'm'));
  });
  after(() => {
    model.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('layoutBatch: prompts left-padded, responses right-padded, masks (hand-checked)', () => {
    const b = layoutBatch([[1, 2, 3], [4]], [[7], [8, 9]], 0);
    assert.equal(b.promptColumns, 3);
    assert.equal(b.responseColumns, 2);
    assert.deepEqual([...b.inputIds], [1, 2, 3, 7, 0, /**/ 0, 0, 4, 8, 9]);
    assert.deepEqual([...b.attentionMask], [1, 1, 1, 1, 0, /**/ 0, 0, 1, 1, 1]);
    assert.deepEqual([...b.responseMask], [1, 0, 1, 1]);
    assert.deepEqual([...b.responseLengths], [1, 2]);
  });

  it('generate log-probs = rollout scoring = training forward (with grad) to 1e-5, at temperature 0.7', () => {
    const prompts = ['Say yes:', 'A much longer prompt, to force left padding:', 'Hi'].map((p) => tok.encode(p));
    const rows = [...prompts, ...prompts];
    const seeds = rows.map((_, r) => rolloutRowSeed(7, 0, r));
    const s = { responseLength: 12, temperature: 0.7, topK: 0, topP: 1, stopTokenIds: [258], padTokenId: 256, forwardBatchSize: 4 };
    const sampled = sampleResponses(model, rows, seeds, s);
    const R = Math.max(...sampled.ids.map((x) => x.length));
    const scored = scoreResponses(model, rows, sampled.ids, { temperature: 0.7, values: true, padTokenId: 256, forwardBatchSize: 5, R });
    const batch = layoutBatch(rows, sampled.ids, 256);
    const train = tidy(() => {
      const f = responseForward(model, batch, { temperature: 0.7, values: true });
      assert.ok(f.logps.requiresGrad, 'the training forward records gradients');
      return { lp: Float32Array.from(f.logps.toArray()), v: Float32Array.from((f.values as { toArray(): number[] }).toArray()), row: f.row, slot: f.slot };
    });
    let k = 0;
    sampled.ids.forEach((ids, r) => {
      const gen = sampled.generationLogps[r];
      assert.equal(gen.length, ids.length);
      assertClose(Array.from({ length: ids.length }, (_, j) => scored.logps[r * R + j]), gen, 1e-5, 0, `row ${r}: rollout scoring vs generate`);
      for (let j = 0; j < ids.length; j++, k++) {
        assert.equal(train.row[k], r);
        assert.equal(train.slot[k], j);
        assert.ok(Math.abs(train.lp[k] - gen[j]) <= 1e-5, `row ${r} token ${j}: training ${train.lp[k]} vs generate ${gen[j]}`);
        assert.ok(Math.abs(train.v[k] - (scored.values as Float32Array)[r * R + j]) <= 1e-5, `row ${r} token ${j}: values`);
      }
    });
    assert.equal(k, train.lp.length);
  });

  it('values sit at the position that predicts each response token (a row alone, unpadded)', () => {
    const prompt = tok.encode('A prompt:');
    const response = [10, 11, 12];
    const batch = layoutBatch([tok.encode('x'), prompt], [[5, 6, 7, 8], response], 256);
    const f = noGrad(() => tidy(() => { const r = responseForward(model, batch, { temperature: 1, values: true }); return Array.from((r.values as { toArray(): number[] }).toArray()).slice(4); }));
    const full = [...prompt, ...response];
    const alone = noGrad(() =>
      tidy(() => {
        const mask = intTensor(new Int32Array(full.length).fill(1), [1, full.length]);
        const h = model.forward(intTensor(full, [1, full.length]), { attentionMask: mask, positionIds: positionIdsFromMask(mask) });
        return Array.from(reshape(model.values(h), [full.length]).toArray());
      }),
    );
    // response token j is predicted at position len(prompt) + j − 1
    assertClose(f, [0, 1, 2].map((j) => alone[prompt.length + j - 1]), 1e-5, 0, 'values');
  });

  it('sampling is deterministic for a seed and differs between rows', () => {
    const p = tok.encode('Say yes:');
    const s = { responseLength: 6, temperature: 1, topK: 0, topP: 1, stopTokenIds: [258], padTokenId: 256, forwardBatchSize: 8 };
    const seeds = [0, 1, 2, 3].map((r) => rolloutRowSeed(1, 2, r));
    assert.equal(new Set(seeds).size, 4);
    const a = sampleResponses(model, [p, p, p, p], seeds, s);
    const b = sampleResponses(model, [p, p, p, p], seeds, { ...s, forwardBatchSize: 3 });
    assert.deepEqual(a.ids, b.ids, 'the batch split does not change a row');
    assert.ok(new Set(a.ids.map((x) => x.join(','))).size > 1);
  });

  it('loadPrompts: a prompt too long for the context names file, line and prompt; missing fields name the field', async () => {
    const f = join(dir, 'p.jsonl');
    writeFileSync(f, `${JSON.stringify({ prompt: 'short' })}\n${JSON.stringify({ prompt: 'x'.repeat(500) })}\n`);
    await assert.rejects(
      loadPrompts(f, tok, { maxPositions: 512, responseLength: 53 }),
      (e: Error) => /p\.jsonl:2: field 'prompt': the prompt 'x{10,}\.\.\.' has 500 tokens; with response_length 53 it needs 553 positions, but the model has 512/.test(e.message),
    );
    const g = join(dir, 'q.jsonl');
    writeFileSync(g, `${JSON.stringify({ prompt: 'ok' })}\n${JSON.stringify({ text: 'no prompt' })}\n${JSON.stringify({ prompt: 3 })}\n`);
    await assert.rejects(loadPrompts(g, tok, { maxPositions: 512, responseLength: 8 }), /q\.jsonl:2: field 'prompt': missing/);
    const skipped = await loadPrompts(g, tok, { maxPositions: 512, responseLength: 8, skipInvalid: true });
    assert.equal(skipped.ids.length, 1);
    assert.equal(skipped.skipped, 2);
    const t = join(dir, 'p.txt');
    writeFileSync(t, 'first\n\nsecond\n');
    const txt = await loadPrompts(t, tok, { maxPositions: 512, responseLength: 8 });
    assert.deepEqual(txt.texts, ['first', 'second']);
    assert.deepEqual(txt.lines, [1, 3]);
    const c = join(dir, 'chat.jsonl');
    writeFileSync(c, `${JSON.stringify({ prompt: [{ role: 'user', content: 'hi' }] })}\n`);
    const chat = await loadPrompts(c, tok, { maxPositions: 512, responseLength: 8, chatTemplate: '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}' });
    assert.equal(chat.texts[0], '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  });

  it('minibatchPieces: every epoch covers each row once; g pieces per step, the first flagged; seeded', () => {
    const p = minibatchPieces(10, 2, 2, 3, 5, 0);
    assert.equal(p.length, 2 * 2 * 3);
    for (let e = 0; e < 2; e++) {
      const rows = p.slice(e * 6, e * 6 + 6).flatMap((x) => x.rows);
      assert.deepEqual([...rows].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    }
    assert.deepEqual(p.map((x) => x.first), [true, false, false, true, false, false, true, false, false, true, false, false]);
    assert.deepEqual(minibatchPieces(10, 2, 2, 3, 5, 0), p);
    assert.notDeepEqual(minibatchPieces(10, 2, 2, 3, 5, 1), p, 'another iteration shuffles differently');
  });

  it('group baselines skip groups left with one sample; broadcast and row sums', () => {
    const scores = Float32Array.from([1, 3, 5, 2]);
    const group = Int32Array.from([0, 0, 1, 2]);
    const a = groupwise(scores, group, (s) => s.map((v) => v - (s[0] + s[1]) / 2));
    assert.deepEqual([...a], [-1, 1, 0, 0]);
    const mask = Uint8Array.from([1, 1, 0, 1, 0, 0]);
    assert.deepEqual([...broadcastRows(Float32Array.from([2, 3]), mask, 3)], [2, 2, 0, 3, 0, 0]);
    assert.deepEqual([...rowSums(Float32Array.from([1, 2, 9, 4, 9, 9]), mask, 2, 3)], [3, 4]);
  });

  it('repetitionRate counts repeated token trigrams', () => {
    assert.equal(repetitionRate([1, 2, 3, 4]), 0);
    assert.equal(repetitionRate([1, 2, 1, 2, 1, 2]), 2 / 4); // trigrams 121 212 121 212: two repeats
    assert.equal(repetitionRate([5, 5]), 0);
  });

  it('rewardKlSvg stacks the score and KL plots', () => {
    const svg = rewardKlSvg('ppo', [{ iteration: 1, step: 1, score: 0.1, kl: 0, klCoef: 0.05 }, { iteration: 2, step: 5, score: 0.6, kl: 1.2, klCoef: 0.05 }]);
    assert.match(svg, /^<svg xmlns/);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.match(svg, /objective\/kl/);
  });
});

describe('method advantages of hand-made rollouts', () => {
  const rollout = (o: Partial<ScoredRollout>): ScoredRollout => ({
    iteration: 0, rows: 1, R: 2, promptIds: [[1]], responseIds: [[2, 3]], mask: Uint8Array.from([1, 1]), group: Int32Array.from([0]),
    scores: Float32Array.from([1]), logps: Float32Array.from([-1, -2]), refLogps: Float32Array.from([-1, -2]), values: Float32Array.from([0.5, 0.2]), klCoef: 0.05,
    ...o,
  });

  it('PPO: score on the last token, GAE (γ = λ = 1), whitened advantages, raw returns', () => {
    // rewards [0, 1]; δ1 = 1 − 0.2 = 0.8 (terminal), δ0 = 0 + 0.2 − 0.5 = −0.3, A0 = −0.3 + 0.8 = 0.5; returns A + V = [1, 1]
    const a = ppoAdvantages({ reward_clip: null, kl_estimator: 'k1', whiten_rewards: false, gamma: 1, lam: 1 }, rollout({}));
    assertClose(a.returns, [1, 1], 1e-6);
    // whiten([0.5, 0.8]): mean 0.65, unbiased std sqrt(0.045) = 0.212132 → ∓0.707107
    assertClose(a.advantages, [-0.707107, 0.707107], 1e-5);
    assert.equal(a.metrics['objective/non_score_reward'], 0);
    // a KL of 1 nat on the first token (k1: −1 − (−2)) costs 0.05 there; reward_clip clips the score 3 to 2
    const b = ppoAdvantages({ reward_clip: 2, kl_estimator: 'k1', whiten_rewards: false, gamma: 1, lam: 1 }, rollout({ scores: Float32Array.from([3]), refLogps: Float32Array.from([-2, -2]) }));
    assertClose([b.metrics['objective/non_score_reward'], b.metrics['objective/rlhf_reward']], [-0.05, 1.95], 1e-6);
    // returns: r = [−0.05, 2]: A1 = 2 − 0.2 = 1.8, A0 = −0.05 + 0.2 − 0.5 + 1.8 = 1.45 → returns [1.95, 2]
    assertClose(b.returns, [1.95, 2], 1e-6);
  });

  it('RLOO: score − β·KL, minus the mean of the group\'s others; a lone survivor gets 0', () => {
    const r = rollout({
      rows: 3, R: 1, mask: Uint8Array.from([1, 1, 1]), group: Int32Array.from([0, 0, 1]), scores: Float32Array.from([1, 0, 5]),
      logps: Float32Array.from([-1, -3, -1]), refLogps: Float32Array.from([-3, -3, -1]), values: null, klCoef: 0.1, promptIds: [[1], [1], [1]], responseIds: [[2], [2], [2]],
    });
    // KL (k1) per row [2, 0, 0] → rlhf [0.8, 0, 5]; group 0: ±0.8; group 1 has one sample left
    const a = rlooRolloutAdvantages({ kl_estimator: 'k1', normalize_reward: false, normalize_advantage: false }, r);
    assertClose(a.perRow, [0.8, -0.8, 0], 1e-6);
    assertClose([a.metrics['objective/non_score_reward'], a.metrics['objective/rlhf_reward']], [-0.2 / 3, 5.8 / 3], 1e-6);
  });

  it('GRPO: (r − mean) / (std + 1e-4) within each group, with the group statistics', () => {
    const g = grpoAdvantages({ scores: Float32Array.from([1, 0, 0, 1, 2, 2]), group: Int32Array.from([0, 0, 0, 0, 1, 1]) }, true);
    // group 0: mean 0.5, unbiased std sqrt(1/3) = 0.57735; group 1: all equal → 0
    const x = 0.5 / (Math.sqrt(1 / 3) + 1e-4);
    assertClose(g.perRow, [x, -x, -x, x, 0, 0], 1e-5);
    assertClose([g.rewardStd, g.fracZeroStd], [Math.sqrt(1 / 3) / 2, 0.5], 1e-6);
    assertClose(grpoAdvantages({ scores: Float32Array.from([1, 0]), group: Int32Array.from([0, 0]) }, false).perRow, [0.5, -0.5], 1e-7);
  });
});
