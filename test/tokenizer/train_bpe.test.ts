// The BPE trainer on small word tables whose results are known: the examples of the Rust `tokenizers` trainer's
// own unit tests (bpe/trainer.rs: test_train, bpe_test_max_token_length_direct_assert) and hand-computed cases
// for special tokens, min_frequency, limit_alphabet, the WordPiece prefix and determinism; then speed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trainBpe, trainTokenizer } from '../../src/tokenizer/train/index.ts';
import { Heap } from '../../src/tokenizer/train/heap.ts';
import { rng } from '../util.ts';

const ids = (vocab: string[]): Record<string, number> => Object.fromEntries(vocab.map((t, i) => [t, i]));

describe('trainBpe: the Rust trainer unit-test examples', () => {
  it('test_train: min_frequency 2 on 11 words gives the alphabet then re, are, is', () => {
    const words = new Map<string, number>([
      ['roses', 1],
      ['are', 2],
      ['red', 1],
      ['voilets', 1],
      ['blue', 1],
      ['BERT', 1],
      ['is', 2],
      ['big', 1],
      ['and', 1],
      ['so', 1],
      ['GPT-2', 1],
    ]);
    const r = trainBpe(words, { vocabSize: 30000, minFrequency: 2 });
    assert.deepEqual(r.vocab, [...'-2BEGPRTabdegilnorstuv'].concat(['re', 'are', 'is']));
    assert.deepEqual(r.merges, [
      ['r', 'e'],
      ['a', 're'],
      ['i', 's'],
    ]);
    assert.equal(r.stoppedBy, 'min-frequency');
  });

  it('bpe_test_max_token_length_direct_assert: max_token_length 2', () => {
    const words = new Map<string, number>(['sin', 'Sin', 'Lon', 'Ano', '짧은한', '긴한글', '短字符', '长字符', '短い文', '長い文', 'so', 'GP'].map((w) => [w, 2]));
    const r = trainBpe(words, { vocabSize: 30000, minFrequency: 0, maxTokenLength: 2 });
    const expected: Record<string, number> = {
      短: 12, n: 6, i: 5, s: 8, 字符: 23, 長: 14, 긴: 17, い文: 22, L: 2, in: 21, o: 7, 은한: 29, S: 4, P: 3, so: 27, 符: 13, 文: 11, 字: 10, 짧: 19,
      GP: 25, 글: 16, G: 1, An: 24, 长: 15, A: 0, Lo: 26, 긴한: 28, い: 9, 한: 20, 은: 18,
    };
    assert.deepEqual(ids(r.vocab), expected);
  });
});

