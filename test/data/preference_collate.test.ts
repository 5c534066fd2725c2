// Pair / unpaired batches: row order (all chosen rows, then all rejected rows), labels (-100 on prompt and
// padding, completion with EOS labelled, not shifted), padding, margins, and KTO's mismatched KL batch.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { collateKtoMismatched, collatePairs, collateUnpaired } from '../../src/data/pair_collate.ts';
import type { TokenizedPair, TokenizedUnpaired } from '../../src/data/preference.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';

const I = (...xs: number[]): Int32Array => Int32Array.from(xs);
const X = -100;
const rowsOf = (a: Int32Array, seq: number): number[][] => Array.from({ length: a.length / seq }, (_, r) => Array.from(a.subarray(r * seq, (r + 1) * seq)));
const EOS = 2;
const PAD = 0;

// Pair 0: prompt [1 10 11], chosen [20 EOS], rejected [21 22 23 EOS]
// Pair 1: prompt [1 12],    chosen [24 25 EOS], rejected [26 EOS]
const pairs: TokenizedPair[] = [
  { promptIds: I(1, 10, 11), chosenIds: I(20, EOS), rejectedIds: I(21, 22, 23, EOS), margin: null, truncated: false },
  { promptIds: I(1, 12), chosenIds: I(24, 25, EOS), rejectedIds: I(26, EOS), margin: null, truncated: false },
];

describe('collatePairs', () => {
  it('rows 0..N-1 = prompt + chosen, rows N..2N-1 = prompt + rejected, right-padded; labels only on completions', () => {
    const b = collatePairs(pairs, { padTokenId: PAD });
    assert.equal(b.pairs, 2);
    assert.equal(b.seq, 7); // longest row: pair 0's prompt (3) + rejected (4)
    assert.deepEqual(rowsOf(b.inputIds, b.seq), [
      [1, 10, 11, 20, EOS, PAD, PAD],
      [1, 12, 24, 25, EOS, PAD, PAD],
      [1, 10, 11, 21, 22, 23, EOS],
      [1, 12, 26, EOS, PAD, PAD, PAD],
    ]);
    assert.deepEqual(rowsOf(b.labels, b.seq), [
      [X, X, X, 20, EOS, X, X],
      [X, X, 24, 25, EOS, X, X],
      [X, X, X, 21, 22, 23, EOS],
      [X, X, 26, EOS, X, X, X],
    ]);
    assert.deepEqual(rowsOf(b.attentionMask, b.seq), [
      [1, 1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0, 0, 0],
    ]);
    assert.equal(b.margins, null);
  });

  it('a pad id equal to EOS is harmless: the real EOS keeps attention 1 and its label', () => {
    const b = collatePairs(pairs, { padTokenId: EOS });
    const r = rowsOf(b.inputIds, b.seq)[0];
    assert.deepEqual(r, [1, 10, 11, 20, EOS, EOS, EOS]);
    assert.deepEqual(rowsOf(b.labels, b.seq)[0], [X, X, X, 20, EOS, X, X]);
    assert.deepEqual(rowsOf(b.attentionMask, b.seq)[0], [1, 1, 1, 1, 1, 0, 0]);
  });

  it('padToMultipleOf rounds the row length up', () => {
    const b = collatePairs(pairs, { padTokenId: PAD, padToMultipleOf: 4 });
    assert.equal(b.seq, 8);
    assert.equal(b.inputIds.length, 2 * 2 * 8);
    assert.deepEqual(rowsOf(b.inputIds, 8)[2], [1, 10, 11, 21, 22, 23, EOS, PAD]);
  });

  it('margins: a Float32Array in pair order; all pairs need one or none', () => {
    const withMargins = pairs.map((p, i) => ({ ...p, margin: [0.5, -2][i] }));
    assert.deepEqual(Array.from(collatePairs(withMargins, { padTokenId: PAD }).margins ?? []), [0.5, -2]);
    assert.throws(() => collatePairs([withMargins[0], pairs[1]], { padTokenId: PAD }), (e: unknown) => e instanceof AlignkitError && /1 of 2 pairs have a margin/.test(e.message));
  });

  it('bad calls', () => {
    assert.throws(() => collatePairs([], { padTokenId: 0 }), /no pairs/);
    assert.throws(() => collatePairs(pairs, { padTokenId: -1 }), /padTokenId must be a non-negative integer/);
    assert.throws(() => collatePairs(pairs, { padTokenId: 0, padToMultipleOf: 0 }), /padToMultipleOf must be a positive integer/);
    assert.throws(() => collatePairs([{ ...pairs[0], promptIds: I() }], { padTokenId: 0 }), /row 0 has an empty prompt/);
  });
});

