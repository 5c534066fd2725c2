// Packing: best-fit-decreasing bins, packed row ids, and the property that matters — the loss of a packed row
// equals the summed losses of its documents run one by one on a real (tiny) model.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { join } from 'node:path';
import * as T from '../../src/tensor/index.ts';
import { loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { collate, type Batch } from '../../src/data/collate.ts';
import { packRow, planPacking } from '../../src/data/packing.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { IGNORE_INDEX, tokenizeSftExample, type TokenizedExample } from '../../src/data/sft_tokenize.ts';
import { repoRoot } from '../shared_assets.ts';
import { fixtureDir } from '../models/helpers.ts';

const ex = (ids: number[], labels: number[]): TokenizedExample => ({ inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), truncated: false });

describe('planPacking', () => {
  it('best-fit decreasing, by hand', () => {
    // sorted: 6(#4) 5(#0) 4(#2) 3(#1) 2(#3) 1(#5); 6 opens bin 0 (room 2), 5 opens bin 1 (room 3), 4 opens bin 2
    // (room 4), 3 fits bin 1 exactly, 2 fits bin 0 exactly, 1 goes to the only bin left with room (bin 2).
    assert.deepEqual(planPacking([5, 3, 4, 2, 6, 1], 8), [[4, 3], [0, 1], [2, 5]]);
    // best fit, not first fit: 3 goes to the bin with room 3 (bin 1), not the first with room (bin 0, room 4)
    assert.deepEqual(planPacking([6, 7, 3], 10), [[1, 2], [0]]);
  });

  it('deterministic, every example placed once, no bin over maxLength, close to the lower bound', () => {
    let s = 12345;
    const lengths = Array.from({ length: 3000 }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return 1 + (s % 500);
    });
    const a = planPacking(lengths, 512);
    assert.deepEqual(planPacking(lengths, 512), a);
    const seen = a.flat().sort((x, y) => x - y);
    assert.deepEqual(seen, lengths.map((_, i) => i));
    for (const bin of a) assert.ok(bin.reduce((n, i) => n + lengths[i], 0) <= 512);
    const lower = Math.ceil(lengths.reduce((x, y) => x + y, 0) / 512);
    assert.ok(a.length <= Math.ceil(lower * 1.1), `${a.length} bins, lower bound ${lower}`);
  });

  it('an example longer than maxLength is an error (truncate when tokenising)', () => {
    assert.throws(() => planPacking([3, 9, 2], 8), /example 1 has 9 tokens, more than maxLength 8/);
    assert.throws(() => planPacking([3, 0], 8), /example 1 has length 0/);
  });
});

describe('packRow', () => {
  it('ids, positions restarting per document, document ids, and no cross-document target', () => {
    const row = packRow([ex([1, 10, 11], [1, 10, 11]), ex([1, 20], [-100, 20]), ex([1, 30, 31, 32], [1, 30, -100, 32])]);
    assert.deepEqual(Array.from(row.inputIds), [1, 10, 11, 1, 20, 1, 30, 31, 32]);
    assert.deepEqual(Array.from(row.positionIds), [0, 1, 2, 0, 1, 0, 1, 2, 3]);
    assert.deepEqual(Array.from(row.documentIds), [0, 0, 0, 1, 1, 2, 2, 2, 2]);
    // the first token of every document is never a target: labels[0], [3], [5] are -100
    assert.deepEqual(Array.from(row.labels), [-100, 10, 11, -100, 20, -100, 30, -100, 32]);
    assert.throws(() => packRow([]), /no examples/);
  });
});

/** Summed NLL of a batch: -Σ log p(labels[b][t+1] | ..t) over targets != -100, with the batch's ids and masks. */
function batchNll(model: PretrainedLM, b: Batch): number {
  return T.noGrad(() =>
    T.tidy(() => {
      const shape = [b.batch, b.seq];
      const h = model.forward(T.intTensor(b.inputIds, shape), {
        attentionMask: T.intTensor(b.attentionMask, shape),
        positionIds: b.positionIds ? T.intTensor(b.positionIds, shape) : null,
        documentIds: b.documentIds ? T.intTensor(b.documentIds, shape) : null,
      });
      const targets = new Int32Array(b.batch * b.seq).fill(IGNORE_INDEX);
      for (let r = 0; r < b.batch; r++) for (let t = 0; t + 1 < b.seq; t++) targets[r * b.seq + t] = b.labels[r * b.seq + t + 1];
      const lp = T.linearLogprob(T.reshape(h, [b.batch * b.seq, model.config.hiddenSize]), model.lmHeadWeight(), T.intTensor(targets), { bias: model.lmHeadBias() });
      return -lp.toArray().reduce((x, y) => x + y, 0);
    }),
  );
}