describe('trainBpe: hand-computed cases', () => {
  it('special tokens take the first ids in the given order; duplicates and alphabet collisions are not repeated', () => {
    const r = trainBpe(new Map([['ab', 3]]), { vocabSize: 10, specialTokens: ['<s>', '</s>', '<s>', 'a'] });
    assert.deepEqual(r.vocab, ['<s>', '</s>', 'a', 'b', 'ab']);
  });

  it('min_frequency: a pair is merged only if it occurs at least that often (word counts included)', () => {
    // pairs: (a,b) x3, (c,d) x1, (d,c) x1 ... from 'ab' x3 and 'cdc' x1
    const words = new Map([
      ['ab', 3],
      ['cdc', 1],
    ]);
    assert.deepEqual(trainBpe(words, { vocabSize: 100, minFrequency: 2 }).merges, [['a', 'b']]);
    assert.deepEqual(trainBpe(words, { vocabSize: 100, minFrequency: 4 }).merges, []);
    // min 0: every pair in count order, ties by smaller (left id, right id): c=2 < d=3, so (c,d) before (d,c);
    // then (cd, c) from the merged word.
    const all = trainBpe(words, { vocabSize: 100, minFrequency: 0 });
    assert.deepEqual(all.merges, [
      ['a', 'b'],
      ['c', 'd'],
      ['cd', 'c'],
    ]);
    assert.equal(all.stoppedBy, 'no-pairs');
  });

  it('stops at the vocabulary size (special tokens and alphabet count)', () => {
    const r = trainBpe(new Map([['abcd', 5]]), { vocabSize: 6, specialTokens: ['<pad>'] });
    assert.deepEqual(r.vocab, ['<pad>', 'a', 'b', 'c', 'd', 'ab']);
    assert.equal(r.stoppedBy, 'vocab-size');
  });

  it('overlapping pairs: "aaaa" merges left to right into two "aa" and the counts follow', () => {
    // (a,a) occurs 3 times in 'aaaa'; after merging, the word is [aa, aa] and (aa,aa) occurs once.
    const r = trainBpe(new Map([['aaaa', 1]]), { vocabSize: 10, minFrequency: 1 });
    assert.deepEqual(r.merges, [
      ['a', 'a'],
      ['aa', 'aa'],
    ]);
  });

  it('limit_alphabet keeps the most frequent characters (rarer ones vanish from the words); initial alphabet always stays', () => {
    const words = new Map([
      ['aab', 10],
      ['xyz', 1],
    ]);
    const r = trainBpe(words, { vocabSize: 100, limitAlphabet: 2 });
    assert.deepEqual(r.vocab, ['a', 'b', 'aa', 'aab']);
    const kept = trainBpe(words, { vocabSize: 3, limitAlphabet: 3, initialAlphabet: ['z'] });
    assert.deepEqual(kept.vocab, ['a', 'b', 'z']);
    // A tie at the cut drops the higher code point: x, y, z all occur once.
    assert.deepEqual(trainBpe(words, { vocabSize: 4, limitAlphabet: 4 }).vocab, ['a', 'b', 'x', 'y']);
  });

  it('continuing-subword prefix: non-initial characters are ##-tokens, merges drop the inner prefix', () => {
    const r = trainBpe(
      new Map([
        ['hug', 5],
        ['pug', 2],
      ]),
      { vocabSize: 100, continuingSubwordPrefix: '##', minFrequency: 1 },
    );
    // alphabet g h p u (code-point order), then the ##-tokens in code-point order: ##g, ##u.
    // words: hug = h ##u ##g (x5), pug = p ##u ##g (x2); (##u, ##g) occurs 7 times -> '##ug' (the inner '##' of
    // the right part is dropped), then (h, ##ug) x5 -> 'hug', then (p, ##ug) x2 -> 'pug'.
    assert.deepEqual(r.vocab, ['g', 'h', 'p', 'u', '##g', '##u', '##ug', 'hug', 'pug']);
    assert.deepEqual(r.merges, [
      ['##u', '##g'],
      ['h', '##ug'],
      ['p', '##ug'],
    ]);
    // An explicit order for the ##-tokens (how the tests replay one run of the Rust trainer) changes their ids.
    const replay = trainBpe(new Map([['hug', 5], ['pug', 2]]), { vocabSize: 100, continuingSubwordPrefix: '##', minFrequency: 1, continuingAlphabetOrder: ['##u', '##g'] });
    assert.deepEqual(replay.vocab.slice(4, 6), ['##u', '##g']);
  });

  it('is deterministic and independent of the order words were counted in', () => {
    const r1 = rng(5);
    const words: Array<[string, number]> = [];
    for (let i = 0; i < 400; i++) {
      let w = '';
      const n = 1 + Math.floor(r1() * 7);
      for (let k = 0; k < n; k++) w += 'abcdeéfg東'[Math.floor(r1() * 10)];
      words.push([w, 1 + Math.floor(r1() * 20)]);
    }
    const merged = new Map<string, number>();
    for (const [w, c] of words) merged.set(w, (merged.get(w) ?? 0) + c);
    const reversed = new Map([...merged].reverse());
    for (const prefix of [undefined, '##']) {
      const a = trainBpe(merged, { vocabSize: 200, continuingSubwordPrefix: prefix });
      const b = trainBpe(reversed, { vocabSize: 200, continuingSubwordPrefix: prefix });
      assert.deepEqual(b.vocab, a.vocab);
      assert.deepEqual(b.merges, a.merges);
      assert.deepEqual(trainBpe(merged, { vocabSize: 200, continuingSubwordPrefix: prefix }), a);
    }
  });
});

describe('Heap', () => {
  it('pops in the order of the relation', () => {
    const h = new Heap<number>((a, b) => a > b);
    const r = rng(1);
    const xs = Array.from({ length: 500 }, () => Math.floor(r() * 100));
    for (const x of xs) h.push(x);
    const out: number[] = [];
    for (let x = h.pop(); x !== undefined; x = h.pop()) out.push(x);
    assert.deepEqual(out, [...xs].sort((a, b) => b - a));
  });
});

describe('speed', () => {
  it('a 1000-token byte-level BPE on a 1 MB corpus trains in seconds (incremental pair counts, priority queue)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'alignkit-bpe-speed-'));
    try {
      // ~30k distinct pseudo-words from syllables, uniformly drawn: a harder table than natural text's Zipf tail.
      const r = rng(12345);
      const syllables = ['ka', 'to', 'ri', 'men', 'sa', 'lo', 'qu', 'ver', 'an', 'el', 'is', 'or', 'un', 'ba', 'de', 'fi', 'gu', 'ho', 'ju', 'ly', 'na', 'pe', 'st', 'tr', 'ch', 'é', 'ö', 'ñ'];
      const lexicon = Array.from({ length: 60000 }, () => {
        let w = '';
        for (let k = 1 + Math.floor(r() * 4); k > 0; k--) w += syllables[Math.floor(r() * syllables.length)];
        return w;
      });
      const lines: string[] = [];
      let size = 0;
      while (size < 1_000_000) {
        const line = Array.from({ length: 12 }, () => lexicon[Math.floor(r() * lexicon.length)]).join(' ') + '.';
        lines.push(line);
        size += Buffer.byteLength(line) + 1;
      }
      const file = join(dir, 'corpus.txt');
      writeFileSync(file, lines.join('\n') + '\n');
      const t0 = performance.now();
      const trained = trainTokenizer({ type: 'bpe', files: [file], vocabSize: 1000 });
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(trained.vocabSize, 1000);
      assert.ok(trained.distinctWords > 20000, `distinct words ${trained.distinctWords}`);
      assert.ok(seconds < 20, `training took ${seconds.toFixed(1)} s`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
