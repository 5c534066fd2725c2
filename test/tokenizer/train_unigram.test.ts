// Unigram training pieces with known values: the digamma function, the E-step's expected counts on a lattice
// small enough to enumerate by hand, and properties of the trained vocabulary.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digamma, expectedPieceCounts, trainUnigram } from '../../src/tokenizer/train/index.ts';

describe('digamma', () => {
  it('matches published values: ψ(1) = -γ, ψ(1/2) = -γ - 2 ln 2, ψ(10) = H(9) - γ', () => {
    const gamma = 0.5772156649015329;
    assert.ok(Math.abs(digamma(1) + gamma) < 1e-9); // the series is accurate to ~1e-10 near 1
    assert.ok(Math.abs(digamma(0.5) - (-gamma - 2 * Math.LN2)) < 1e-9);
    let h9 = 0;
    for (let k = 1; k <= 9; k++) h9 += 1 / k;
    assert.ok(Math.abs(digamma(10) - (h9 - gamma)) < 1e-11);
    assert.ok(Math.abs(digamma(1000) - 6.907255195648812) < 1e-12);
  });
});

describe('E-step (forward-backward)', () => {
  it('expected counts on "ab" with pieces a (1/2), b (1/4), ab (1/4): P(a b) = 1/8, P(ab) = 1/4', () => {
    // The two segmentations have posterior 1/3 and 2/3; a word count of 3 scales them.
    const pieces: Array<[string, number]> = [
      ['a', Math.log(0.5)],
      ['b', Math.log(0.25)],
      ['ab', Math.log(0.25)],
    ];
    const counts = expectedPieceCounts(pieces, new Map([['ab', 3]]));
    assert.ok(Math.abs(counts[0] - 1) < 1e-12, `a: ${counts[0]}`);
    assert.ok(Math.abs(counts[1] - 1) < 1e-12, `b: ${counts[1]}`);
    assert.ok(Math.abs(counts[2] - 2) < 1e-12, `ab: ${counts[2]}`);
  });

  it('"aaa" with a and aa: paths a+a+a, aa+a, a+aa', () => {
    const pa = 0.6;
    const paa = 0.4;
    const z = pa ** 3 + 2 * paa * pa;
    const counts = expectedPieceCounts(
      [
        ['a', Math.log(pa)],
        ['aa', Math.log(paa)],
      ],
      new Map([['aaa', 1]]),
    );
    assert.ok(Math.abs(counts[0] - (3 * pa ** 3 + 2 * paa * pa) / z) < 1e-12);
    assert.ok(Math.abs(counts[1] - (2 * paa * pa) / z) < 1e-12);
  });
});

describe('trainUnigram', () => {
  const words = new Map([
    ['▁hello', 1000],
    ['▁help', 500],
    ['▁yellow', 300],
    ['▁low', 20],
  ]);
  const chars = new Set([...words.keys()].flatMap((w) => [...w]));

  it('keeps every character, the special tokens first, and fills the rest with the best pieces', () => {
    const small = trainUnigram(words, { vocabSize: 2 + chars.size, specialTokens: ['<unk>', '<s>'], unkToken: '<unk>' });
    assert.deepEqual(small.pieces.slice(0, 2), [
      ['<unk>', 0],
      ['<s>', 0],
    ]);
    assert.deepEqual(new Set(small.pieces.slice(2).map(([p]) => p)), chars);
    const larger = trainUnigram(words, { vocabSize: 2 + chars.size + 3, specialTokens: ['<unk>', '<s>'], unkToken: '<unk>' });
    const pieces = larger.pieces.map(([p]) => p);
    assert.equal(pieces.length, 2 + chars.size + 3);
    assert.ok(pieces.includes('▁hello'), `the most frequent word is one piece: ${pieces.join(' ')}`);
  });

  it('is deterministic and independent of the order of the word table', () => {
    const a = trainUnigram(words, { vocabSize: 20, specialTokens: ['<unk>'], unkToken: '<unk>' });
    const b = trainUnigram(new Map([...words].reverse()), { vocabSize: 20, specialTokens: ['<unk>'], unkToken: '<unk>' });
    assert.deepEqual(b, a);
  });

  it('requires the unknown token among the special tokens', () => {
    assert.throws(() => trainUnigram(words, { vocabSize: 20, specialTokens: ['<s>'], unkToken: '<unk>' }), /unknown token "<unk>" must be one of the special tokens/);
  });
});
