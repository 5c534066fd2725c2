// The generation loop and sequence scoring, against the deterministic mock LM (test/generate/mock_lm.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { availableBackends, withBackend } from '../../src/backend/index.ts';
import { completionLogprobs, generate, rowSeed, sequenceLogprobs, type GenerateOptions, type GenerationResult } from '../../src/generate/index.ts';
import { intTensor, linear, memoryInfo, narrow, noGrad, reshape, sum, tidy } from '../../src/tensor/index.ts';
import { MockLM } from './mock_lm.ts';

const PROMPTS = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7], [2]];

/** Last-position logits of one unpadded sequence, by a full uncached forward (float64 copy). */
function lastLogits(model: MockLM, seq: readonly number[]): Float64Array {
  return noGrad(() =>
    tidy(() => {
      const h = model.forward(intTensor([...seq], [1, seq.length]));
      const last = reshape(narrow(h, 1, seq.length - 1, 1), [1, model.config.hiddenSize]);
      return Float64Array.from(linear(last, model.lmHeadWeight(), model.lmHeadBias()).data as Float32Array);
    }),
  );
}

function argmax(x: ArrayLike<number>): number {
  let at = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[at]) at = i;
  return at;
}

const idsOf = (rs: GenerationResult[]): number[][] => rs.map((r) => r.ids);

function maxDiff(a: readonly number[], b: readonly number[]): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('mock LM: cached incremental forward and left padding reproduce the full forward exactly', () => {
  const model = new MockLM();
  const seq = [4, 8, 15, 16, 23, 42 % 37];
  noGrad(() =>
    tidy(() => {
      const full = model.forward(intTensor(seq, [1, 6])).toArray();
      const cache = model.createCache(1, 8);
      const a = model.forward(intTensor(seq.slice(0, 4), [1, 4]), { cache }).toArray();
      const b = model.forward(intTensor([seq[4]], [1, 1]), { cache, attentionMask: intTensor([1, 1, 1, 1, 1], [1, 5]) }).toArray();
      const c = model.forward(intTensor([seq[5]], [1, 1]), { cache }).toArray();
      assert.deepEqual([...a, ...b, ...c], full);
      // left-padded by two pad tokens with mask 0: the real positions match
      const padded = model.forward(intTensor([0, 0, ...seq], [1, 8]), { attentionMask: intTensor([0, 0, 1, 1, 1, 1, 1, 1], [1, 8]) }).toArray();
      assert.deepEqual(padded.slice(2 * 12), full);
    }),
  );
});

test('greedy decoding picks the argmax of the full-recompute logits at every step', () => {
  const model = new MockLM({ bias: true });
  const res = generate(model, { inputIds: PROMPTS, maxNewTokens: 8, temperature: 0 });
  res.forEach((r, b) => {
    assert.equal(r.finishReason, 'length');
    assert.equal(r.ids.length, 8);
    const seq = [...PROMPTS[b]];
    for (const tok of r.ids) {
      assert.equal(tok, argmax(lastLogits(model, seq)), `row ${b} after ${seq.length} tokens`);
      seq.push(tok);
    }
  });
});

test('cache and no-cache give identical greedy and sampled tokens; the cache path feeds the prompt once, then one token', () => {
  const model = new MockLM();
  const base: GenerateOptions = { inputIds: PROMPTS, maxNewTokens: 6, temperature: 0, returnLogprobs: true };
  model.calls.length = 0;
  const cached = generate(model, base);
  const callsCached = model.calls.splice(0);
  const plain = generate(model, { ...base, useCache: false });
  const callsPlain = model.calls.splice(0);
  assert.deepEqual(idsOf(plain), idsOf(cached));
  cached.forEach((r, b) => assert.ok(maxDiff(r.logprobs ?? [], plain[b].logprobs ?? []) <= 1e-6));
  const L = 7;
  assert.deepEqual(callsCached.map((c) => [c.seq, c.past, c.cached]), [[L, 0, true], ...[1, 2, 3, 4, 5].map((i) => [1, L + i - 1, true])]);
  assert.deepEqual(callsPlain.map((c) => [c.seq, c.past, c.cached]), [0, 1, 2, 3, 4, 5].map((i) => [L + i, 0, false]));
  assert.ok(model.caches.every((c) => c.disposed), 'caches are disposed');
  const s = { inputIds: PROMPTS, maxNewTokens: 6, temperature: 1.3, topK: 20, seed: 5 };
  assert.deepEqual(idsOf(generate(model, { ...s, useCache: false })), idsOf(generate(model, s)));
});

