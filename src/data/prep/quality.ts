// Quality heuristics for `alignkit data clean`: statistics of one text and the thresholds that drop it.
//
// The repetition statistics and default thresholds follow the MassiveWeb quality filters of Gopher:
//   J. W. Rae et al., "Scaling Language Models: Methods, Analysis & Insights from Training Gopher",
//   arXiv:2112.11446 (2021), Appendix A.1.1 and Table A1.
// Table A1 drops a document when: duplicate line fraction > 0.30, duplicate paragraph fraction > 0.30,
// duplicate line character fraction > 0.20, duplicate paragraph character fraction > 0.20, top 2/3/4-gram
// character fraction > 0.20/0.18/0.16, duplicate 5..10-gram character fraction > 0.15/0.14/0.13/0.12/0.11/0.10.
// The same appendix drops documents whose symbol-to-word ratio (for '#' and ellipsis) exceeds 0.1.
//
// The paper gives the statistics in words; the exact definitions used here (ours) are:
//   words          maximal runs of non-whitespace characters; "word characters" = the sum of their lengths
//   lines          split on '\n', blank lines ignored; paragraphs: split on blank lines ('\n' + optional spaces + '\n')
//   dup_line_frac  (# lines equal to an earlier line) / (# lines)
//   dup_line_char  (characters of those lines) / (characters of all lines)        [likewise for paragraphs]
//   top_ngram_char(n)  count(most frequent word n-gram) * (characters of its words) / word characters;
//                  only when that n-gram occurs more than once (else 0); ties go to the n-gram seen first
//   dup_ngram_char(n)  word characters of the words covered by a repeated occurrence (the 2nd, 3rd, ...) of
//                  any word n-gram, each word counted once even when n-grams overlap / word characters
//   symbol_ratio   (# of '#' + # of "..." or '…') / (# words)

export interface QualityStats {
  words: number;
  wordChars: number;
  symbolRatio: number;
  dupLineFrac: number;
  dupLineCharFrac: number;
  dupParaFrac: number;
  dupParaCharFrac: number;
  /** n = 2, 3, 4. */
  topNgramCharFrac: Record<2 | 3 | 4, number>;
  /** n = 5..10. */
  dupNgramCharFrac: Record<5 | 6 | 7 | 8 | 9 | 10, number>;
}

export function words(text: string): string[] {
  return text.split(/\s+/u).filter((w) => w.length > 0);
}

