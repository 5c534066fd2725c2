// The sampled KL(π‖π_ref) that DPO logs as objective/kl: zero against itself, equal to the direct Monte-Carlo
// sum over the same samples against another model, independent of the batch size.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadModel } from '../../src/models/index.ts';
import { generate, sequenceLogprobs } from '../../src/generate/index.ts';
import { intTensor, noGrad, tidy } from '../../src/tensor/index.ts';
import { sampledKl } from '../../src/trainers/sampled_kl.ts';
import type { CausalLM } from '../../src/models/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-skl-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const policy = loadModel(writeTinyChatModel(join(dir, 'a'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 3 }), { trainable: false });
const other = loadModel(writeTinyChatModel(join(dir, 'b'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 4 }), { trainable: false });
const prompts = [[10, 20, 30], [40, 41], [7], [99, 98, 97, 96], [5, 6, 7]];
const run = (m: CausalLM) => <T>(fn: (model: CausalLM) => T): T => noGrad(() => fn(m));

test('against itself the sampled KL is zero (k1 and k3)', () => {
  const r = sampledKl(policy, run(policy), prompts, { maxNewTokens: 8, seed: 1 });
  assert.equal(r.samples, prompts.length);
  assert.ok(r.responseLength > 0);
  assert.ok(Math.abs(r.kl) < 1e-4, `kl ${r.kl}`);
  assert.ok(Math.abs(r.klK3) < 1e-6, `k3 ${r.klK3}`);
});

test('against another model it equals the Monte-Carlo sum over the same samples, for any batch size', () => {
  const r = sampledKl(policy, run(other), prompts, { maxNewTokens: 8, seed: 2, batchSize: 2 });
  // the same per-row sampling streams, drawn directly
  const seeds = prompts.map((_, i) => 2 * 1_000_003 + i);
  const gen = generate(policy, { inputIds: prompts, maxNewTokens: 8, temperature: 1, seed: seeds, returnLogprobs: true });
  let expected = 0;
  let tokens = 0;
  gen.forEach((g, i) => {
    const full = [...prompts[i], ...g.ids];
    const lp = noGrad(() => tidy(() => sequenceLogprobs(other, intTensor(full, [1, full.length])).toArray()));
    const lpRef = lp.slice(prompts[i].length - 1).reduce((a, b) => a + b, 0);
    const lpPol = (g.logprobs ?? []).reduce((a, b) => a + b, 0);
    expected += (lpPol - lpRef) / prompts.length;
    tokens += g.ids.length;
  });
  assert.ok(Math.abs(r.kl - expected) < 1e-3, `kl ${r.kl} vs direct ${expected}`);
  assert.ok(r.kl > 0.01, 'two different random models are far apart');
  assert.ok(r.klK3 > 0);
  assert.ok(Math.abs(r.responseLength - tokens / prompts.length) < 1e-9);
  const single = sampledKl(policy, run(other), prompts, { maxNewTokens: 8, seed: 2, batchSize: 1 });
  assert.ok(Math.abs(single.kl - r.kl) < 1e-3, `batch 1 ${single.kl} vs batch 2 ${r.kl}`);
  const reseeded = sampledKl(policy, run(other), prompts, { maxNewTokens: 8, seed: 3, batchSize: 2 });
  assert.notEqual(reseeded.kl, r.kl, 'another seed draws other samples');
});