test('left padding: each row of a ragged batch equals generating that prompt alone', () => {
  const model = new MockLM();
  const greedy = generate(model, { inputIds: PROMPTS, maxNewTokens: 7, temperature: 0 });
  PROMPTS.forEach((p, b) => assert.deepEqual(generate(model, { inputIds: [p], maxNewTokens: 7, temperature: 0 })[0].ids, greedy[b].ids, `row ${b}`));
  // sampling with per-row seeds: a prompt's sample does not depend on its batch neighbours or its row index
  const seeds = [11, 12, 13, 14];
  const sampled = generate(model, { inputIds: PROMPTS, maxNewTokens: 7, temperature: 0.9, topP: 0.95, seed: seeds });
  PROMPTS.forEach((p, b) =>
    assert.deepEqual(generate(model, { inputIds: [p], maxNewTokens: 7, temperature: 0.9, topP: 0.95, seed: [seeds[b]] })[0].ids, sampled[b].ids, `row ${b}`),
  );
  const reversed = generate(model, { inputIds: [...PROMPTS].reverse(), maxNewTokens: 7, temperature: 0.9, topP: 0.95, seed: [...seeds].reverse() });
  assert.deepEqual(idsOf(reversed).reverse(), idsOf(sampled));
});

test('seeded sampling is deterministic; row r of seed s uses the stream rowSeed(s, r)', () => {
  const model = new MockLM({ headScale: 0.6 }); // flat distributions: different seeds visibly differ
  const opts: GenerateOptions = { inputIds: PROMPTS, maxNewTokens: 10, temperature: 1, seed: 123 };
  const a = generate(model, opts);
  const b = generate(model, opts);
  assert.deepEqual(idsOf(a), idsOf(b));
  const c = generate(model, { ...opts, seed: 124 });
  assert.notDeepEqual(idsOf(c), idsOf(a));
  const row2 = generate(model, { inputIds: [PROMPTS[2]], maxNewTokens: 10, temperature: 1, seed: [rowSeed(123, 2)] });
  assert.deepEqual(row2[0].ids, a[2].ids);
  assert.notEqual(rowSeed(123, 0), rowSeed(123, 1));
  assert.ok(Number.isSafeInteger(rowSeed(2 ** 52, 7)) && rowSeed(2 ** 52, 7) >= 0);
});

test('temperature -> 0 sampling equals greedy', () => {
  const model = new MockLM();
  const greedy = generate(model, { inputIds: PROMPTS, maxNewTokens: 8, temperature: 0 });
  const cold = generate(model, { inputIds: PROMPTS, maxNewTokens: 8, temperature: 1e-6, seed: 9, returnLogprobs: true });
  assert.deepEqual(idsOf(cold), idsOf(greedy));
  for (const r of cold) for (const lp of r.sampledLogprobs ?? []) assert.ok(lp > -1e-9, `sampled logprob ${lp}`);
  const topk1 = generate(model, { inputIds: PROMPTS, maxNewTokens: 8, temperature: 2, topK: 1, seed: 3, returnLogprobs: true });
  assert.deepEqual(idsOf(topk1), idsOf(greedy));
  for (const r of topk1) assert.deepEqual(r.sampledLogprobs, new Array(8).fill(0));
});

test('a stop token ends its row early (included) while the other rows continue', () => {
  const model = new MockLM();
  const prompts = [PROMPTS[1], PROMPTS[2]];
  const free = generate(model, { inputIds: prompts, maxNewTokens: 12, temperature: 0, stopTokenIds: [] });
  // a token row 0 first emits mid-way and row 1 never emits
  const i = free[0].ids.findIndex((t, k) => k >= 2 && k < 11 && free[0].ids.indexOf(t) === k && !free[1].ids.includes(t));
  assert.ok(i >= 0, 'test setup: found a stop token');
  const eos = free[0].ids[i];
  const first = i;
  const model2 = new MockLM({ eosTokenIds: [eos] }); // same weights, EOS from the config
  const res = generate(model2, { inputIds: prompts, maxNewTokens: 12, temperature: 0, returnLogprobs: true });
  assert.equal(res[0].finishReason, 'eos');
  assert.deepEqual(res[0].ids, free[0].ids.slice(0, first + 1));
  assert.equal(res[0].ids[first], eos);
  assert.equal(res[0].logprobs?.length, first + 1);
  assert.equal(res[1].finishReason, 'length');
  assert.deepEqual(res[1].ids, free[1].ids);
  // the finished row is fed padding with mask 0 after its EOS (which itself is fed as a real token)
  const steps = model2.calls.slice(-11);
  steps.forEach((c, s) => assert.deepEqual(c.lastMask, [s <= first ? 1 : 0, 1], `step ${s + 1}`));
  // all rows finished: the loop stops without running to maxNewTokens
  model2.calls.length = 0;
  const single = generate(model2, { inputIds: [prompts[0]], maxNewTokens: 12, temperature: 0 });
  assert.equal(single[0].ids.length, first + 1);
  assert.equal(model2.calls.length, first + 1);
});

