// Unigram language-model training (Kudo 2018, as in SentencePiece): start from a large seed vocabulary, fit
// piece probabilities by EM over the segmentation lattice of every word, and repeatedly prune the pieces whose
// removal costs the least likelihood, until the vocabulary is close to the target size.
//
//   seeds:  every character of the corpus, plus the most frequent substrings of the words (at most
//           `maxPieceLength` characters, a '▁' only at the start, occurring at least `minFrequency` times),
//           ranked by frequency x length; initial scores are log(frequency) normalised (log-probabilities);
//   E-step: forward-backward on each distinct word's lattice gives the expected count of every piece
//           (weighted by the word's count);
//   M-step: pieces expected fewer than 0.5 times are dropped; scores become digamma(count) - digamma(total),
//           the variational-Bayes update SentencePiece uses (it favours frequent pieces a little);
//   prune:  for each piece, the likelihood lost if its occurrences in the Viterbi segmentations were replaced by
//           its own best alternative segmentation; the pieces losing least go, keeping max(target * 1.1,
//           0.75 x current) pieces per round;
//   final:  special tokens (score 0) first, then the highest-scoring pieces; single characters are never pruned,
//           so every character of the corpus stays encodable (character coverage 1.0).
// Deterministic: no randomness, ties broken by piece string. Matching SentencePiece or the Rust trainer piece
// for piece is not a goal (their seed selection differs); the output is a valid Unigram tokenizer.json model.
import { METASPACE } from './pretokenize.ts';

export interface UnigramTrainerOptions {
  /** Target vocabulary size, special tokens included. */
  vocabSize: number;
  /** Tokens that take the first ids (score 0), in this order. Must contain `unkToken`. */
  specialTokens: readonly string[];
  unkToken: string;
  /** A multi-character seed piece must occur at least this often (default 2). */
  minFrequency?: number;
  /** Longest piece, in characters (default 16, as SentencePiece). */
  maxPieceLength?: number;
  /** Seed vocabulary size before EM (default 200 000). */
  seedSize?: number;
  /** Fraction of pieces kept per pruning round (default 0.75). */
  shrinkingFactor?: number;
  /** EM iterations between pruning rounds (default 2). */
  subIterations?: number;
  /** Called after every pruning round with the current number of pieces (progress reporting). */
  onRound?: (pieces: number) => void;
}

export interface UnigramTrainingResult {
  /** [piece, log-probability score] in id order; special tokens first with score 0. */
  pieces: Array<[string, number]>;
  unkId: number;
  /** EM + prune rounds run. */
  rounds: number;
  /** Distinct characters (all kept). */
  alphabetSize: number;
}

interface Piece {
  piece: string;
  /** Code points. */
  chars: number[];
  score: number;
}

/** Digamma function: recurrence up to x >= 7, then the asymptotic series (SentencePiece's form). */
export function digamma(x: number): number {
  let result = 0;
  for (; x < 7; x++) result -= 1 / x;
  x -= 0.5;
  const xx = 1 / x;
  const xx2 = xx * xx;
  const xx4 = xx2 * xx2;
  result += Math.log(x) + (1 / 24) * xx2 - (7 / 960) * xx4 + (31 / 8064) * xx4 * xx2 - (127 / 30720) * xx4 * xx4;
  return result;
}