describe('packed loss equals unpacked loss (fixture llama)', () => {
  it('three documents alone vs packed in one row with positionIds + documentIds', () => {
    const model = loadModel(fixtureDir('llama'), { trainable: false });
    const tok = loadTokenizer(fixtureDir('llama'));
    try {
      const opts = { maxLength: 64 };
      const docs = [
        tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: 'question: capital of france? answer:', completion: ' paris.' }, opts),
        // text trains on every token, so its label at position 0 is a real id: packed naively, the previous
        // document's last token would be asked to predict it
        tokenizeSftExample(tok, { kind: 'text', text: 'the cat sat on the mat.' }, opts),
        tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: 'two plus two is', completion: ' four.' }, opts),
      ];
      assert.notEqual(docs[1].labels[0], IGNORE_INDEX);
      const alone = docs.map((d) => batchNll(model, collate([d], { padTokenId: 0 })));
      const packedBatch = collate([packRow(docs)], { padTokenId: 0 });
      const packed = batchNll(model, packedBatch);
      const sum = alone.reduce((x, y) => x + y, 0);
      assert.ok(sum > 10, `a real loss: ${sum}`);
      assert.ok(Math.abs(packed - sum) < 1e-4, `packed ${packed} vs alone ${sum}`);
      // loss-token counts agree too
      const counts = docs.map((d) => collate([d], { padTokenId: 0 }).numLossTokens);
      assert.equal(packedBatch.numLossTokens, counts.reduce((x, y) => x + y, 0));

      // Without the document mask a packed document sees the previous ones: the loss changes.
      const leaky = batchNll(model, { ...packedBatch, documentIds: null });
      assert.ok(Math.abs(leaky - sum) > 1e-3, `leaky ${leaky} vs ${sum}`);
      // Without the boundary labels (plain concatenation) there is one target more, across documents.
      const naiveLabels = Int32Array.from(docs.flatMap((d) => Array.from(d.labels)));
      const naive = batchNll(model, { ...packedBatch, labels: naiveLabels });
      assert.ok(naive - sum > 1e-3, `naive ${naive} vs ${sum}`);
    } finally {
      model.dispose();
    }
  });

  it('the dataset pipeline: tiny_qa packed, collated with padding, equals its examples one by one', async () => {
    const model = loadModel(fixtureDir('llama'), { trainable: false });
    const tok = loadTokenizer(fixtureDir('llama'));
    // the fixture vocabulary is lower-case letters: upper-case letters become <unk>, which is fine for a loss check
    const ds = await SftDataset.open(join(repoRoot, 'data', 'sft', 'tiny_qa.jsonl'), tok, { maxLength: 128, packing: true, maxExamples: 12 });
    const plain = await SftDataset.open(join(repoRoot, 'data', 'sft', 'tiny_qa.jsonl'), tok, { maxLength: 128, maxExamples: 12 });
    try {
      assert.equal(ds.stats.examples, 12);
      assert.ok(ds.length < 12, `${ds.length} packed rows`);
      const rows = [];
      for (let i = 0; i < ds.length; i++) rows.push(await ds.get(i));
      const packed = batchNll(model, collate(rows, { padTokenId: tok.padId ?? 0, padToMultipleOf: 8 }));
      let alone = 0;
      for (let j = 0; j < plain.length; j++) alone += batchNll(model, collate([await plain.get(j)], { padTokenId: 0 }));
      assert.ok(alone > 10, `a real loss: ${alone}`);
      assert.ok(Math.abs(packed - alone) < 1e-4, `packed ${packed} vs alone ${alone}`);
    } finally {
      await ds.close();
      await plain.close();
      model.dispose();
    }
  });
});