test('stop strings end a row once its decoded text contains one', () => {
  const model = new MockLM();
  const decode = (ids: readonly number[]): string => ids.map((i) => String.fromCharCode(97 + (i % 26))).join('');
  const free = generate(model, { inputIds: PROMPTS, maxNewTokens: 10, temperature: 0 });
  const text0 = decode(free[0].ids);
  const stop = text0.slice(3, 5);
  const res = generate(model, { inputIds: PROMPTS, maxNewTokens: 10, temperature: 0, stopStrings: [stop, 'zzzzzz'], decode });
  res.forEach((r, b) => {
    const full = free[b].ids;
    let k = full.findIndex((_, j) => decode(full.slice(0, j + 1)).includes(stop));
    if (k < 0) {
      assert.equal(r.finishReason, 'length');
      k = full.length - 1;
    } else {
      assert.equal(r.finishReason, 'stop_string');
      assert.equal(r.stopString, stop);
    }
    assert.deepEqual(r.ids, full.slice(0, k + 1), `row ${b}`);
  });
  assert.equal(res[0].finishReason, 'stop_string');
  assert.ok(res[0].ids.length <= 5);
});

test('repetition penalty inside generate matches a manual HF-style greedy loop', () => {
  const model = new MockLM();
  const penalty = 1.8;
  const res = generate(model, { inputIds: PROMPTS, maxNewTokens: 6, temperature: 0, repetitionPenalty: penalty });
  const free = generate(model, { inputIds: PROMPTS, maxNewTokens: 6, temperature: 0 });
  assert.notDeepEqual(idsOf(res), idsOf(free), 'the penalty changes something');
  PROMPTS.forEach((p, b) => {
    const seq = [...p];
    for (let s = 0; s < 6; s++) {
      const z = lastLogits(model, seq);
      for (const id of new Set(seq)) z[id] = z[id] < 0 ? z[id] * penalty : z[id] / penalty;
      seq.push(argmax(z));
    }
    assert.deepEqual(res[b].ids, seq.slice(p.length), `row ${b}`);
  });
});

test('per-token logprobs from generate equal sequenceLogprobs on the generated sequences (<= 1e-5), every backend', () => {
  for (const be of availableBackends()) {
    withBackend(be, () => {
      const model = new MockLM({ bias: true, vocabSize: 53, hidden: 16 });
      const opts: GenerateOptions = { inputIds: PROMPTS, maxNewTokens: 9, temperature: 0.8, topK: 12, topP: 0.9, repetitionPenalty: 1.2, seed: 77, returnLogprobs: true };
      const res = generate(model, opts);
      const completions = idsOf(res);
      const ref = completionLogprobs(model, PROMPTS, completions);
      res.forEach((r, b) => assert.ok(maxDiff(r.logprobs ?? [], ref[b]) <= 1e-5, `${be.name} row ${b}: ${maxDiff(r.logprobs ?? [], ref[b])}`));
      // the sampled distribution is a filtered one: its logprobs are >= the raw tempered ones (never below)
      const withT = generate(model, { ...opts, repetitionPenalty: 1, logprobTemperature: 0.8 });
      const refT = completionLogprobs(model, PROMPTS, idsOf(withT), { temperature: 0.8 });
      withT.forEach((r, b) => {
        assert.ok(maxDiff(r.logprobs ?? [], refT[b]) <= 1e-5, `${be.name} T=0.8 row ${b}`);
        (r.sampledLogprobs ?? []).forEach((s, j) => assert.ok(s >= (r.logprobs ?? [])[j] - 1e-9));
      });
      // no processors at temperature 1: the sampled distribution is the raw one
      const plain = generate(model, { inputIds: PROMPTS, maxNewTokens: 5, temperature: 1, seed: 1, returnLogprobs: true });
      plain.forEach((r) => assert.ok(maxDiff(r.sampledLogprobs ?? [], r.logprobs ?? []) <= 1e-12));
      // the same sequences scored left-padded (the generation layout) give the same numbers
      const B = PROMPTS.length;
      const seqs = PROMPTS.map((p, b) => [...p, ...completions[b]]);
      const T = Math.max(...seqs.map((s) => s.length));
      const ids = new Int32Array(B * T);
      const mask = new Int32Array(B * T);
      seqs.forEach((s, b) => {
        ids.set(s, b * T + T - s.length);
        mask.fill(1, b * T + T - s.length, (b + 1) * T);
      });
      const left = noGrad(() => tidy(() => sequenceLogprobs(model, intTensor(ids, [B, T]), intTensor(mask, [B, T])).toArray()));
      seqs.forEach((s, b) => {
        const n = completions[b].length;
        const got = left.slice(b * (T - 1) + T - 1 - n, b * (T - 1) + T - 1);
        assert.ok(maxDiff(got, res[b].logprobs ?? []) <= 1e-5, `left-padded row ${b}`);
        for (let t = 0; t < T - s.length; t++) assert.equal(left[b * (T - 1) + t], 0, 'padding scores 0');
      });
    });
  }
});

