// METEOR exactly as NLTK's nltk.translate.meteor_score computes it (nltk 3.10; Banerjee & Lavie 2005 with
// NLTK's simplifications):
// - tokens are lowercased (`preprocess`), then aligned in three stages, each over the words left unmatched by
//   the previous one: exact match, Porter-stem match (NLTK_EXTENSIONS stemmer), WordNet synonym match (the
//   lemma names, without multi-word ones, of every synset of the hypothesis word, plus the word itself).
//   Within a stage hypothesis words are visited from last to first and each takes the last still-free
//   reference position holding a matching word. After the stem stage the remaining words are the STEMS, so
//   the synonym stage looks up stems (as NLTK does);
// - P = m/|hyp|, R = m/|ref|, Fmean = P·R / (α·P + (1-α)·R), penalty = γ·(chunks/m)^β, score =
//   (1 - penalty)·Fmean with α = 0.9, β = 3, γ = 0.5; chunks are maximal runs of matches adjacent in both the
//   hypothesis and the reference (matches sorted by hypothesis position); 0 when nothing matches;
// - several references: the maximum of the single-reference scores.
// Without a WordNet database the synonym stage cannot run: the result says so (`synonymStage: 'unavailable'`)
// instead of silently returning exact+stem scores as if they were METEOR.
import { PorterStemmer } from './porter.ts';
import type { WordNet } from './wordnet.ts';

export interface MeteorOptions {
  alpha?: number;
  beta?: number;
  gamma?: number;
  /** Token preprocessing (default: lowercase). */
  preprocess?: (token: string) => string;
  /** WordNet for the synonym stage; null runs without it (and the result is marked accordingly). */
  wordnet: WordNet | null;
  stemmer?: PorterStemmer;
}

type Enum = [index: number, word: string][];
type Match = [hyp: number, ref: number];

function matchEnums(hyp: Enum, ref: Enum): { matches: Match[]; hyp: Enum; ref: Enum } {
  const positions = new Map<string, number[]>();
  ref.forEach(([, w], j) => {
    let p = positions.get(w);
    if (!p) positions.set(w, (p = []));
    p.push(j);
  });
  const matches: Match[] = [];
  const mh = new Set<number>(), mr = new Set<number>();
  for (let i = hyp.length - 1; i >= 0; i--) {
    const p = positions.get(hyp[i][1]);
    if (p && p.length > 0) {
      const j = p.pop()!;
      mh.add(i);
      mr.add(j);
      matches.push([hyp[i][0], ref[j][0]]);
    }
  }
  return { matches, hyp: hyp.filter((_, i) => !mh.has(i)), ref: ref.filter((_, j) => !mr.has(j)) };
}

function synonymMatch(hyp: Enum, ref: Enum, wn: WordNet): { matches: Match[]; hyp: Enum; ref: Enum } {
  const positions = new Map<string, number[]>();
  ref.forEach(([, w], j) => {
    let p = positions.get(w);
    if (!p) positions.set(w, (p = []));
    p.push(j);
  });
  const matches: Match[] = [];
  const mh = new Set<number>(), mr = new Set<number>();
  for (let i = hyp.length - 1; i >= 0; i--) {
    const word = hyp[i][1];
    const syns = new Set(wn.synonyms(word).filter((n) => !n.includes('_')));
    syns.add(word);
    let bestJ = -1;
    let bestWord: string | null = null;
    for (const s of syns) {
      const p = positions.get(s);
      if (p && p.length > 0 && p[p.length - 1] > bestJ) {
        bestJ = p[p.length - 1];
        bestWord = s;
      }
    }
    if (bestWord !== null) {
      positions.get(bestWord)!.pop();
      mh.add(i);
      mr.add(bestJ);
      matches.push([hyp[i][0], ref[bestJ][0]]);
    }
  }
  return { matches, hyp: hyp.filter((_, i) => !mh.has(i)), ref: ref.filter((_, j) => !mr.has(j)) };
}

/** NLTK's _count_chunks over matches sorted by hypothesis position. */
export function countChunks(matches: readonly Match[]): number {
  let chunks = 1;
  for (let i = 0; i < matches.length - 1; i++) {
    if (!(matches[i + 1][0] === matches[i][0] + 1 && matches[i + 1][1] === matches[i][1] + 1)) chunks++;
  }
  return chunks;
}

export interface MeteorAlignment {
  /** (hypothesis index, reference index) pairs sorted by hypothesis index. */
  matches: Match[];
  exact: number;
  stem: number;
  synonym: number;
}

const defaultStemmer = new PorterStemmer('NLTK_EXTENSIONS');

export function meteorAlign(hypothesis: readonly string[], reference: readonly string[], opts: MeteorOptions): MeteorAlignment {
  const pre = opts.preprocess ?? ((t: string) => t.toLowerCase());
  const stemmer = opts.stemmer ?? defaultStemmer;
  let hyp: Enum = hypothesis.map((w, i) => [i, pre(w)]);
  let ref: Enum = reference.map((w, i) => [i, pre(w)]);
  const exact = matchEnums(hyp, ref);
  const stem = matchEnums(
    exact.hyp.map(([i, w]) => [i, stemmer.stem(w)]),
    exact.ref.map(([i, w]) => [i, stemmer.stem(w)]),
  );
  hyp = stem.hyp;
  ref = stem.ref;
  const syn = opts.wordnet ? synonymMatch(hyp, ref, opts.wordnet) : { matches: [] as Match[] };
  const matches = [...exact.matches, ...stem.matches, ...syn.matches].sort((a, b) => a[0] - b[0]);
  return { matches, exact: exact.matches.length, stem: stem.matches.length, synonym: syn.matches.length };
}

/** METEOR of a tokenized hypothesis against one tokenized reference. */
export function singleMeteorScore(reference: readonly string[], hypothesis: readonly string[], opts: MeteorOptions): number {
  const alpha = opts.alpha ?? 0.9, beta = opts.beta ?? 3, gamma = opts.gamma ?? 0.5;
  const { matches } = meteorAlign(hypothesis, reference, opts);
  const m = matches.length;
  if (hypothesis.length === 0 || reference.length === 0 || m === 0) return 0;
  const precision = m / hypothesis.length;
  const recall = m / reference.length;
  const fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall);
  const fragFrac = countChunks(matches) / m;
  return (1 - gamma * fragFrac ** beta) * fmean;
}

export interface MeteorResult {
  score: number;
  /** 'wordnet' when synonyms were used; 'unavailable' when no WordNet database was found. */
  synonymStage: 'wordnet' | 'unavailable';
}

/** METEOR against several references: the best single-reference score. */
export function meteorScore(references: readonly (readonly string[])[], hypothesis: readonly string[], opts: MeteorOptions): MeteorResult {
  if (references.length === 0) throw new RangeError('METEOR needs at least one reference');
  const score = Math.max(...references.map((r) => singleMeteorScore(r, hypothesis, opts)));
  return { score, synonymStage: opts.wordnet ? 'wordnet' : 'unavailable' };
}
