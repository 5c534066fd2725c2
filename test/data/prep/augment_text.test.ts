// EDA on punctuated, Unicode text: segmentation, the punctuation rules, each operation on hand-computed cases
// (a scripted random source whose draws are written in the test), and seeded literal outputs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_STOP_WORDS, EDA_DEFAULTS, applyEda, deleteWord, edaCount, edaPlan, insertWord, isStopWord, join, matchCase,
  randomDeletion, randomInsertion, randomSwap, segment, synonymReplacement, type EdaParams,
} from '../../../src/data/prep/augment_text.ts';
import { Thesaurus } from '../../../src/data/prep/augment_synonyms.ts';
import { Rng } from '../../../src/data/prep/rng.ts';

/**
 * A random source whose draws are given in advance: below(n) returns the next scripted integer (checked to
 * be < n), next() the next scripted float, shuffle() keeps the order. Every expected output below follows
 * from the documented algorithm and these draws by hand.
 */
function scripted(belows: number[], nexts: number[] = []): Rng {
  const b = [...belows];
  const f = [...nexts];
  const fake = {
    below(n: number): number {
      const v = b.shift();
      assert.ok(v !== undefined, `unexpected below(${n}) draw`);
      assert.ok(v < n, `scripted draw ${v} is not < ${n}`);
      return v;
    },
    next(): number {
      const v = f.shift();
      assert.ok(v !== undefined, 'unexpected next() draw');
      return v;
    },
    shuffle<T>(xs: T[]): T[] {
      return xs;
    },
    done(): void {
      assert.deepEqual([b, f], [[], []], 'not every scripted draw was used');
    },
  };
  return fake as unknown as Rng;
}
const used = (r: Rng): void => (r as unknown as { done(): void }).done();

const thesaurus = Thesaurus.fromObject({
  quick: ['fast', 'speedy'],
  dog: ['hound'],
  happy: ['glad', 'cheerful'],
  café: ['bistro'],
  naïve: ['ingenuous'],
  jumps: ['leaps'],
  world: ['earth'],
  the: ['teh'], // a stop word: must never be replaced even though it has an entry
});
const stop = DEFAULT_STOP_WORDS;

describe('segment / join', () => {
  it('splits words from the gaps, for any script, and joins back to the same string', () => {
    assert.deepEqual(segment('«Ça va?» — don’t well-known 東京タワー 123 x_y'), {
      words: ['Ça', 'va', 'don’t', 'well-known', '東京タワー', '123', 'x', 'y'],
      gaps: ['«', ' ', '?» — ', ' ', ' ', ' ', ' ', '_', ''],
    });
    for (const s of ['', ' ', '...', 'Hello, world!', ' two  spaces\n\nand lines\t', 'cafe\u0301 au lait', '👨‍👩‍👧 family', "rock'n'roll -- x-"]) assert.equal(join(segment(s)), s);
  });

  it('keeps a combining mark inside its word (NFD "café" is one word)', () => {
    assert.deepEqual(segment('cafe\u0301!').words, ['cafe\u0301']);
  });

  it('a text without words is one gap', () => {
    assert.deepEqual(segment(''), { words: [], gaps: [''] });
    assert.deepEqual(segment('?! ...'), { words: [], gaps: ['?! ...'] });
  });
});

describe('matchCase', () => {
  it('follows ALL-CAPS and Capitalised originals, else keeps the synonym as spelled', () => {
    assert.equal(matchCase('quick', 'fast'), 'fast');
    assert.equal(matchCase('Quick', 'fast'), 'Fast');
    assert.equal(matchCase('QUICK', 'fast'), 'FAST');
    assert.equal(matchCase('ÉTÉ', 'summer'), 'SUMMER');
    assert.equal(matchCase('Straße', 'gasse'), 'Gasse');
    assert.equal(matchCase('éclair', 'Canis familiaris'), 'Canis familiaris');
    assert.equal(matchCase('I', 'me'), 'Me'); // one capital letter: capitalised, not all-caps
    assert.equal(matchCase('東京', 'tokyo'), 'tokyo'); // no case
  });
});

describe('stop words', () => {
  it('covers function words and contractions with either apostrophe', () => {
    for (const w of ['the', 'The', 'and', 'is', 'were', 'ourselves', "don't", 'don’t', "I'm"]) assert.ok(isStopWord(w, stop), w);
    for (const w of ['dog', 'quick', 'café']) assert.ok(!isStopWord(w, stop), w);
  });
});

describe('edaCount: n = max(1, round(alpha * words))', () => {
  it('rounds half up and is at least 1', () => {
    assert.deepEqual(
      [[0.1, 9], [0.1, 10], [0.1, 15], [0.1, 25], [0.05, 10], [0.3, 10], [0.1, 1], [0.5, 3]].map(([a, n]) => edaCount(a, n)),
      [1, 1, 2, 3, 1, 3, 1, 2],
    );
  });
});