test('sequenceLogprobs: shape [B, T-1], gradient to the LM head, same values with and without grad', () => {
  const model = new MockLM({ bias: true });
  const head = model.lmHeadWeight();
  head.requireGrad();
  const ids = intTensor([1, 2, 3, 4, 0, 5, 6, 7], [2, 4]);
  const mask = intTensor([1, 1, 1, 1, 0, 1, 1, 1], [2, 4]);
  const withGrad = tidy(() => {
    const lp = sequenceLogprobs(model, ids, mask);
    assert.deepEqual(lp.shape, [2, 3]);
    const v = lp.toArray();
    sum(lp).backward();
    return v;
  });
  assert.ok(head.grad !== null && head.grad.toArray().some((g) => g !== 0) && head.grad.toArray().every(Number.isFinite));
  assert.equal(withGrad[3], 0, 'the first real token of a left-padded row has no prefix');
  const without = noGrad(() => tidy(() => sequenceLogprobs(model, ids, mask).toArray()));
  assert.deepEqual(without, withGrad);
  head.zeroGrad();
  head.requireGrad(false);
  assert.throws(() => sequenceLogprobs(model, ids, intTensor([1, 1, 1], [1, 3])), /attentionMask \[1,3\] must be \[2, 4\]/);
});

test('maxNewTokens 0, empty batch, and no leaked tensors', () => {
  const model = new MockLM();
  model.calls.length = 0;
  assert.deepEqual(generate(model, { inputIds: PROMPTS, maxNewTokens: 0 }), PROMPTS.map(() => ({ ids: [], finishReason: 'length' })));
  assert.deepEqual(generate(model, { inputIds: [], maxNewTokens: 4 }), []);
  assert.equal(model.calls.length, 0);
  const before = memoryInfo().liveTensors;
  generate(model, { inputIds: PROMPTS, maxNewTokens: 5, temperature: 0.7, topP: 0.8, minP: 0.05, returnLogprobs: true });
  generate(model, { inputIds: PROMPTS, maxNewTokens: 5, temperature: 0, useCache: false });
  assert.equal(memoryInfo().liveTensors, before);
});

test('invalid options throw clear errors', () => {
  const model = new MockLM({ maxPositions: 16 });
  const ok: GenerateOptions = { inputIds: [[1, 2]], maxNewTokens: 3 };
  const bad = (o: Partial<GenerateOptions>, re: RegExp): void => {
    assert.throws(() => generate(model, { ...ok, ...o }), re);
  };
  bad({ topP: 0 }, /topP must be in \(0, 1\]/);
  bad({ topP: 1.01 }, /topP must be in \(0, 1\]/);
  bad({ temperature: -1 }, /temperature must be a finite number >= 0/);
  bad({ maxNewTokens: -1 }, /maxNewTokens must be an integer >= 0/);
  bad({ maxNewTokens: 2.5 }, /maxNewTokens must be an integer >= 0/);
  bad({ inputIds: [new Array<number>(17).fill(1)] }, /prompt 0 has 17 tokens, longer than the model's 16 positions/);
  bad({ inputIds: [new Array<number>(14).fill(1)], maxNewTokens: 3 }, /\(14 tokens\) \+ maxNewTokens \(3\) = 17 exceeds the model's 16 positions/);
  bad({ inputIds: [[1], []] }, /prompt 1 is empty/);
  bad({ inputIds: [[1, 37]] }, /inputIds\[0\]\[1\] = 37 is not a token id in \[0, 37\)/);
  bad({ stopStrings: ['x'] }, /stopStrings need a decode/);
  bad({ seed: [1, 2] }, /seed has 2 entries for 1 rows/);
  bad({ seed: 0.5 }, /seed must be a safe integer/);
  bad({ padTokenId: 99 }, /padTokenId 99/);
  bad({ logprobTemperature: 0 }, /logprobTemperature/);
  bad({ repetitionPenalty: -1 }, /repetitionPenalty/);
});
