// Golden agreement with Hugging Face transformers: tiny random checkpoints of every supported family
// (fixtures/models, made by fixtures/make_model_fixtures.py) and the shared tiny Llama 2 export. Per-token
// log-probs within 1e-4 of HF (unpadded, right-padded and left-padded batches), and greedy continuations
// identical to HF generate(), computed both by full recompute and with the KV cache.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { SKIP_NO_ASSETS, assetsDir } from '../tokenizer/assets.ts';
import { CAUSAL_CASES, fixtureDir, greedyCached, greedyFull, ids2d, maxDelta, readRef, tokenLogprobs } from './helpers.ts';

const TOL = 1e-4;

for (const name of CAUSAL_CASES) {
  test(`golden ${name}: log-probs, padding and greedy decoding match transformers`, (t) => {
    const ref = readRef(name);
    const model = loadModel(fixtureDir(name), { trainable: false });
    try {
      assert.equal(model.config.modelType, ref.model_type);
      let worst = 0;
      for (const s of ref.sequences ?? []) {
        const lp = tokenLogprobs(model, [s.ids])[0];
        const d = maxDelta(lp, s.logprobs);
        assert.ok(d <= TOL, `${name}: unpadded log-probs differ by ${d}`);
        worst = Math.max(worst, d);
        const logits = T.noGrad(() => T.tidy(() => {
          const h = model.forward(ids2d([s.ids]));
          return model.logits(T.narrow(h, 1, s.ids.length - 1, 1)).toArray();
        }));
        const dl = maxDelta(logits, s.last_logits);
        assert.ok(dl <= TOL, `${name}: last-position logits differ by ${dl}`);
      }
      for (const side of ['right', 'left'] as const) {
        const p = ref.padded?.[side];
        assert.ok(p);
        // Positions derived from the mask (the default) and given explicitly must both match HF.
        for (const positions of [undefined, p.positions]) {
          const lp = tokenLogprobs(model, p.ids, p.mask, positions);
          p.ids.forEach((row, b) => {
            const d = maxDelta(lp[b], p.logprobs[b], (i) => p.mask[b][i] === 1 && p.mask[b][i + 1] === 1);
            assert.ok(d <= TOL, `${name}: ${side}-padded row ${b} log-probs differ by ${d}`);
            worst = Math.max(worst, d);
          });
        }
      }
      for (const g of ref.greedy ?? []) {
        assert.deepEqual(greedyFull(model, g.prompt_ids, g.mask, g.new_tokens), g.without_cache, `${name}: greedy (full recompute) differs from HF`);
        assert.deepEqual(greedyCached(model, g.prompt_ids, g.mask, g.new_tokens), g.with_cache, `${name}: greedy (KV cache) differs from HF`);
      }
      t.diagnostic(`${name}: max |Δ logprob| vs transformers ${ref.transformers_version} = ${worst.toExponential(2)}`);
    } finally {
      model.dispose();
    }
  });
}

interface SharedRef {
  cases: { input_ids: number[]; next_token_nll: number[]; top5_per_position: { ids: number[]; logits: number[] }[]; greedy_16_new_tokens: number[]; last_position_logits_first8: number[] }[];
}

test('golden: shared tiny Llama 2 export (rope_parameters config) matches its transformers reference', (t) => {
  const base = assetsDir ? join(assetsDir, 'models', 'ollama-llama2-tiny-random') : null;
  if (!base || !existsSync(join(base, 'hf_export', 'model.safetensors'))) {
    t.skip(SKIP_NO_ASSETS);
    return;
  }
  const ref = JSON.parse(readFileSync(join(base, 'reference_outputs.hf-transformers.json'), 'utf8')) as SharedRef;
  const model: PretrainedLM = loadModel(join(base, 'hf_export'), { trainable: false });
  try {
    let worst = 0;
    for (const [ci, c] of ref.cases.entries()) {
      const nll = tokenLogprobs(model, [c.input_ids])[0].map((x) => -x);
      const d = maxDelta(nll, c.next_token_nll);
      assert.ok(d <= TOL, `case ${ci}: NLL differs by ${d}`);
      worst = Math.max(worst, d);
      const logits = T.noGrad(() => T.tidy(() => model.logits(model.forward(ids2d([c.input_ids]))).toArray()));
      const V = model.config.vocabSize;
      c.top5_per_position.forEach((top, pos) => {
        const row = logits.slice(pos * V, pos * V + V);
        const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, 5);
        assert.deepEqual(order, top.ids, `case ${ci} position ${pos}: top-5 ids`);
        const dl = maxDelta(order.map((i) => row[i]), top.logits);
        assert.ok(dl <= TOL, `case ${ci} position ${pos}: top-5 logits differ by ${dl}`);
      });
      if (ci === 0 && existsSync(join(base, 'hf_export', 'logits_case0_9x32000.f32'))) {
        const buf = readFileSync(join(base, 'hf_export', 'logits_case0_9x32000.f32'));
        const full = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
        const dl = maxDelta(logits, Array.from(full));
        assert.ok(dl <= TOL, `case 0: full logits differ by ${dl}`);
        t.diagnostic(`shared tiny llama: full [9, 32000] logits max |Δ| = ${dl.toExponential(2)}`);
      }
      const prompt = [c.input_ids];
      const mask = [c.input_ids.map(() => 1)];
      assert.deepEqual(greedyCached(model, prompt, mask, 16)[0], c.greedy_16_new_tokens, `case ${ci}: greedy (KV cache)`);
      assert.deepEqual(greedyFull(model, prompt, mask, 16)[0], c.greedy_16_new_tokens, `case ${ci}: greedy (full recompute)`);
    }
    t.diagnostic(`shared tiny llama: max |Δ NLL| = ${worst.toExponential(2)}`);
  } finally {
    model.dispose();
  }
});