describe('punctuation rules', () => {
  it('insertion: before words[p] with one space, or after the last word before trailing punctuation', () => {
    const s = segment('Hello, world.');
    assert.equal(join(insertWord(s, 0, 'x')), 'x Hello, world.');
    assert.equal(join(insertWord(s, 1, 'x')), 'Hello, x world.');
    assert.equal(join(insertWord(s, 2, 'x')), 'Hello, world x.');
  });

  it('deletion: the word and the spaces before it (else after it); punctuation and line breaks stay', () => {
    const s = segment('Hello, big world.');
    assert.equal(join(deleteWord(s, 1)), 'Hello, world.');
    assert.equal(join(deleteWord(s, 2)), 'Hello, big.');
    assert.equal(join(deleteWord(s, 0)), ', big world.');
    assert.equal(join(deleteWord(segment('Hello, world.'), 1)), 'Hello,.');
    assert.equal(join(deleteWord(segment('one\nline two'), 1)), 'one\ntwo');
    assert.equal(join(deleteWord(segment('He said (quietly) hi'), 2)), 'He said () hi');
    assert.equal(join(deleteWord(segment('a\u00A0b c'), 1)), 'a c'); // a no-break space is a space
  });
});

describe('operations on hand-computed draws', () => {
  it('synonym replacement: distinct non-stop words in shuffled order, all occurrences, case matched', () => {
    // Non-stop words by first appearance: quick, dog, happy, café, naïve (the, is, and are stop words).
    // quick: below(2) = 1 -> "speedy" (QUICK -> SPEEDY); dog: below(1) = 0 -> "hound"; n = 2 reached.
    const rng = scripted([1, 0]);
    const r = synonymReplacement('The quick dog is happy, and the QUICK café is naïve.', 2, thesaurus, stop, rng);
    used(rng);
    assert.equal(r.text, 'The speedy hound is happy, and the SPEEDY café is naïve.');
    assert.deepEqual(r.edits, [{ op: 'replace', word: 'quick', with: 'speedy' }, { op: 'replace', word: 'dog', with: 'hound' }]);
  });

  it('synonym replacement skips words without synonyms and never touches stop words', () => {
    // "the" has a thesaurus entry but is a stop word; "brown" has none; "dog": below(1) = 0.
    const rng = scripted([0]);
    const r = synonymReplacement('The brown dog, the end.', 5, thesaurus, stop, rng);
    used(rng);
    assert.equal(r.text, 'The brown hound, the end.');
  });

  it('synonym replacement finds Unicode words by NFC key and keeps them cased', () => {
    const rng = scripted([0, 0]);
    const r = synonymReplacement('Cafe\u0301 NAÏVE', 2, thesaurus, stop, rng);
    used(rng);
    assert.equal(r.text, 'Bistro INGENUOUS');
  });

  it('random insertion: a word with synonyms, one synonym, a position in 0..words', () => {
    // Words: Hello (no synonyms), world (earth). Candidates [world]: below(1) = 0; synonym below(1) = 0; position below(3) = 1.
    const rng = scripted([0, 0, 1]);
    const r = randomInsertion('Hello, world.', 1, thesaurus, stop, rng);
    used(rng);
    assert.equal(r.text, 'Hello, earth world.');
    // Second round: words Hello, earth, world: candidates [world] again (earth has no entry); at the end.
    const rng2 = scripted([0, 0, 1, 0, 0, 3]);
    assert.equal(randomInsertion('Hello, world.', 2, thesaurus, stop, rng2).text, 'Hello, earth world earth.');
    used(rng2);
  });

  it('random insertion does nothing when no word has synonyms', () => {
    const rng = scripted([]);
    assert.deepEqual(randomInsertion('The end.', 3, thesaurus, stop, rng), { text: 'The end.', edits: [] });
    used(rng);
  });

  it('random swap: i = below(words), j = below(words - 1) skipping i; gaps stay', () => {
    // i = 0 (Hi); below(3) = 1 -> j = 2 (and).
    const rng = scripted([0, 1]);
    assert.equal(randomSwap('Hi, Bob and Al.', 1, rng).text, 'and, Bob Hi Al.');
    used(rng);
    // i = 3 (Al); below(3) = 0 -> j = 0 (Hi).
    const rng2 = scripted([3, 0]);
    assert.equal(randomSwap('Hi, Bob and Al.', 1, rng2).text, 'Al, Bob and Hi.');
    used(rng2);
  });

  it('random swap needs two words', () => {
    const rng = scripted([]);
    assert.equal(randomSwap('Alone!', 3, rng).text, 'Alone!');
    used(rng);
  });

  it('random deletion: one draw per word, deleted when < p; keeps one when all would go', () => {
    const rng = scripted([], [0.9, 0.1, 0.7]);
    assert.equal(randomDeletion('Hello, big world.', 0.5, rng).text, 'Hello, world.');
    used(rng);
    // All three draws < p: below(3) = 2 keeps "world".
    const rng2 = scripted([2], [0, 0, 0]);
    const r = randomDeletion('Hello, big world.', 0.5, rng2);
    used(rng2);
    assert.equal(r.text, ', world.');
    assert.deepEqual(r.edits, [{ op: 'delete', word: 'Hello' }, { op: 'delete', word: 'big' }]);
  });

  it('random deletion leaves a one-word text alone (no draws)', () => {
    const rng = scripted([]);
    assert.equal(randomDeletion('Hi!', 0.9, rng).text, 'Hi!');
    used(rng);
  });
});

