// BLEU / chrF / TER and sacreBLEU's bootstrap and paired tests against sacreBLEU 2.6.0's own outputs on a
// synthetic corpus (120 segments, two references, English with punctuation and numbers, German, CJK; an empty
// hypothesis and an empty reference included). See golden/make_golden.py.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Bleu, formatBleu, type BleuSmoothMethod } from '../../src/eval/bleu.ts';
import { Chrf } from '../../src/eval/chrf.ts';
import { Ter } from '../../src/eval/ter.ts';
import { bootstrapConfidence, pairedApproximateRandomization, pairedBootstrap } from '../../src/eval/significance.ts';
import type { CorpusMetric } from '../../src/eval/corpus_metric.ts';
import type { BleuTokenizerName } from '../../src/eval/tokenizers.ts';
import { golden, type Json } from './golden.ts';

const g: Json = golden().sacrebleu;
const refs: string[][] = g.refs;

function close(a: number, b: number, tol: number, what: string): void {
  assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b}`);
}

describe(`sacreBLEU ${g.version} outputs on a synthetic corpus`, () => {
  it('corpus BLEU for every tokenizer x case x smoothing x #refs (80 settings): score, counts, lengths, signature, printed line', () => {
    for (const e of g.bleu) {
      const what = JSON.stringify({ tok: e.tokenize, lc: e.lowercase, sm: e.smooth_method, nrefs: e.nrefs });
      const m = new Bleu({ tokenize: e.tokenize as BleuTokenizerName, lowercase: e.lowercase, smoothMethod: e.smooth_method as BleuSmoothMethod, smoothValue: e.smooth_value });
      const s = m.corpusScore(g.hyps_a, refs.slice(0, e.nrefs));
      close(s.score, e.score, 1e-9, what);
      assert.deepEqual(s.counts, e.counts, what);
      assert.deepEqual(s.totals, e.totals, what);
      assert.equal(s.sysLen, e.sys_len, what);
      assert.equal(s.refLen, e.ref_len, what);
      assert.equal(s.signature, e.signature, what);
      assert.equal(`BLEU = ${formatBleu(s)}`, e.formatted, what);
    }
  });

  it('sentence BLEU with effective order for each smoothing method', () => {
    for (const e of g.sentence_bleu) {
      const m = new Bleu({ smoothMethod: e.smooth_method, effectiveOrder: true });
      g.hyps_b.forEach((h: string, i: number) => close(m.sentenceScore(h, [refs[0][i], refs[1][i]]).score, e.scores[i], 1e-9, `${e.smooth_method} segment ${i}`));
    }
  });

  it('chrF / chrF++ for word order x beta x whitespace x case x eps smoothing (32 settings), corpus and sentence', () => {
    for (const e of g.chrf) {
      const what = JSON.stringify({ wo: e.word_order, beta: e.beta, ws: e.whitespace, lc: e.lowercase, eps: e.eps_smoothing });
      const m = new Chrf({ wordOrder: e.word_order, beta: e.beta, whitespace: e.whitespace, lowercase: e.lowercase, epsSmoothing: e.eps_smoothing });
      const s = m.corpusScore(g.hyps_a, refs);
      close(s.score, e.score, 1e-9, what);
      assert.equal(s.signature, e.signature, what);
      e.sentences.forEach((v: number, i: number) => close(m.sentenceScore(g.hyps_b[i], [refs[0][i]]).score, v, 1e-9, `${what} segment ${i}`));
    }
  });

  it('TER for normalized x no-punct x asian x case (16 settings), corpus and sentence', () => {
    for (const e of g.ter) {
      const what = JSON.stringify({ norm: e.normalized, nop: e.no_punct, asian: e.asian_support, cs: e.case_sensitive });
      const m = new Ter({ normalized: e.normalized, noPunct: e.no_punct, asianSupport: e.asian_support, caseSensitive: e.case_sensitive });
      const s = m.corpusScore(g.hyps_a, refs);
      close(s.score, e.score, 1e-9, what);
      assert.equal(Math.trunc(s.numEdits), e.num_edits, what);
      close(s.refLength, e.ref_length, 1e-9, what);
      assert.equal(s.signature, e.signature, what);
      e.sentences.forEach((v: number, i: number) => close(m.sentenceScore(g.hyps_b[i], [refs[0][i]]).score, v, 1e-9, `${what} segment ${i}`));
    }
  });
});

function metricFor(name: string): CorpusMetric {
  return name === 'bleu' ? new Bleu() : name === 'chrf' ? new Chrf() : new Ter();
}

describe('sacreBLEU bootstrap confidence and paired tests (seed 12345, identical resamples)', () => {
  it('--confidence: mean and 95% CI half-width', () => {
    for (const e of g.confidence) {
      const r = bootstrapConfidence(metricFor(e.metric), g.hyps_a, refs);
      close(r.score, e.score, 1e-9, `${e.metric} score`);
      // float32 arithmetic inside sacreBLEU (NumPy 2) vs float64 here: agree far below the printed 2 decimals.
      close(r.mean, e.mean, 1e-4, `${e.metric} mean`);
      close(r.ci, e.ci, 1e-4, `${e.metric} ci`);
    }
  });

  it('--paired-bs and --paired-ar: scores, bootstrap mean ± CI, p-values', () => {
    for (const e of g.paired) {
      const m = metricFor(e.metric);
      const r = e.test === 'bs'
        ? pairedBootstrap(m, g.hyps_a, g.hyps_b, refs, { nSamples: e.n_samples })
        : pairedApproximateRandomization(m, g.hyps_a, g.hyps_b, refs, { nSamples: e.n_samples });
      const what = `${e.metric} ${e.test}`;
      close(r.baseline.score, e.baseline.score, 1e-9, `${what} baseline`);
      close(r.system.score, e.system.score, 1e-9, `${what} system`);
      close(r.pValue, e.system.p_value, 1e-12, `${what} p-value`);
      if (e.test === 'bs') {
        close(r.system.mean!, e.system.mean, 1e-4, `${what} system mean`);
        close(r.system.ci!, e.system.ci, 1e-4, `${what} system ci`);
        close(r.baseline.mean!, e.baseline.mean, 1e-4, `${what} baseline mean`);
        close(r.baseline.ci!, e.baseline.ci, 1e-4, `${what} baseline ci`);
      }
      assert.equal(m.signature(2, { [e.test]: e.n_samples, seed: 12345 }), e.signature, what);
    }
  });
});
