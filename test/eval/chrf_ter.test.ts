// chrF / chrF++ and TER against sacreBLEU's test vectors in the shared assets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Chrf, chrfWords, corpusChrf, sentenceChrf } from '../../src/eval/chrf.ts';
import { corpusTer, tercomTokenize, Ter, translationEditRate } from '../../src/eval/ter.ts';
import { assetsDir, SKIP_NO_ASSETS } from '../shared_assets.ts';
import { caseLabel, sacreCases } from './sacrebleu_cases.ts';

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (tolerance ${tol})`);
}

describe('chrF = sacreBLEU 2.6.0 (shared-asset test vectors)', () => {
  it('reproduces every chrF case', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = sacreCases().map((c, i) => [i, c] as const).filter(([, c]) => c.metric === 'chrf');
    assert.ok(cases.length >= 20, `found ${cases.length} chrF cases`);
    for (const [i, c] of cases) {
      const kw = c.kwargs ?? {};
      const opts = {
        charOrder: kw.char_order as number | undefined,
        wordOrder: kw.word_order as number | undefined,
        beta: kw.beta as number | undefined,
        epsSmoothing: kw.eps_smoothing as boolean | undefined,
        whitespace: kw.remove_whitespace === undefined ? undefined : !(kw.remove_whitespace as boolean),
      };
      const s = c.level === 'sentence' ? sentenceChrf(c.hyp!, c.refs as string[], opts) : corpusChrf(c.hyps!, c.refs as string[][], opts);
      // The file's `expected` is sacreBLEU's hard-coded test value, checked there with this tolerance.
      close(s.score, c.expected!, c.tolerance!, caseLabel(i, c));
      // The 2.6.0 recomputation is matched far more closely.
      close(s.score, c.recomputed as number, 1e-9, `${caseLabel(i, c)} (recomputed)`);
    }
  });
});

describe('chrF details', () => {
  it('signature and name follow sacreBLEU', () => {
    const m = new Chrf({ wordOrder: 2 });
    assert.equal(m.name, 'chrF2++');
    assert.equal(m.signature(1), 'nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:2.6.0');
    assert.equal(new Chrf({ epsSmoothing: true, lowercase: true, whitespace: true }).signature(2), 'nrefs:2|case:lc|eff:no|nc:6|nw:0|space:yes|version:2.6.0');
  });

  it('splits one leading or trailing punctuation mark off words for chrF++', () => {
    assert.deepEqual(chrfWords('"Hello, world!" (x) a'), ['"Hello', ',', 'world!', '"', '(x', ')', 'a']);
  });

  it('takes the best reference by sentence F', () => {
    const one = sentenceChrf('the cat sat', ['a dog ran']).score;
    const two = sentenceChrf('the cat sat', ['a dog ran', 'the cat sat']).score;
    assert.ok(one < 20);
    assert.equal(two, 100);
  });
});

describe('TER = sacreBLEU 2.6.0 (shared-asset test vectors)', () => {
  it('reproduces every TER case', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = sacreCases().map((c, i) => [i, c] as const).filter(([, c]) => c.metric === 'ter');
    assert.ok(cases.length >= 7);
    for (const [i, c] of cases) {
      const s = corpusTer(c.hyps!, c.refs as string[][]);
      close(s.score, 100 * c.expected_fraction!, 100 * c.tolerance!, caseLabel(i, c));
      close(s.score, c.recomputed as number, 1e-9, `${caseLabel(i, c)} (recomputed)`);
    }
  });
});

describe('TER details', () => {
  it('a block shift counts as one edit', () => {
    assert.deepEqual(translationEditRate('d e f g h a b c'.split(' '), 'a b c d e f g h'.split(' ')), { edits: 1, refLength: 8 });
  });

  it('signature follows sacreBLEU', () => {
    assert.equal(new Ter().signature(1), 'nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0');
    assert.equal(new Ter({ normalized: true, noPunct: true, asianSupport: true, caseSensitive: true }).signature(1), 'nrefs:1|case:mixed|tok:tercom|norm:yes|punct:no|asian:yes|version:2.6.0');
  });

  it('Tercom normalisation splits punctuation and possessives', () => {
    assert.equal(tercomTokenize("John's car, 3.5 &amp; more.", { normalized: true }), "john 's car , 3.5 & more .");
    assert.equal(tercomTokenize('Hello, world! (ok)', { noPunct: true, caseSensitive: true }), 'Hello world ok');
  });
});
