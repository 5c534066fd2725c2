// Collation: padding side and multiple, masks, packed ids, and the loss-token count after the shift.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collate } from '../../src/data/collate.ts';
import { packRow } from '../../src/data/packing.ts';
import type { TokenizedExample } from '../../src/data/sft_tokenize.ts';

const ex = (ids: number[], labels: number[]): TokenizedExample => ({ inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), truncated: false });
const rows2d = (a: Int32Array | null, T: number): number[][] => {
  assert.ok(a);
  return Array.from({ length: a.length / T }, (_, b) => Array.from(a.subarray(b * T, (b + 1) * T)));
};

describe('collate', () => {
  const a = ex([1, 5, 6, 2], [-100, -100, 6, 2]);
  const b = ex([1, 7], [-100, 7]);

  it('right padding: pad id, label -100, attention 0; numLossTokens counts labels[t+1] != -100', () => {
    const batch = collate([a, b], { padTokenId: 0 });
    assert.equal(batch.batch, 2);
    assert.equal(batch.seq, 4);
    assert.deepEqual(rows2d(batch.inputIds, 4), [[1, 5, 6, 2], [1, 7, 0, 0]]);
    assert.deepEqual(rows2d(batch.labels, 4), [[-100, -100, 6, 2], [-100, 7, -100, -100]]);
    assert.deepEqual(rows2d(batch.attentionMask, 4), [[1, 1, 1, 1], [1, 1, 0, 0]]);
    assert.equal(batch.positionIds, null);
    assert.equal(batch.documentIds, null);
    assert.equal(batch.numLossTokens, 3); // row 0: 6, 2; row 1: 7
  });

  it('left padding and padToMultipleOf', () => {
    const batch = collate([a, b], { padTokenId: 9, padSide: 'left', padToMultipleOf: 3 });
    assert.equal(batch.seq, 6);
    assert.deepEqual(rows2d(batch.inputIds, 6), [[9, 9, 1, 5, 6, 2], [9, 9, 9, 9, 1, 7]]);
    assert.deepEqual(rows2d(batch.labels, 6), [[-100, -100, -100, -100, 6, 2], [-100, -100, -100, -100, -100, 7]]);
    assert.deepEqual(rows2d(batch.attentionMask, 6), [[0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1]]);
    assert.equal(batch.numLossTokens, 3);
  });

  it('packed rows pass positions and document ids through; padding is a document of its own', () => {
    const packed = packRow([a, b]);
    const single = ex([1, 8, 9], [-100, 8, 9]);
    const batch = collate([packed, single], { padTokenId: 0, padToMultipleOf: 4 });
    assert.equal(batch.seq, 8);
    assert.deepEqual(rows2d(batch.inputIds, 8), [[1, 5, 6, 2, 1, 7, 0, 0], [1, 8, 9, 0, 0, 0, 0, 0]]);
    assert.deepEqual(rows2d(batch.positionIds, 8), [[0, 1, 2, 3, 0, 1, 0, 1], [0, 1, 2, 0, 1, 2, 3, 4]]);
    assert.deepEqual(rows2d(batch.documentIds, 8), [[0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 1, 1, 1]]);
    assert.deepEqual(rows2d(batch.labels, 8), [[-100, -100, 6, 2, -100, 7, -100, -100], [-100, 8, 9, -100, -100, -100, -100, -100]]);
    assert.equal(batch.numLossTokens, 5);
    const left = collate([packed], { padTokenId: 0, padSide: 'left', padToMultipleOf: 8 });
    assert.deepEqual(rows2d(left.positionIds, 8), [[0, 1, 0, 1, 2, 3, 0, 1]]);
    assert.deepEqual(rows2d(left.documentIds, 8), [[2, 2, 0, 0, 0, 0, 1, 1]]);
    assert.deepEqual(rows2d(left.attentionMask, 8), [[0, 0, 1, 1, 1, 1, 1, 1]]);
  });

  it('errors', () => {
    assert.throws(() => collate([], { padTokenId: 0 }), /no rows/);
    assert.throws(() => collate([a], { padTokenId: -1 }), /padTokenId/);
    assert.throws(() => collate([a], { padTokenId: 0, padToMultipleOf: 0 }), /padToMultipleOf/);
    assert.throws(() => collate([ex([1, 2], [1])], { padTokenId: 0 }), /row 0 has 2 ids but 1 labels/);
  });
});
