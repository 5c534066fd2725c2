// Exact match and token F1 with SQuAD's answer normalisation (the official evaluate-v1.1.py / v2.0 scripts):
// lowercase, remove ASCII punctuation (Python's string.punctuation), remove the articles a/an/the as whole
// words, collapse whitespace. F1 is over the bag of normalised tokens; with several gold answers the best one
// counts. SQuAD 2.0 differs only for empty answers: an empty prediction against an empty gold answer scores 1
// (v1.1 gives F1 0 there).
import { pySplit } from './text.ts';

const PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');
// Python's \b on str patterns is Unicode-aware: word characters are letters, digits and underscore.
const ARTICLES = /(?<![\p{L}\p{N}_])(a|an|the)(?![\p{L}\p{N}_])/gu;

export function normalizeAnswer(s: string): string {
  let t = s.toLowerCase();
  let out = '';
  for (const ch of t) if (!PUNCT.has(ch)) out += ch;
  t = out.replace(ARTICLES, ' ');
  return pySplit(t).join(' ');
}

export type SquadVersion = '1.1' | '2.0';

export function exactMatch(prediction: string, gold: string): number {
  return normalizeAnswer(prediction) === normalizeAnswer(gold) ? 1 : 0;
}

export function tokenF1(prediction: string, gold: string, version: SquadVersion = '1.1'): number {
  const p = pySplit(normalizeAnswer(prediction));
  const g = pySplit(normalizeAnswer(gold));
  if (version === '2.0' && (p.length === 0 || g.length === 0)) return p.length === g.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of g) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of p) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / p.length, recall = same / g.length;
  return (2 * precision * recall) / (precision + recall);
}

export interface SquadScores {
  /** Percent of predictions matching a gold answer exactly (after normalisation). */
  exactMatch: number;
  /** Mean best token F1, in percent. */
  f1: number;
  perExample: { exactMatch: number; f1: number }[];
}

/** Corpus scores: each prediction against its gold answers (the best one counts). */
export function squadScores(predictions: readonly string[], golds: readonly (readonly string[])[], version: SquadVersion = '1.1'): SquadScores {
  if (predictions.length !== golds.length) throw new RangeError(`SQuAD: ${predictions.length} predictions but ${golds.length} gold answer lists`);
  if (predictions.length === 0) throw new RangeError('SQuAD: no predictions');
  const perExample = predictions.map((p, i) => {
    const g = golds[i];
    if (g.length === 0) throw new RangeError(`SQuAD: example ${i + 1} has no gold answer`);
    return { exactMatch: Math.max(...g.map((x) => exactMatch(p, x))), f1: Math.max(...g.map((x) => tokenF1(p, x, version))) };
  });
  const mean = (k: 'exactMatch' | 'f1') => (100 * perExample.reduce((a, e) => a + e[k], 0)) / perExample.length;
  return { exactMatch: mean('exactMatch'), f1: mean('f1'), perExample };
}