export function symbolRatio(text: string, ws = words(text)): number {
  if (ws.length === 0) return 0;
  const hashes = (text.match(/#/g) ?? []).length;
  const ellipses = (text.match(/\.\.\.|…/g) ?? []).length;
  return (hashes + ellipses) / ws.length;
}

/** Fraction of units (and of their characters) that repeat an earlier unit. */
export function duplicateUnitFractions(units: readonly string[]): { frac: number; charFrac: number } {
  if (units.length === 0) return { frac: 0, charFrac: 0 };
  const seen = new Set<string>();
  let dup = 0, dupChars = 0, chars = 0;
  for (const u of units) {
    chars += u.length;
    if (seen.has(u)) {
      dup++;
      dupChars += u.length;
    } else seen.add(u);
  }
  return { frac: dup / units.length, charFrac: chars ? dupChars / chars : 0 };
}

export function lines(text: string): string[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
}

export function paragraphs(text: string): string[] {
  return text.split(/\n[ \t]*\n/).map((p) => p.trim()).filter((p) => p.length > 0);
}

function totalChars(ws: readonly string[]): number {
  let n = 0;
  for (const w of ws) n += w.length;
  return n;
}

/** Key of the n-gram starting at i: words joined by U+0001 (a control character, so not normally in a word). */
function ngramKey(ws: readonly string[], i: number, n: number): string {
  let k = ws[i];
  for (let j = 1; j < n; j++) k += '\u0001' + ws[i + j];
  return k;
}

export function topNgramCharFrac(ws: readonly string[], n: number, chars = totalChars(ws)): number {
  if (ws.length < n || chars === 0) return 0;
  const counts = new Map<string, { count: number; chars: number }>();
  let best: { count: number; chars: number } | null = null;
  for (let i = 0; i + n <= ws.length; i++) {
    const k = ngramKey(ws, i, n);
    let e = counts.get(k);
    if (!e) {
      let c = 0;
      for (let j = 0; j < n; j++) c += ws[i + j].length;
      e = { count: 0, chars: c };
      counts.set(k, e);
    }
    e.count++;
    if (best === null || e.count > best.count) best = e;
  }
  if (!best || best.count < 2) return 0;
  return (best.count * best.chars) / chars;
}

export function dupNgramCharFrac(ws: readonly string[], n: number, chars = totalChars(ws)): number {
  if (ws.length < n || chars === 0) return 0;
  const seen = new Set<string>();
  const covered = new Uint8Array(ws.length);
  for (let i = 0; i + n <= ws.length; i++) {
    const k = ngramKey(ws, i, n);
    if (seen.has(k)) covered.fill(1, i, i + n);
    else seen.add(k);
  }
  let dup = 0;
  for (let i = 0; i < ws.length; i++) if (covered[i]) dup += ws[i].length;
  return dup / chars;
}

export function qualityStats(text: string): QualityStats {
  const ws = words(text);
  const chars = totalChars(ws);
  const l = duplicateUnitFractions(lines(text));
  const p = duplicateUnitFractions(paragraphs(text));
  return {
    words: ws.length,
    wordChars: chars,
    symbolRatio: symbolRatio(text, ws),
    dupLineFrac: l.frac,
    dupLineCharFrac: l.charFrac,
    dupParaFrac: p.frac,
    dupParaCharFrac: p.charFrac,
    topNgramCharFrac: { 2: topNgramCharFrac(ws, 2, chars), 3: topNgramCharFrac(ws, 3, chars), 4: topNgramCharFrac(ws, 4, chars) },
    dupNgramCharFrac: {
      5: dupNgramCharFrac(ws, 5, chars),
      6: dupNgramCharFrac(ws, 6, chars),
      7: dupNgramCharFrac(ws, 7, chars),
      8: dupNgramCharFrac(ws, 8, chars),
      9: dupNgramCharFrac(ws, 9, chars),
      10: dupNgramCharFrac(ws, 10, chars),
    },
  };
}

/** Upper limits; a statistic above its limit drops the text. Defaults: Gopher's values (see the header). */
export interface QualityThresholds {
  maxSymbolRatio: number;
  maxDupLineFrac: number;
  maxDupLineCharFrac: number;
  maxDupParaFrac: number;
  maxDupParaCharFrac: number;
  maxTopNgramCharFrac: Record<2 | 3 | 4, number>;
  maxDupNgramCharFrac: Record<5 | 6 | 7 | 8 | 9 | 10, number>;
  /** Texts with fewer words are not judged (repetition statistics of a 5-word answer mean little). */
  minWordsToJudge: number;
}

export const GOPHER_THRESHOLDS: QualityThresholds = {
  maxSymbolRatio: 0.1,
  maxDupLineFrac: 0.3,
  maxDupLineCharFrac: 0.2,
  maxDupParaFrac: 0.3,
  maxDupParaCharFrac: 0.2,
  maxTopNgramCharFrac: { 2: 0.2, 3: 0.18, 4: 0.16 },
  maxDupNgramCharFrac: { 5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.1 },
  minWordsToJudge: 0,
};

/** The first limit the text breaks, as a short reason ("dup_line_frac 0.50 > 0.30"), or null when it passes. */
export function qualityFailure(text: string, t: QualityThresholds = GOPHER_THRESHOLDS): string | null {
  const ws = words(text);
  if (ws.length < t.minWordsToJudge) return null;
  const chars = totalChars(ws);
  const over = (name: string, v: number, max: number): string | null => (v > max ? `${name} ${v.toFixed(2)} > ${max}` : null);
  const sr = over('symbol_ratio', symbolRatio(text, ws), t.maxSymbolRatio);
  if (sr) return sr;
  const l = duplicateUnitFractions(lines(text));
  const p = duplicateUnitFractions(paragraphs(text));
  const r = over('dup_line_frac', l.frac, t.maxDupLineFrac) ?? over('dup_para_frac', p.frac, t.maxDupParaFrac) ?? over('dup_line_char_frac', l.charFrac, t.maxDupLineCharFrac) ?? over('dup_para_char_frac', p.charFrac, t.maxDupParaCharFrac);
  if (r) return r;
  for (const n of [2, 3, 4] as const) {
    const x = over(`top_${n}gram_char_frac`, topNgramCharFrac(ws, n, chars), t.maxTopNgramCharFrac[n]);
    if (x) return x;
  }
  for (const n of [5, 6, 7, 8, 9, 10] as const) {
    const x = over(`dup_${n}gram_char_frac`, dupNgramCharFrac(ws, n, chars), t.maxDupNgramCharFrac[n]);
    if (x) return x;
  }
  return null;
}
