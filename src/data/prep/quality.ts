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
//                  only when that n-gram occurs more than once (else 0); ties go to the n-gram that reached the
//                  count first
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
  const ws = text.split(/\s+/);
  if (ws.length && ws[0] === '') ws.shift();
  if (ws.length && ws[ws.length - 1] === '') ws.pop();
  return ws;
}

export function symbolRatio(text: string, ws = words(text)): number {
  if (ws.length === 0) return 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 35 || c === 0x2026) n++; // '#', '…'
    else if (c === 46 && text.charCodeAt(i + 1) === 46 && text.charCodeAt(i + 2) === 46) {
      n++; // "..."
      i += 2;
    }
  }
  return n / ws.length;
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

/** Words as integer ids (equal words, equal ids) plus their lengths: n-grams are compared as id runs. */
interface WordIds {
  ids: Int32Array;
  lens: Int32Array;
  chars: number;
}

function wordIds(ws: readonly string[]): WordIds {
  const intern = new Map<string, number>();
  const ids = new Int32Array(ws.length);
  const lens = new Int32Array(ws.length);
  let chars = 0;
  for (let i = 0; i < ws.length; i++) {
    let id = intern.get(ws[i]);
    if (id === undefined) intern.set(ws[i], (id = intern.size));
    ids[i] = id;
    lens[i] = ws[i].length;
    chars += ws[i].length;
  }
  return { ids, lens, chars };
}

/**
 * For every n-gram start i, the start of the first n-gram equal to it (i itself for a first occurrence). An
 * open-addressing table of start positions keyed by a hash of the ids; equal hashes are confirmed by comparing
 * the ids, so the result is exact.
 */
function firstOccurrences(ids: Int32Array, n: number): Int32Array {
  const m = ids.length - n + 1;
  const first = new Int32Array(Math.max(0, m));
  if (m <= 0) return first;
  let cap = 16;
  while (cap < 2 * m) cap *= 2;
  const mask = cap - 1;
  const table = new Int32Array(cap); // start + 1, 0 = empty
  for (let i = 0; i < m; i++) {
    let h = 0x9e3779b9 ^ n;
    for (let j = i; j < i + n; j++) {
      h = Math.imul(h ^ ids[j], 0x85ebca6b);
      h ^= h >>> 13;
    }
    let slot = (h ^ (h >>> 16)) & mask;
    for (;;) {
      const e = table[slot];
      if (e === 0) {
        table[slot] = i + 1;
        first[i] = i;
        break;
      }
      const st = e - 1;
      let same = true;
      for (let k = 0; k < n; k++) {
        if (ids[st + k] !== ids[i + k]) {
          same = false;
          break;
        }
      }
      if (same) {
        first[i] = st;
        break;
      }
      slot = (slot + 1) & mask;
    }
  }
  return first;
}

function topNgramIds(w: WordIds, n: number): number {
  if (w.ids.length < n || w.chars === 0) return 0;
  const first = firstOccurrences(w.ids, n);
  const counts = new Int32Array(first.length);
  let bestCount = 0, bestStart = -1;
  for (let i = 0; i < first.length; i++) {
    const c = ++counts[first[i]];
    if (c > bestCount) {
      bestCount = c;
      bestStart = first[i];
    }
  }
  if (bestCount < 2) return 0;
  let len = 0;
  for (let j = bestStart; j < bestStart + n; j++) len += w.lens[j];
  return (bestCount * len) / w.chars;
}

function dupNgramIds(w: WordIds, n: number): number {
  if (w.ids.length < n || w.chars === 0) return 0;
  const first = firstOccurrences(w.ids, n);
  let dup = 0, coveredTo = 0; // words [.., coveredTo) already counted
  for (let i = 0; i < first.length; i++) {
    if (first[i] === i) continue;
    // A repeat: count only its words not counted by an overlapping earlier repeat.
    for (let j = Math.max(i, coveredTo); j < i + n; j++) dup += w.lens[j];
    coveredTo = Math.max(coveredTo, i + n);
  }
  return dup / w.chars;
}

export function topNgramCharFrac(ws: readonly string[], n: number): number {
  return topNgramIds(wordIds(ws), n);
}

export function dupNgramCharFrac(ws: readonly string[], n: number): number {
  return dupNgramIds(wordIds(ws), n);
}

export function qualityStats(text: string): QualityStats {
  const ws = words(text);
  const w = wordIds(ws);
  const l = duplicateUnitFractions(lines(text));
  const p = duplicateUnitFractions(paragraphs(text));
  return {
    words: ws.length,
    wordChars: totalChars(ws),
    symbolRatio: symbolRatio(text, ws),
    dupLineFrac: l.frac,
    dupLineCharFrac: l.charFrac,
    dupParaFrac: p.frac,
    dupParaCharFrac: p.charFrac,
    topNgramCharFrac: { 2: topNgramIds(w, 2), 3: topNgramIds(w, 3), 4: topNgramIds(w, 4) },
    dupNgramCharFrac: {
      5: dupNgramIds(w, 5),
      6: dupNgramIds(w, 6),
      7: dupNgramIds(w, 7),
      8: dupNgramIds(w, 8),
      9: dupNgramIds(w, 9),
      10: dupNgramIds(w, 10),
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
  const over = (name: string, v: number, max: number): string | null => (v > max ? `${name} ${v.toFixed(2)} > ${max}` : null);
  const sr = over('symbol_ratio', symbolRatio(text, ws), t.maxSymbolRatio);
  if (sr) return sr;
  const l = duplicateUnitFractions(lines(text));
  const p = duplicateUnitFractions(paragraphs(text));
  const r = over('dup_line_frac', l.frac, t.maxDupLineFrac) ?? over('dup_para_frac', p.frac, t.maxDupParaFrac) ?? over('dup_line_char_frac', l.charFrac, t.maxDupLineCharFrac) ?? over('dup_para_char_frac', p.charFrac, t.maxDupParaCharFrac);
  if (r) return r;
  const w = wordIds(ws);
  for (const n of [2, 3, 4] as const) {
    const x = over(`top_${n}gram_char_frac`, topNgramIds(w, n), t.maxTopNgramCharFrac[n]);
    if (x) return x;
  }
  for (const n of [5, 6, 7, 8, 9, 10] as const) {
    const x = over(`dup_${n}gram_char_frac`, dupNgramIds(w, n), t.maxDupNgramCharFrac[n]);
    if (x) return x;
  }
  return null;
}
