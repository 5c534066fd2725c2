import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { applyFilter, ConstitutionalFilter, pairsFromLabels, rerank, trainFilter } from '../../src/cai/filter.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadModel } from '../../src/models/index.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';

// A 'respectful' labelling: polite answers are good, insulting ones bad. Train and held-out topics are disjoint.
const GOOD = ['Sure, happy to help with {t}.', 'Of course! Here is how {t} works.', 'Gladly: {t} is simple.'];
const BAD = ['No. Figure out {t} yourself, idiot.', 'What a stupid question about {t}.', 'Go away, {t} is beneath me.'];
const fill = (s: string, t: string) => s.replace('{t}', t);
const TRAIN_TOPICS = ['maths', 'cooking', 'gardening', 'chess', 'python', 'history', 'music', 'running'];
const HELD_OUT = ['physics', 'painting', 'sailing', 'poetry'];

let dir: string;
let base: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-cai-filter-'));
  base = writeTinyChatModel(path.join(dir, 'base'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 9 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('pairs and reranking', () => {
  it('labelled responses become every good x bad pair of the same prompt', () => {
    const pairs = pairsFromLabels([
      { prompt: 'a', response: 'g1', label: true },
      { prompt: 'a', response: 'b1', label: false },
      { prompt: 'b', response: 'g2', label: true },
      { prompt: 'a', response: 'g3', label: true },
      { prompt: 'a', response: 'b2', label: false },
    ]);
    assert.deepEqual(pairs.map((p) => `${p.chosen}>${p.rejected}`), ['g1>b1', 'g1>b2', 'g3>b1', 'g3>b2']);
  });

  it('reranks by score (ties keep input order), keeps the best k at or above the threshold, drops empty prompts', () => {
    const r = rerank('p', ['a', 'b', 'c', 'd'], [0.1, 0.9, 0.5, 0.9], 2, 0.2);
    assert.ok(r);
    assert.equal(r.completion, 'b');
    assert.deepEqual(r.candidates.map((c) => [c.text, c.kept]), [['b', true], ['d', true], ['c', false], ['a', false]]);
    assert.deepEqual(rerank('p', ['a', 'b'], [0.1, 0.3], 1, null)?.completion, 'b');
    assert.equal(rerank('p', ['a'], [0.1], 1, 0.5), null);
  });
});

describe('the constitutional filter end to end', () => {
  it('trains on labelled responses with the reward-model trainer and reranks held-out generations', async () => {
    const data = path.join(dir, 'labels.jsonl');
    const rows = TRAIN_TOPICS.flatMap((t) => [...GOOD.map((g) => ({ prompt: `Can you help me with ${t}?`, response: fill(g, t), label: true })), ...BAD.map((b) => ({ prompt: `Can you help me with ${t}?`, response: fill(b, t), label: false }))]);
    fs.writeFileSync(data, rows.map((r) => JSON.stringify(r)).join('\n'));
    const out = path.join(dir, 'clf');
    const r = await trainFilter({ model: base, data, outputDir: out, maxSteps: 60, learningRate: 3e-3, batchSize: 8, maxLength: 128, seed: 0 });
    assert.equal(r.pairs, TRAIN_TOPICS.length * 9);
    assert.ok(Number.isFinite(r.trainLoss));
    const saved = loadModel(out, { trainable: false });
    assert.ok(saved.scoreHead, 'a reward-model head is saved');
    saved.dispose();
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'cai_filter.json'), 'utf8')).format, 'plain');

    // Held out: each prompt offers one good and two bad candidates; the filter must put the good one first.
    const input = path.join(dir, 'gens.jsonl');
    fs.writeFileSync(input, HELD_OUT.map((t, i) => JSON.stringify({ prompt: `Can you help me with ${t}?`, responses: [fill(BAD[i % 3], t), fill(GOOD[i % 3], t), fill(BAD[(i + 1) % 3], t)] })).join('\n'));
    const res = await applyFilter({ classifier: out, input, output: path.join(dir, 'kept.jsonl') });
    assert.deepEqual([res.count, res.dropped, res.candidates], [4, 0, 12]);
    const kept = fs.readFileSync(res.path, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string; score: number; candidates: { text: string; score: number; kept: boolean }[] });
    kept.forEach((k, i) => {
      assert.equal(k.completion, fill(GOOD[i % 3], HELD_OUT[i]), `held-out prompt ${i}: ${JSON.stringify(k.candidates)}`);
      assert.deepEqual(k.candidates.map((c) => c.kept), [true, false, false]);
    });
    // The scores are the classifier's, rendered as in training (plain prompt + response + EOS).
    const f = new ConstitutionalFilter(out);
    const direct = f.score([{ prompt: kept[0].prompt, response: kept[0].completion }]);
    f.dispose();
    assert.ok(Math.abs(direct[0] - kept[0].score) < 1e-5);
    // A threshold between the good and bad scores drops nothing; one above every score drops every prompt.
    const top = Math.max(...kept.flatMap((k) => k.candidates.map((c) => c.score)));
    const none = await applyFilter({ classifier: out, input, output: path.join(dir, 'none.jsonl'), threshold: top + 1 });
    assert.deepEqual([none.count, none.dropped], [0, 4]);
    // The output is SFT data.
    const ds = await SftDataset.open(res.path, loadTokenizer(out), { maxLength: 256 });
    assert.equal(ds.numExamples, 4);
    await ds.close();

    // Sampling candidates from a model for rows without responses.
    const sampleIn = path.join(dir, 'prompts.jsonl');
    fs.writeFileSync(sampleIn, '{"prompt":"Can you help me with knitting?"}\n');
    const s = await applyFilter({ classifier: out, input: sampleIn, output: path.join(dir, 'sampled.jsonl'), model: base, n: 3, keep: 2, maxNewTokens: 5, seed: 1 });
    assert.deepEqual([s.count, s.candidates], [1, 3]);
    await assert.rejects(applyFilter({ classifier: out, input: sampleIn, output: path.join(dir, 'x.jsonl') }), /prompts\.jsonl:1: field 'responses': missing, and there is no --model/);
  });

  it('refuses labels without both kinds, and bad labels, naming the file and line', async () => {
    const data = path.join(dir, 'one-sided.jsonl');
    fs.writeFileSync(data, '{"prompt":"a","response":"x","label":true}\n');
    await assert.rejects(trainFilter({ model: base, data, outputDir: path.join(dir, 'o1') }), /no prompt has both a good .* and a bad/);
    fs.writeFileSync(data, '{"prompt":"a","response":"x","label":true}\n{"prompt":"a","response":"y","label":"bad"}\n');
    await assert.rejects(trainFilter({ model: base, data, outputDir: path.join(dir, 'o2') }), /one-sided\.jsonl:2: field 'label': expected true\/false or 1\/0, got a string/);
  });
});
