// ROUGE against rouge-score's unit cases and the official ROUGE-1.5.5 ground truth (shared assets), and the
// Porter stemmer against NLTK's output in all three modes (golden file).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { bootstrapAggregate, lcsIndices, RougeScorer, rougeTokenize, summaryLevelLcs, unionLcs, type RougeScores } from '../../src/eval/rouge.ts';
import { PorterStemmer, type PorterMode } from '../../src/eval/porter.ts';
import { assetsDir, readAssetJson, readAssetText, SKIP_NO_ASSETS } from '../shared_assets.ts';
import { golden } from './golden.ts';

interface RougeCase {
  kind?: string;
  rouge_types?: string[];
  use_stemmer?: boolean;
  target?: string;
  prediction?: string;
  target_file?: string;
  prediction_file?: string;
  line?: number | null;
  expected?: Record<string, Record<string, number | number[]>>;
  places?: number;
  scores?: RougeScores[] | string;
  confidence_interval?: number;
  delta?: number;
  ref?: number[];
  can?: number[];
  candidates?: number[][];
  expected_lcs_len?: number;
  expected_lcs_ref_indices?: number[];
  expected_union?: number[];
  summary_level_lcs?: Record<string, number>;
}

/** Python's assertAlmostEqual(a, b, places): round(a - b, places) == 0. */
function almostEqual(a: number, b: number, places: number, what: string): void {
  assert.ok(Math.abs(a - b) < 0.5 * 10 ** -places, `${what}: got ${a}, expected ${b} to ${places} places`);
}

describe('ROUGE = rouge-score (shared-asset test vectors)', () => {
  it('reproduces every scorer case (unit cases and ROUGE-1.5.5 ground truth, with and without stemming)', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = (readAssetJson('metrics', 'rouge', 'rouge_score_cases.json') as { cases: RougeCase[] }).cases;
    let checked = 0;
    cases.forEach((c, i) => {
      if (c.kind !== undefined) return;
      let target = c.target!, prediction = c.prediction!;
      if (c.target_file) {
        const tl = readAssetText('metrics', 'rouge', c.target_file);
        const pl = readAssetText('metrics', 'rouge', c.prediction_file!);
        if (c.line === null || c.line === undefined) {
          target = tl;
          prediction = pl;
        } else {
          target = tl.split('\n')[c.line];
          prediction = pl.split('\n')[c.line];
        }
      }
      const scorer = new RougeScorer(c.rouge_types!, { useStemmer: c.use_stemmer ?? false });
      const got = scorer.score(target, prediction);
      for (const [type, exp] of Object.entries(c.expected!)) {
        for (const k of ['precision', 'recall', 'fmeasure'] as const) {
          almostEqual(got[type][k], exp[k] as number, c.places ?? 7, `case ${i} ${type} ${k} stem=${c.use_stemmer ?? false}`);
        }
      }
      checked++;
    });
    assert.ok(checked >= 20, `checked ${checked} scorer cases`);
  });

  it('LCS internals: lcs indices, union LCS and summary-level LCS', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = (readAssetJson('metrics', 'rouge', 'rouge_score_cases.json') as { cases: RougeCase[] }).cases;
    const lcs = cases.find((c) => c.kind === 'lcs_internal')!;
    const idx = lcsIndices(lcs.ref!, lcs.can!);
    assert.equal(idx.length, lcs.expected_lcs_len);
    assert.deepEqual(idx, lcs.expected_lcs_ref_indices);
    const u = cases.find((c) => c.kind === 'union_lcs_internal')!;
    assert.deepEqual(unionLcs(u.ref!, u.candidates!), u.expected_union);
    const s = summaryLevelLcs([u.ref!.map(String)], u.candidates!.map((c) => c.map(String)));
    for (const k of ['precision', 'recall', 'fmeasure'] as const) almostEqual(s[k], u.summary_level_lcs![k], 4, `summary-level ${k}`);
  });

  it('BootstrapAggregator cases (confidence 0.9 and 0.0) with a seeded resampler', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = (readAssetJson('metrics', 'rouge', 'rouge_score_cases.json') as { cases: RougeCase[] }).cases.filter((c) => c.kind === 'bootstrap');
    assert.equal(cases.length, 2);
    const scores = cases[0].scores as RougeScores[];
    for (const c of cases) {
      const agg = bootstrapAggregate(scores, { confidenceInterval: c.confidence_interval, seed: 12345 });
      for (const [type, exp] of Object.entries(c.expected!)) {
        for (const k of ['precision', 'recall', 'fmeasure'] as const) {
          const [low, mid, high] = exp[k] as number[];
          const got = agg[type];
          for (const [name, v, e] of [['low', got.low[k], low], ['mid', got.mid[k], mid], ['high', got.high[k], high]] as const) {
            assert.ok(Math.abs(v - e) <= c.delta!, `ci ${c.confidence_interval} ${type} ${k} ${name}: got ${v}, expected ${e}`);
          }
        }
      }
    }
    // The same seed gives the same numbers; another seed draws other resamples.
    assert.deepEqual(bootstrapAggregate(scores, { seed: 5 }), bootstrapAggregate(scores, { seed: 5 }));
  });
});

describe('ROUGE details', () => {
  it('tokenizer lowercases, drops non-alphanumerics and stems tokens longer than 3 characters', () => {
    assert.deepEqual(rougeTokenize("The Cats' running-shoes, 2x faster!"), ['the', 'cats', 'running', 'shoes', '2x', 'faster']);
    assert.deepEqual(rougeTokenize("The Cats' running-shoes, 2x faster!", true), ['the', 'cat', 'run', 'shoe', '2x', 'faster']);
  });

  it('scoreMulti keeps, per type, the reference with the best F1', () => {
    const s = new RougeScorer(['rouge1', 'rouge2']);
    const m = s.scoreMulti(['the cat sat on the mat', 'a dog sat'], 'the cat sat');
    assert.deepEqual(m.rouge1, s.score('the cat sat on the mat', 'the cat sat').rouge1);
    assert.throws(() => new RougeScorer(['rouge0']), /invalid rouge type 'rouge0'/);
  });
});

describe('Porter stemmer = NLTK PorterStemmer (golden)', () => {
  const modes = golden().nltk.porter as Record<PorterMode, Record<string, string>>;
  for (const mode of ['NLTK_EXTENSIONS', 'ORIGINAL_ALGORITHM', 'MARTIN_EXTENSIONS'] as const) {
    it(`${mode}: every word stems as NLTK ${golden().nltk.version} stems it`, () => {
      const st = new PorterStemmer(mode);
      const words = Object.entries(modes[mode]);
      assert.ok(words.length > 500);
      const wrong = words.filter(([w, s]) => st.stem(w) !== s).map(([w, s]) => `${w}: ${st.stem(w)} != ${s}`);
      assert.deepEqual(wrong, []);
    });
  }
});
