// Random initialisation: every family builds, is deterministic for a seed, has the declared statistics, and
// saves as a Hugging Face folder that loads back to the same model.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { SUPPORTED_MODEL_TYPES, initModel, loadModel } from '../../src/models/index.ts';
import { ids2d, maxDelta, tokenLogprobs } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-init-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

for (const arch of SUPPORTED_MODEL_TYPES) {
  test(`initModel ${arch}: deterministic, HF folder round trip`, () => {
    const dir = join(tmp, arch);
    const opts = { arch, hidden: 24, layers: 2, heads: 4, kvHeads: arch === 'gpt2' ? 4 : 2, intermediate: 40, vocab: 50, seed: 11, maxPositions: 64 };
    const a = initModel({ ...opts, dir });
    const b = initModel(opts);
    const c = initModel({ ...opts, seed: 12 });
    try {
      const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(cfg.model_type, arch);
      const seq = [[1, 2, 3, 4, 5, 6]];
      const la = tokenLogprobs(a, seq)[0];
      assert.equal(maxDelta(tokenLogprobs(b, seq)[0], la), 0, 'same seed, same model');
      assert.ok(maxDelta(tokenLogprobs(c, seq)[0], la) > 0, 'another seed, another model');
      // near-uniform predictions at init: log-probs close to -log(vocab)
      for (const x of la) assert.ok(Math.abs(x + Math.log(50)) < 0.5, `init log-prob ${x}`);
      const emb = a.embedWeight().toArray();
      const std = Math.sqrt(emb.reduce((s, x) => s + x * x, 0) / emb.length);
      assert.ok(Math.abs(std - 0.02) < 0.003, `embedding std ${std}`);
      const back = loadModel(dir);
      try {
        assert.equal(back.numParameters(), a.numParameters());
        assert.equal(maxDelta(tokenLogprobs(back, seq)[0], la), 0);
        assert.deepEqual(T.noGrad(() => T.tidy(() => back.forward(ids2d(seq)).shape)), [1, 6, 24]);
      } finally {
        back.dispose();
      }
    } finally {
      a.dispose();
      b.dispose();
      c.dispose();
    }
  });
}

test('initModel rejects impossible shapes', () => {
  assert.throws(() => initModel({ arch: 'llama', hidden: 30, layers: 1, heads: 4, vocab: 10 }), /heads 4 must divide hidden 30/);
  assert.throws(() => initModel({ arch: 'gpt2', hidden: 32, layers: 1, heads: 4, kvHeads: 2, vocab: 10 }), /no grouped-query attention/);
  assert.throws(() => initModel({ arch: 'qwen2', hidden: 32, layers: 0, heads: 4, vocab: 10 }), /layers must be an integer >= 1/);
  assert.throws(() => initModel({ arch: 'llama', hidden: 32, layers: 1, heads: 4, kvHeads: 3, vocab: 10 }), /num_key_value_heads' \(3\) must divide/);
});