// Three labelled completions: prompts p0 [1 10], p1 [1 11 12], p2 [1 13]; completions c0 [20 EOS], c1 [21 EOS], c2 [22 23 24 EOS]
const unpaired: TokenizedUnpaired[] = [
  { promptIds: I(1, 10), completionIds: I(20, EOS), label: true, truncated: false },
  { promptIds: I(1, 11, 12), completionIds: I(21, EOS), label: false, truncated: false },
  { promptIds: I(1, 13), completionIds: I(22, 23, 24, EOS), label: true, truncated: false },
];

describe('collateUnpaired', () => {
  it('prompt + completion rows, labels on the completion, desirable flags', () => {
    const b = collateUnpaired(unpaired, { padTokenId: PAD });
    assert.equal(b.rows, 3);
    assert.equal(b.seq, 6);
    assert.deepEqual(rowsOf(b.inputIds, b.seq), [
      [1, 10, 20, EOS, PAD, PAD],
      [1, 11, 12, 21, EOS, PAD],
      [1, 13, 22, 23, 24, EOS],
    ]);
    assert.deepEqual(rowsOf(b.labels, b.seq), [
      [X, X, 20, EOS, X, X],
      [X, X, X, 21, EOS, X],
      [X, X, 22, 23, 24, EOS],
    ]);
    assert.deepEqual(rowsOf(b.attentionMask, b.seq), [
      [1, 1, 1, 1, 0, 0],
      [1, 1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1, 1],
    ]);
    assert.deepEqual(Array.from(b.desirable), [1, 0, 1]);
  });
});

describe('collateKtoMismatched (KL reference batch)', () => {
  it("prompt i with completion (i - 1) mod n: TRL's one-place rotation of the batch's completions", () => {
    const b = collateKtoMismatched(unpaired, { padTokenId: PAD });
    assert.equal(b.seq, 6);
    assert.deepEqual(rowsOf(b.inputIds, b.seq), [
      [1, 10, 22, 23, 24, EOS], // p0 + c2
      [1, 11, 12, 20, EOS, PAD], // p1 + c0
      [1, 13, 21, EOS, PAD, PAD], // p2 + c1
    ]);
    assert.deepEqual(rowsOf(b.labels, b.seq), [
      [X, X, 22, 23, 24, EOS],
      [X, X, X, 20, EOS, X],
      [X, X, 21, EOS, X, X],
    ]);
    // The mismatched completions are the same multiset as the matched ones, none under its own prompt.
    assert.deepEqual(Array.from(b.desirable), [1, 0, 1]);
  });

  it('two rows swap completions; one row is paired with itself (as in TRL)', () => {
    const two = collateKtoMismatched(unpaired.slice(0, 2), { padTokenId: PAD });
    assert.deepEqual(rowsOf(two.inputIds, two.seq), [
      [1, 10, 21, EOS, PAD],
      [1, 11, 12, 20, EOS],
    ]);
    const one = collateKtoMismatched(unpaired.slice(0, 1), { padTokenId: PAD });
    assert.deepEqual(Array.from(one.inputIds), [1, 10, 20, EOS]);
    assert.throws(() => collateKtoMismatched([], { padTokenId: 0 }), /no rows/);
  });
});
