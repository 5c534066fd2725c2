// Tokenisation and log-likelihoods against HFLM (fixtures/harness/loglikelihood.json): the trailing-whitespace
// move, the count-based split of encode(context + continuation), the prefix token for an empty context, a BOS
// spelled in the text, non-ASCII; left truncation to max_length; and the prefix-cached path against the plain one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodePair, encodeRequest, loadBenchmark, scoreRequest } from '../../../src/eval/harness/index.ts';
import { loadTokenizer } from '../../../src/tokenizer/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';
import { hashModel } from './hash_model.ts';

interface Fixture {
  pairs: { context: string; continuation: string; context_ids: number[]; continuation_ids: number[] }[];
  truncated: { context: string; continuation: string; max_length: number; loglikelihood: number }[];
}
const fx = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'harness', 'loglikelihood.json'), 'utf8')) as Fixture;

test('encodePair: token ids equal HFLM._encode_pair (and its empty-context rule)', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const tok = loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  for (const p of fx.pairs) {
    const e = encodePair(tok, p.context, p.continuation);
    assert.deepEqual(e.contextIds, p.context_ids, `context ids of ${JSON.stringify(p.context)}`);
    assert.deepEqual(e.continuationIds, p.continuation_ids, `continuation ids of ${JSON.stringify([p.context, p.continuation])}`);
  }
  // all continuations of a request share the context ids of the trailing-space-stripped context
  const r = encodeRequest(tok, 'Answer: ', ['A', 'B']);
  assert.deepEqual(r.contextIds, encodePair(tok, 'Answer: ', 'A').contextIds);
  assert.deepEqual(r.continuationIds, [encodePair(tok, 'Answer: ', 'A').continuationIds, encodePair(tok, 'Answer: ', 'B').continuationIds]);
});

test('scoreRequest: left truncation to max_length equals HFLM with max_length 16', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const tok = loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  const model = hashModel();
  for (const c of fx.truncated) {
    const enc = encodeRequest(tok, c.context, [c.continuation]);
    for (const prefixCache of [true, false]) {
      const [ll] = scoreRequest(model, enc, { maxLength: c.max_length, prefixCache });
      assert.ok(Math.abs(ll - c.loglikelihood) <= 1e-4, `${JSON.stringify(c.continuation)} (prefixCache ${prefixCache}): ${ll} vs ${c.loglikelihood}`);
    }
  }
});

test('scoreRequest: the prefix-cached path equals scoring every (context + continuation) row', async (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const tok = loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  const model = hashModel();
  const hs = await loadBenchmark({ task: 'hellaswag', data: asset('benchmarks', 'hellaswag', 'hellaswag_val_first500.llamacpp.derived.jsonl'), limit: 4, numFewshot: 2 });
  const tq = await loadBenchmark({ task: 'truthfulqa_mc2', data: asset('benchmarks', 'truthfulqa', 'truthfulqa_mc_hf_layout_817q.derived.jsonl'), limit: 2 });
  let n = 0;
  for (const r of [...hs.tasks[0].requests, ...tq.tasks[0].requests]) {
    const enc = encodeRequest(tok, r.context, r.continuations);
    const cached = scoreRequest(model, enc);
    const plain = scoreRequest(model, enc, { prefixCache: false });
    cached.forEach((x, i) => assert.ok(Math.abs(x - plain[i]) <= 1e-4, `choice ${i}: ${x} vs ${plain[i]}`));
    n += cached.length;
  }
  assert.ok(n > 20, `only ${n} choices compared`);
});