describe('empty and word-less text', () => {
  it('every operation returns it unchanged', () => {
    const p: EdaParams = { ...EDA_DEFAULTS, alphaSr: 0.5, alphaRi: 0.5, alphaRs: 0.5, pRd: 0.5 };
    for (const text of ['', '   ', '?!', '— … —']) {
      for (const op of ['synonym_replacement', 'random_insertion', 'random_swap', 'random_deletion'] as const) {
        assert.deepEqual(applyEda(op, text, p, thesaurus, stop, new Rng(0)), { text, edits: [], n: 0 });
      }
    }
  });
});

describe('edaPlan', () => {
  it('gives every enabled operation ceil(numAug / enabled) slots, shuffled, cut to numAug', () => {
    const count = (ops: string[]): Record<string, number> => ops.reduce<Record<string, number>>((m, o) => ({ ...m, [o]: (m[o] ?? 0) + 1 }), {});
    const nine = edaPlan(EDA_DEFAULTS, new Rng(3));
    assert.equal(nine.length, 9);
    for (const n of Object.values(count(nine))) assert.ok(n <= 3);
    assert.deepEqual(count(edaPlan({ ...EDA_DEFAULTS, numAug: 4 }, new Rng(3))), { synonym_replacement: 1, random_insertion: 1, random_swap: 1, random_deletion: 1 });
    assert.deepEqual(edaPlan({ ...EDA_DEFAULTS, alphaRi: 0, alphaRs: 0, pRd: 0, numAug: 3 }, new Rng(0)), ['synonym_replacement', 'synonym_replacement', 'synonym_replacement']);
    assert.deepEqual(edaPlan({ ...EDA_DEFAULTS, alphaSr: 0, alphaRi: 0, alphaRs: 0, pRd: 0 }, new Rng(0)), []);
  });
});

describe('seeded EDA (Rng: sfc32 seeded by splitmix32)', () => {
  const text = 'The quick brown dog jumps over a café, happily naïve!';
  const p: EdaParams = { alphaSr: 0.2, alphaRi: 0.2, alphaRs: 0.2, pRd: 0.2, numAug: 4 };

  it('gives these outputs for seed 42 (10 words: n = 2)', () => {
    const rng = new Rng(42);
    const plan = edaPlan(p, rng);
    assert.deepEqual(plan, ['random_swap', 'synonym_replacement', 'random_insertion', 'random_deletion']);
    const out = plan.map((op) => applyEda(op, text, p, thesaurus, stop, rng));
    assert.deepEqual(out.map((o) => o.text), [
      'over jumps brown dog quick The a café, happily naïve!',
      'The speedy brown hound jumps over a café, happily naïve!',
      'The quick hound fast brown dog jumps over a café, happily naïve!',
      'The quick brown dog over a café,!',
    ]);
    assert.deepEqual(out.map((o) => o.n), [2, 2, 2, null]);
  });

  it('the same seed gives the same outputs; another seed others', () => {
    const run = (seed: number): string[] => {
      const rng = new Rng(seed);
      return edaPlan({ ...p, numAug: 8 }, rng).map((op) => applyEda(op, text, p, thesaurus, stop, rng).text);
    };
    assert.deepEqual(run(7), run(7));
    assert.notDeepEqual(run(7), run(8));
  });

  it('every operation keeps the punctuation sequence of the text', () => {
    const punct = (s: string): string => s.replace(/[\p{L}\p{M}\p{N}\s'’-]/gu, '');
    const rng = new Rng(5);
    for (const op of edaPlan({ ...p, numAug: 40 }, rng)) {
      const r = applyEda(op, text, p, thesaurus, stop, rng);
      assert.equal(punct(r.text), punct(text), `${op}: ${r.text}`);
    }
  });

  it('random swap keeps the multiset of words', () => {
    const rng = new Rng(11);
    const r = randomSwap(text, 3, rng);
    assert.deepEqual([...segment(r.text).words].sort(), [...segment(text).words].sort());
    assert.notEqual(r.text, text);
  });
});
