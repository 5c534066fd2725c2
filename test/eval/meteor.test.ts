// METEOR against NLTK's test vectors (shared assets) and NLTK's outputs on more sentence pairs (golden), with
// the WordNet 3.0 database of Debian's `wordnet-base` package. Without that database the WordNet-dependent
// cases are skipped with a message naming the package.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { countChunks, meteorAlign, meteorScore } from '../../src/eval/meteor.ts';
import { loadWordNet, type WordNetPos } from '../../src/eval/wordnet.ts';
import { assetsDir, readAssetJson, SKIP_NO_ASSETS } from '../shared_assets.ts';
import { golden } from './golden.ts';

const wordnet = loadWordNet();
const SKIP_NO_WORDNET = 'no WordNet 3.0 database (install Debian package wordnet-base, or set ALIGNKIT_WORDNET); skipped';

interface NltkMeteorCase {
  metric: string;
  fn: string;
  references: string[][];
  hypothesis: string[];
  expected?: number;
  expected_round4?: number;
}

describe('METEOR = NLTK meteor_score', () => {
  it('reproduces every NLTK METEOR test vector (rounded as NLTK tests them)', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    if (wordnet === null) return t.skip(SKIP_NO_WORDNET);
    const cases = (readAssetJson('metrics', 'nltk', 'nltk_translate_cases.json') as { cases: NltkMeteorCase[] }).cases.filter((c) => c.metric === 'meteor');
    assert.equal(cases.length, 9);
    cases.forEach((c, i) => {
      const got = meteorScore(c.references, c.hypothesis, { wordnet }).score;
      if (c.expected !== undefined) assert.ok(Math.abs(got - c.expected) < 1e-12, `case ${i} (${c.fn}): ${got} != ${c.expected}`);
      else assert.equal(Math.round(got * 1e4) / 1e4, c.expected_round4, `case ${i} (${c.fn}): ${got}`);
    });
  });

  it('matches NLTK on 45 more sentence pairs (synonym, stem and reordering cases)', (t) => {
    if (wordnet === null) return t.skip(SKIP_NO_WORDNET);
    const g = golden().nltk.meteor;
    assert.equal(g.wordnet_version, wordnet.version);
    for (const p of g.pairs as { hypothesis: string[]; references: string[][]; score: number }[]) {
      const got = meteorScore(p.references, p.hypothesis, { wordnet }).score;
      assert.ok(Math.abs(got - p.score) < 1e-12, `${p.hypothesis.join(' ')}: ${got} != ${p.score}`);
    }
  });

  it('WordNet lookup: morphy and synset lemma names as NLTK returns them', (t) => {
    if (wordnet === null) return t.skip(SKIP_NO_WORDNET);
    const g = golden().nltk;
    for (const [w, byPos] of Object.entries(g.morphy as Record<string, Record<WordNetPos, string[]>>))
      for (const [pos, forms] of Object.entries(byPos)) assert.deepEqual(wordnet.morphy(w, pos as WordNetPos), forms, `morphy(${w}, ${pos})`);
    for (const [w, names] of Object.entries(g.synonyms as Record<string, string[]>)) assert.deepEqual([...new Set(wordnet.synonyms(w))].sort(), names, `synonyms(${w})`);
  });

  it('without WordNet the synonym stage is reported unavailable, never silently dropped', () => {
    const r = meteorScore([['they', 'purchased', 'a', 'car']], ['they', 'bought', 'a', 'car'], { wordnet: null });
    assert.equal(r.synonymStage, 'unavailable');
    // exact matches: they, a, car (3 of 4), two chunks
    const p = 3 / 4, rc = 3 / 4;
    const fmean = (p * rc) / (0.9 * p + 0.1 * rc);
    assert.ok(Math.abs(r.score - (1 - 0.5 * (2 / 3) ** 3) * fmean) < 1e-12);
  });

  it('alignment stages and chunk count', () => {
    const a = meteorAlign(['the', 'cats', 'sat'], ['the', 'cat', 'sat'], { wordnet: null });
    assert.deepEqual(a.matches, [[0, 0], [1, 1], [2, 2]]);
    assert.equal(a.exact, 2);
    assert.equal(a.stem, 1);
    assert.equal(countChunks(a.matches), 1);
    assert.equal(countChunks([[0, 2], [1, 3], [2, 0]]), 2);
  });
});
