// NLTK's BLEU (smoothing methods 0-7), chrF and GLEU against NLTK's own test vectors (shared assets) and
// NLTK's outputs on more sentence pairs (golden).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { modifiedPrecision, nltkCorpusBleu, nltkCorpusChrf, nltkCorpusGleu, nltkSentenceBleu, nltkSentenceChrf, nltkSentenceGleu, type NltkSmoothing } from '../../src/eval/nltk_bleu.ts';
import { assetsDir, readAssetJson, SKIP_NO_ASSETS } from '../shared_assets.ts';
import { golden } from './golden.ts';

interface NltkCase {
  metric: string;
  fn: string;
  smoothing?: string;
  references?: string[][] | (string[] | string)[];
  hypothesis?: string[];
  list_of_references?: string[][][];
  hypotheses?: (string[] | string)[];
  reference?: string[] | string;
  weights?: number[] | number[][] | null;
  expected?: number;
  expected_prefix?: string | string[];
  expected_prefix_x100?: string;
  expected_round4?: number;
  recomputed?: number | number[];
}

/** The doctest `0.5045...` check: the value printed with as many digits starts with the prefix. */
function startsWithPrefix(value: number, prefix: string, what: string): void {
  const digits = prefix.split('.')[1]?.length ?? 0;
  const printed = value.toFixed(digits + 6);
  assert.ok(printed.startsWith(prefix), `${what}: ${value} does not print as ${prefix}...`);
}

describe('NLTK BLEU / chrF / GLEU (shared-asset test vectors)', () => {
  it('reproduces every NLTK BLEU, chrF and GLEU case', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = (readAssetJson('metrics', 'nltk', 'nltk_translate_cases.json') as { cases: NltkCase[] }).cases;
    let n = 0;
    cases.forEach((c, i) => {
      const what = `case ${i} ${c.metric} ${c.fn}`;
      let got: number | number[];
      if (c.metric === 'bleu') {
        const smoothing = c.smoothing ? (Number(c.smoothing.replace('chencherry.method', '')) as NltkSmoothing) : undefined;
        const weights = c.weights ?? undefined;
        if (c.fn === 'corpus_bleu') got = nltkCorpusBleu(c.list_of_references!, c.hypotheses as string[][], { weights, smoothing });
        else if (c.fn.startsWith('mean of sentence_bleu')) {
          const s = c.list_of_references!.map((r, k) => nltkSentenceBleu(r, (c.hypotheses as string[][])[k]) as number);
          got = s.reduce((a, b) => a + b, 0) / s.length;
        } else if (c.fn === 'modified_precision n=1') {
          const p = modifiedPrecision(c.references as string[][], c.hypothesis!, 1);
          got = p.num / p.den;
        } else got = nltkSentenceBleu(c.references as string[][], c.hypothesis!, { weights, smoothing });
      } else if (c.metric === 'chrf_nltk') {
        if (c.fn === 'corpus_chrf') got = nltkCorpusChrf(c.references as (string[] | string)[], c.hypotheses!);
        else if (c.fn.includes('min_len=2 max_len=3')) got = nltkSentenceChrf(c.reference!, c.hypothesis as unknown as string, { minLen: 2, maxLen: 3 });
        else got = nltkSentenceChrf(c.reference!, c.hypothesis!);
      } else if (c.metric === 'gleu') {
        got = c.fn === 'corpus_gleu' ? nltkCorpusGleu(c.list_of_references!, c.hypotheses as string[][]) : nltkSentenceGleu(c.references as string[][], c.hypothesis!);
      } else return; // METEOR: test/eval/meteor.test.ts
      n++;
      const values = Array.isArray(got) ? got : [got];
      const prefixes = c.expected_prefix === undefined ? [] : Array.isArray(c.expected_prefix) ? c.expected_prefix : [c.expected_prefix];
      prefixes.forEach((p, k) => startsWithPrefix(values[k], p, what));
      if (c.expected_prefix_x100 !== undefined) startsWithPrefix(values[0] * 100, c.expected_prefix_x100, what);
      if (c.expected_round4 !== undefined) assert.equal(Math.round(values[0] * 1e4) / 1e4, c.expected_round4, what);
      if (c.expected !== undefined) assert.equal(values[0], c.expected, what);
      if (c.recomputed !== undefined) {
        // With expected_prefix_x100 the file records the recomputed value x100 as well.
        const scale = c.expected_prefix_x100 !== undefined ? 0.01 : 1;
        const rec = (Array.isArray(c.recomputed) ? c.recomputed : [c.recomputed]).map((r) => r * scale);
        rec.forEach((r, k) => assert.ok(Math.abs(values[k] - r) <= 1e-12 * Math.max(1, Math.abs(r)), `${what}: ${values[k]} vs NLTK ${r}`));
      }
    });
    assert.equal(n, 23, 'BLEU 0-13, chrF 14-18 and GLEU 19-22 all checked');
  });
});

describe('NLTK BLEU smoothing methods 0-7 and chrF (golden)', () => {
  const g = golden().nltk;
  it('sentence BLEU with each smoothing method', () => {
    let checked = 0;
    for (const e of g.bleu as { references: string[][]; hypothesis: string[]; method: Record<string, number | string> }[]) {
      for (const [m, v] of Object.entries(e.method)) {
        const run = () => nltkSentenceBleu(e.references, e.hypothesis, { smoothing: Number(m) as NltkSmoothing }) as number;
        if (typeof v === 'string') assert.throws(run, /method 6 requires/, `method ${m} should fail like NLTK (${v})`);
        else {
          const got = run();
          assert.ok(Math.abs(got - v) <= 1e-12 * Math.max(1, Math.abs(v)) || (got === v), `method ${m} ${e.hypothesis.join(' ')}: ${got} vs ${v}`);
        }
        checked++;
      }
    }
    assert.ok(checked > 100);
  });

  it('corpus BLEU with smoothing (the last pair drives methods 4/5/7 as in NLTK)', () => {
    const c = g.corpus_bleu;
    for (const [m, v] of Object.entries(c.method as Record<string, number>)) {
      const got = nltkCorpusBleu(c.list_of_references, c.hypotheses, { smoothing: Number(m) as NltkSmoothing }) as number;
      assert.ok(Math.abs(got - v) <= 1e-12, `method ${m}: ${got} vs ${v}`);
    }
  });

  it('chrF sentence and corpus', () => {
    const c = g.chrf;
    c.pairs.forEach(([r, h]: [string, string], i: number) => assert.ok(Math.abs(nltkSentenceChrf(r, h) - c.sentence[i]) < 1e-12, `pair ${i}`));
    const refs = c.pairs.map((p: string[]) => p[0]), hyps = c.pairs.map((p: string[]) => p[1]);
    assert.ok(Math.abs(nltkCorpusChrf(refs, hyps) - c.corpus) < 1e-12);
    assert.ok(Math.abs(nltkCorpusChrf(refs, hyps, { minLen: 2, maxLen: 4, beta: 2 }) - c.corpus_min2_max4_beta2) < 1e-12);
  });
});