/** Lowest score (a loop: spreading 10^5 arguments into Math.min overflows the stack). */
function minScore(pieces: readonly Piece[]): number {
  let m = Infinity;
  for (const p of pieces) if (p.score < m) m = p.score;
  return m;
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

/** Code-point trie over the current pieces: finds every piece that starts at a position of a word. */
class PieceTrie {
  private readonly children: Array<Map<number, number>> = [new Map()];
  private readonly pieceAt: number[] = [-1];

  constructor(pieces: readonly Piece[]) {
    pieces.forEach((p, id) => {
      let node = 0;
      for (const cp of p.chars) {
        let next = this.children[node].get(cp);
        if (next === undefined) {
          next = this.children.length;
          this.children.push(new Map());
          this.pieceAt.push(-1);
          this.children[node].set(cp, next);
        }
        node = next;
      }
      this.pieceAt[node] = id;
    });
  }

  /** Appends (start, end, piece) edges of `word` to `out` (flat triples); returns the number of edges. Positions
   *  no piece of length 1 covers get an edge with piece -1 (unknown). */
  edges(word: Int32Array, out: number[]): number {
    out.length = 0;
    for (let i = 0; i < word.length; i++) {
      let node = 0;
      let single = false;
      for (let j = i; j < word.length; j++) {
        const next = this.children[node].get(word[j]);
        if (next === undefined) break;
        node = next;
        const id = this.pieceAt[node];
        if (id >= 0) {
          out.push(i, j + 1, id);
          if (j === i) single = true;
        }
      }
      if (!single) out.push(i, i + 1, -1);
    }
    return out.length / 3;
  }
}

interface Words {
  chars: Int32Array[];
  counts: number[];
}

function toWords(wordCounts: ReadonlyMap<string, number>): Words {
  const chars: Int32Array[] = [];
  const counts: number[] = [];
  // Sorted so that floating-point sums do not depend on the corpus order of first appearance.
  for (const w of [...wordCounts.keys()].sort()) {
    chars.push(Int32Array.from([...w].map((c) => c.codePointAt(0) ?? 0)));
    counts.push(wordCounts.get(w) ?? 0);
  }
  return { chars, counts };
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Seed pieces: all characters, then the top substrings by frequency x length, scores as log-probabilities. */
function seedPieces(wordCounts: ReadonlyMap<string, number>, o: Required<Pick<UnigramTrainerOptions, 'maxPieceLength' | 'seedSize' | 'minFrequency'>>): Piece[] {
  const charFreq = new Map<string, number>();
  const subFreq = new Map<string, number>();
  for (const [word, count] of wordCounts) {
    const cps = [...word];
    for (let i = 0; i < cps.length; i++) {
      charFreq.set(cps[i], (charFreq.get(cps[i]) ?? 0) + count);
      let s = cps[i];
      for (let j = i + 1; j < cps.length && j - i < o.maxPieceLength; j++) {
        if (cps[j] === METASPACE) break; // '▁' only starts a piece
        s += cps[j];
        subFreq.set(s, (subFreq.get(s) ?? 0) + count);
      }
    }
  }
  const chars = [...charFreq.entries()].sort((a, b) => b[1] - a[1] || cmpStr(a[0], b[0]));
  const minFreq = Math.max(2, o.minFrequency);
  const subs: Array<[string, number]> = [];
  for (const [s, f] of subFreq) if (f >= minFreq) subs.push([s, f * [...s].length]);
  subs.sort((a, b) => b[1] - a[1] || cmpStr(a[0], b[0]));
  const seeds = [...chars, ...subs.slice(0, Math.max(0, o.seedSize - chars.length))];
  const logSum = Math.log(seeds.reduce((acc, [, f]) => acc + f, 0));
  return seeds.map(([piece, f]) => ({ piece, chars: [...piece].map((c) => c.codePointAt(0) ?? 0), score: Math.log(f) - logSum }));
}

/** Expected piece counts (forward-backward over every word's lattice). */
function eStep(pieces: readonly Piece[], words: Words): Float64Array {
  const trie = new PieceTrie(pieces);
  const expected = new Float64Array(pieces.length);
  const unkScore = minScore(pieces) - 10;
  const edges: number[] = [];
  let alpha = new Float64Array(64);
  let beta = new Float64Array(64);
  for (let w = 0; w < words.chars.length; w++) {
    const word = words.chars[w];
    const n = word.length;
    if (n === 0) continue;
    const m = trie.edges(word, edges);
    if (alpha.length < n + 1) {
      alpha = new Float64Array(2 * (n + 1));
      beta = new Float64Array(2 * (n + 1));
    }
    alpha.fill(-Infinity, 0, n + 1);
    beta.fill(-Infinity, 0, n + 1);
    alpha[0] = 0;
    beta[n] = 0;
    // Edges are sorted by start position: forward in order, backward in reverse.
    for (let e = 0; e < m; e++) {
      const s = edges[3 * e];
      const t = edges[3 * e + 1];
      const id = edges[3 * e + 2];
      alpha[t] = logAddExp(alpha[t], alpha[s] + (id >= 0 ? pieces[id].score : unkScore));
    }
    for (let e = m - 1; e >= 0; e--) {
      const s = edges[3 * e];
      const t = edges[3 * e + 1];
      const id = edges[3 * e + 2];
      beta[s] = logAddExp(beta[s], beta[t] + (id >= 0 ? pieces[id].score : unkScore));
    }
    const z = alpha[n];
    const count = words.counts[w];
    for (let e = 0; e < m; e++) {
      const id = edges[3 * e + 2];
      if (id < 0) continue;
      const s = edges[3 * e];
      const t = edges[3 * e + 1];
      expected[id] += count * Math.exp(alpha[s] + pieces[id].score + beta[t] - z);
    }
  }
  return expected;
}

/** Drops rarely used pieces (never single characters) and re-scores by the digamma update. */
function mStep(pieces: readonly Piece[], expected: Float64Array): Piece[] {
  const THRESHOLD = 0.5;
  const kept: Array<[Piece, number]> = [];
  let sum = 0;
  pieces.forEach((p, i) => {
    let f = expected[i];
    if (f < THRESHOLD) {
      if (p.chars.length > 1) return;
      f = THRESHOLD;
    }
    kept.push([p, f]);
    sum += f;
  });
  const logSum = digamma(sum);
  return kept.map(([p, f]) => ({ ...p, score: digamma(f) - logSum }));
}

/** Best segmentation of a word: piece ids (-1 = unknown) and its score. `banned` excludes one whole-word edge. */
function viterbi(word: Int32Array, trie: PieceTrie, pieces: readonly Piece[], unkScore: number, edges: number[], banned = -1): { path: number[]; score: number } {
  const n = word.length;
  const m = trie.edges(word, edges);
  const best = new Float64Array(n + 1).fill(-Infinity);
  const fromPos = new Int32Array(n + 1).fill(-1);
  const fromId = new Int32Array(n + 1).fill(-2);
  best[0] = 0;
  for (let e = 0; e < m; e++) {
    const s = edges[3 * e];
    const t = edges[3 * e + 1];
    const id = edges[3 * e + 2];
    if (id === banned && s === 0 && t === n) continue;
    const v = best[s] + (id >= 0 ? pieces[id].score : unkScore);
    if (v > best[t]) {
      best[t] = v;
      fromPos[t] = s;
      fromId[t] = id;
    }
  }
  if (best[n] === -Infinity) return { path: [], score: -Infinity };
  const path: number[] = [];
  for (let t = n; t > 0; t = fromPos[t]) path.push(fromId[t]);
  path.reverse();
  return { path, score: best[n] };
}

/** One pruning round (SentencePiece's PruneSentencePieces): keeps max(desired, shrink x size) pieces. */
function prune(pieces: readonly Piece[], words: Words, desired: number, shrinkingFactor: number): Piece[] {
  const trie = new PieceTrie(pieces);
  const unkScore = minScore(pieces) - 10;
  const edges: number[] = [];
  // For each piece: must it stay whatever happens, and what would replace it?
  const alwaysKeep = new Array<boolean>(pieces.length).fill(true);
  const alternatives: number[][] = pieces.map(() => []);
  pieces.forEach((p, i) => {
    const word = Int32Array.from(p.chars);
    const withIt = viterbi(word, trie, pieces, unkScore, edges);
    if (withIt.path.length >= 2) {
      alwaysKeep[i] = false; // the piece never wins against its own parts: never used in a Viterbi path
      return;
    }
    const without = viterbi(word, trie, pieces, unkScore, edges, i);
    if (without.path.length > 0 && !without.path.includes(-1)) alternatives[i] = without.path;
  });
  // Viterbi frequencies over the corpus, and which words use each piece.
  const freq = new Float64Array(pieces.length);
  const inverted: number[][] = pieces.map(() => []);
  let vsum = 0;
  for (let w = 0; w < words.chars.length; w++) {
    if (words.chars[w].length === 0) continue;
    const count = words.counts[w];
    vsum += count;
    for (const id of viterbi(words.chars[w], trie, pieces, unkScore, edges).path) {
      if (id < 0) continue;
      freq[id] += count;
      inverted[id].push(w);
    }
  }
  const sum = freq.reduce((a, b) => a + b, 0);
  const logSum = Math.log(sum);
  const keep: number[] = [];
  const candidates: Array<[number, number]> = [];
  pieces.forEach((p, i) => {
    if (p.chars.length === 1) keep.push(i); // characters are never pruned
    else if (freq[i] === 0 || !alwaysKeep[i]) return;
    else if (alternatives[i].length === 0) keep.push(i);
    else {
      let f = 0;
      for (const w of inverted[i]) f += words.counts[w];
      f /= vsum;
      const logProbPiece = Math.log(freq[i]) - logSum;
      // Without the piece, its occurrences are re-assigned to its alternative segmentation.
      const logSumAlt = Math.log(sum + freq[i] * (alternatives[i].length - 1));
      let logProbAlt = 0;
      for (const n of alternatives[i]) logProbAlt += Math.log(freq[n] + freq[i]) - logSumAlt;
      candidates.push([i, f * (logProbPiece - logProbAlt)]);
    }
  });
  const target = Math.max(desired, Math.floor(shrinkingFactor * pieces.length));
  candidates.sort((a, b) => b[1] - a[1] || cmpStr(pieces[a[0]].piece, pieces[b[0]].piece));
  for (const [i] of candidates) {
    if (keep.length >= target) break;
    keep.push(i);
  }
  keep.sort((a, b) => a - b);
  return keep.map((i) => pieces[i]);
}

export function trainUnigram(wordCounts: ReadonlyMap<string, number>, options: UnigramTrainerOptions): UnigramTrainingResult {
  const specials: string[] = [];
  for (const t of options.specialTokens) if (!specials.includes(t)) specials.push(t);
  const unkId = specials.indexOf(options.unkToken);
  if (unkId < 0) throw new Error(`Unigram training: the unknown token ${JSON.stringify(options.unkToken)} must be one of the special tokens`);
  if (!Number.isInteger(options.vocabSize) || options.vocabSize < 1) throw new Error(`Unigram training: vocabSize must be a positive integer, got ${options.vocabSize}`);
  const o = {
    maxPieceLength: options.maxPieceLength ?? 16,
    seedSize: options.seedSize ?? 200_000,
    minFrequency: options.minFrequency ?? 2,
    shrinkingFactor: options.shrinkingFactor ?? 0.75,
    subIterations: options.subIterations ?? 2,
  };
  const specialSet = new Set(specials);
  const counts = new Map<string, number>();
  for (const [w, c] of wordCounts) if (w.length > 0 && c > 0) counts.set(w, c);
  const words = toWords(counts);
  let pieces = seedPieces(counts, o).filter((p) => !specialSet.has(p.piece));
  const alphabetSize = pieces.filter((p) => p.chars.length === 1).length;
  const budget = Math.max(0, options.vocabSize - specials.length);
  const desired = Math.floor(budget * 1.1);

  let rounds = 0;
  for (;;) {
    rounds++;
    for (let it = 0; it < o.subIterations; it++) pieces = mStep(pieces, eStep(pieces, words));
    if (pieces.length <= desired) break;
    const before = pieces.length;
    pieces = prune(pieces, words, desired, o.shrinkingFactor);
    options.onRound?.(pieces.length);
    if (pieces.length >= before) break; // nothing left that may be pruned
  }

  // Final selection: all characters, then the best-scoring longer pieces up to the budget; output by score.
  const chars = pieces.filter((p) => p.chars.length === 1);
  const longer = pieces.filter((p) => p.chars.length > 1).sort((a, b) => b.score - a.score || cmpStr(a.piece, b.piece));
  const chosen = [...chars, ...longer.slice(0, Math.max(0, budget - chars.length))];
  chosen.sort((a, b) => b.score - a.score || cmpStr(a.piece, b.piece));
  return {
    pieces: [...specials.map((s): [string, number] => [s, 0]), ...chosen.map((p): [string, number] => [p.piece, p.score])],
    unkId,
    rounds,
    alphabetSize,
  };
}

/**
 * Expected number of uses of each piece when every word is segmented by the unigram model (forward-backward
 * over the segmentation lattice), weighted by word count: the E-step. Exposed for tests and diagnostics.
 */
export function expectedPieceCounts(pieces: ReadonlyArray<readonly [string, number]>, wordCounts: ReadonlyMap<string, number>): number[] {
  const model: Piece[] = pieces.map(([piece, score]) => ({ piece, chars: [...piece].map((c) => c.codePointAt(0) ?? 0), score }));
  return [...eStep(model, toWords(wordCounts))];
}
