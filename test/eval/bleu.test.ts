// BLEU against sacreBLEU's own test vectors (every BLEU case in the shared assets) plus tokenizer behaviour.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Bleu, computeBleu, corpusBleu, formatBleu, sentenceBleu, type BleuSmoothMethod } from '../../src/eval/bleu.ts';
import { tokenize13a, tokenizeChar, tokenizeIntl, tokenizeZh } from '../../src/eval/tokenizers.ts';
import { fixed } from '../../src/eval/text.ts';
import type { BleuTokenizerName } from '../../src/eval/tokenizers.ts';
import { assetsDir, SKIP_NO_ASSETS } from '../shared_assets.ts';
import { caseLabel, sacreCases, type SacreCase } from './sacrebleu_cases.ts';

function close(actual: number, expected: number, tol: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: got ${actual}, expected ${expected} (tolerance ${tol})`);
}

function bleuOptions(kw: Record<string, unknown> = {}) {
  return {
    tokenize: kw.tokenize as BleuTokenizerName | undefined,
    lowercase: kw.lowercase as boolean | undefined,
    smoothMethod: kw.smooth_method as BleuSmoothMethod | undefined,
    smoothValue: (kw.smooth_value as number | null | undefined) ?? null,
    effectiveOrder: kw.effective_order as boolean | undefined,
  };
}

/** Runs one sacreBLEU BLEU case; every case shape in the file is handled or the test fails. */
function checkBleuCase(i: number, c: SacreCase): void {
  const label = caseLabel(i, c);
  const api = c.api ?? '';
  if (c.level === 'from_stats') {
    const opts = api.includes("smooth_method='floor'") ? { smoothMethod: 'floor' as const, smoothValue: c.smooth_value } : {};
    const s = computeBleu(c.correct!, c.total!, c.sys_len!, c.ref_len!, opts);
    close(s.score / 100, c.expected!, 1e-10, label);
    return;
  }
  if (c.level === 'sentence') {
    const s = sentenceBleu(c.hyp!, c.refs as string[], { ...bleuOptions(c.kwargs), effectiveOrder: true });
    close(s.score, c.expected!, c.tolerance!, label);
    return;
  }
  const refs = c.refs as string[][];
  if (api.includes('raw_corpus_bleu')) {
    // raw_corpus_bleu: tokenize none, floor smoothing (default 0.1), effective order, score / 100.
    const raw = (value: number) => corpusBleu(c.hyps!, refs, { tokenize: 'none', smoothMethod: 'floor', smoothValue: value, effectiveOrder: true });
    if (c.expected_counts) {
      const s = raw(0.1);
      assert.deepEqual(s.counts, c.expected_counts, label);
      assert.deepEqual(s.totals, c.expected_totals, label);
    } else if (c['expected_with_default_offset_0.1'] !== undefined) {
      close(raw(0.1).score / 100, c['expected_with_default_offset_0.1'], 1e-10, `${label} offset 0.1`);
      close(raw(0).score / 100, c.expected_with_offset_0!, 1e-10, `${label} offset 0`);
    } else {
      close(raw(c.kwargs!.smooth_value as number).score / 100, c.expected!, c.tolerance ?? 1e-8, label);
    }
    return;
  }
  if (c.max_ngram_order !== undefined) {
    const s = new Bleu({ maxNgramOrder: c.max_ngram_order }).corpusScore(c.hyps!, refs);
    assert.equal(fixed(s.score, 2), c.expected_str, label);
    return;
  }
  const s = corpusBleu(c.hyps!, refs, bleuOptions(c.kwargs));
  close(s.score, c.expected!, c.tolerance!, label);
}

describe('BLEU = sacreBLEU 2.6.0 (shared-asset test vectors)', () => {
  it('reproduces every BLEU case of sacreBLEU test suite', (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const cases = sacreCases().map((c, i) => [i, c] as const).filter(([, c]) => c.metric === 'bleu');
    assert.ok(cases.length >= 40, `expected the ~45 BLEU cases, found ${cases.length}`);
    for (const [i, c] of cases) checkBleuCase(i, c);
  });
});

describe('BLEU details', () => {
  const hyps = ['The dog bit the man.', "It wasn't surprising.", 'The man had just bitten him.'];
  const refs = [
    ['The dog bit the man.', 'It was not unexpected.', 'The man bit him first.'],
    ['The dog had bit the man.', 'No one was surprised.', 'The man had bitten the dog.'],
  ];

  it('prints the signature and verbose line the way sacreBLEU does', () => {
    const s = corpusBleu(hyps, refs);
    assert.equal(s.signature, 'nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0');
    // sacrebleu prints: BLEU|nrefs:2|... = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)
    assert.equal(formatBleu(s), '48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)');
    assert.equal(new Bleu({ smoothMethod: 'floor', lowercase: true, tokenize: 'intl', effectiveOrder: true }).signature(1), 'nrefs:1|case:lc|eff:yes|tok:intl|smooth:floor[0.10]|version:2.6.0');
    assert.equal(new Bleu({ smoothMethod: 'add-k', smoothValue: 2 }).signature('var'), 'nrefs:var|case:mixed|eff:no|tok:13a|smooth:add-k[2.00]|version:2.6.0');
  });

  it('a missing reference (null) gives a variable number of references', () => {
    const s = corpusBleu(hyps, [refs[0], [refs[1][0], null, refs[1][2]]]);
    assert.match(s.signature, /^nrefs:var\|/);
  });

  it('rejects reference streams of the wrong length', () => {
    assert.throws(() => corpusBleu(hyps, [refs[0].slice(1)]), /reference stream 1 has 2 segments but there are 3 hypotheses/);
  });

  it('13a tokenizer splits punctuation as mteval-v13a', () => {
    assert.equal(tokenize13a("It wasn't surprising."), "It wasn't surprising .");
    assert.equal(tokenize13a('Price: $3.50, 1,000 items (approx.) &amp; more-or-less 1990-2000'), 'Price : $ 3.50 , 1,000 items ( approx . ) & more-or-less 1990 - 2000');
    assert.equal(tokenize13a('a<skipped>b &quot;q&quot;'), 'ab " q "');
  });

  it('intl tokenizer splits Unicode punctuation and symbols', () => {
    assert.equal(tokenizeIntl('«Hallo», sagte er… 3,5€ 1.000'), '« Hallo » , sagte er … 3,5 € 1.000');
  });

  it('char tokenizer keeps every code point (astral ones whole)', () => {
    assert.equal(tokenizeChar('a😀b'), 'a 😀 b');
  });

  it('zh tokenizer splits Chinese characters and 13a-tokenizes the rest', () => {
    assert.equal(tokenizeZh(' 我爱北京天安门。Hello, world! '), '我 爱 北 京 天 安 门 。 Hello , world !');
  });
});
