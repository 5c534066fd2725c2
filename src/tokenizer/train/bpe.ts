// BPE training from a word-count table, following the Rust `tokenizers` BpeTrainer step for step so that the
// same words and settings give the same vocabulary and merges:
//   1. special tokens take the first ids, in the order given;
//   2. the alphabet: every character of the words (weighted by word count) plus `initialAlphabet` (which always
//      survives); with `limitAlphabet`, only that many of the most frequent characters are kept; the kept
//      characters get the next ids in code-point order;
//   3. every word becomes a sequence of symbol ids; characters outside the alphabet are dropped; with a
//      continuing-subword prefix (WordPiece's '##') every non-initial character is the prefixed token, which is
//      added to the vocabulary when first needed;
//   4. pair counts (weighted by word count), and for each pair the set of words containing it;
//   5. repeatedly take the pair with the highest count (ties: the smaller (left id, right id) pair), append the
//      merged token (reusing its id if the string already exists), rewrite the words that contained the pair and
//      update the neighbouring pair counts incrementally; candidate pairs live in a priority queue whose stale
//      entries are re-queued with their current count when they surface (the Rust trainer's lazy updates).
//      Training stops at the vocabulary size, or when the best pair occurs fewer than `minFrequency` times.
//
// Two choices the Rust trainer leaves to chance (hash-map iteration order) are made deterministically here:
//   - the ids of tokens created in step 3 (prefixed/suffixed characters): code-point order of the token, unless
//     `continuingAlphabetOrder` gives an order (tests use it to replay one run of the Rust trainer);
//   - which characters `limitAlphabet` drops when several share the cut-off count: the higher code points.
// Byte-level BPE never creates tokens in step 3 and has no ties in step 2 (all 256 bytes are forced), so its
// result does not depend on either choice.
import { Heap } from './heap.ts';

export interface BpeTrainerOptions {
  /** Target vocabulary size, special tokens and alphabet included. */
  vocabSize: number;
  /** A pair must occur at least this often (counting word frequency) to be merged. Default 0. */
  minFrequency?: number;
  /** Tokens that take the first ids, in this order (duplicates are ignored). */
  specialTokens?: readonly string[];
  /** Keep at most this many characters in the alphabet (initial alphabet first). */
  limitAlphabet?: number;
  /** Characters that are always in the alphabet (the 256 byte characters for byte-level BPE). */
  initialAlphabet?: readonly string[];
  /** Prefix of every non-initial subword (WordPiece: '##'). */
  continuingSubwordPrefix?: string;
  /** Suffix of every word-final subword (e.g. '</w>'). */
  endOfWordSuffix?: string;
  /** Longest token, in initial symbols (characters). */
  maxTokenLength?: number;
  /** Order in which to number the prefixed/suffixed character tokens (full token strings, e.g. '##a'); tokens
   *  not listed follow in code-point order. */
  continuingAlphabetOrder?: readonly string[];
}

export interface BpeTrainingResult {
  /** id -> token. */
  vocab: string[];
  /** Merge rules in rank order, as token strings. */
  merges: Array<[string, string]>;
  /** Characters in the alphabet (after limitAlphabet). */
  alphabetSize: number;
  /** Why merging stopped. */
  stoppedBy: 'vocab-size' | 'min-frequency' | 'no-pairs';
}

/** Pair of symbol ids as one number: left * 2^26 + right (exact in a double for ids below 2^26). */
const PAIR_SHIFT = 2 ** 26;
const pairKey = (a: number, b: number): number => a * PAIR_SHIFT + b;

interface QueuedMerge {
  key: number;
  count: number;
  /** Indexes of the words that contained the pair when this entry was queued. */
  pos: Set<number>;
  /** Queue order, to make ties between equal entries deterministic. */
  seq: number;
}

/** Higher count first; then the smaller pair (left id, then right id); then the earlier entry. */
function mergeBefore(x: QueuedMerge, y: QueuedMerge): boolean {
  if (x.count !== y.count) return x.count > y.count;
  if (x.key !== y.key) return x.key < y.key;
  return x.seq < y.seq;
}

function cmpCodePoints(a: string, b: string): number {
  const ca = [...a];
  const cb = [...b];
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = (ca[i].codePointAt(0) ?? 0) - (cb[i].codePointAt(0) ?? 0);
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

export function trainBpe(wordCounts: ReadonlyMap<string, number>, options: BpeTrainerOptions): BpeTrainingResult {
  const vocabSize = options.vocabSize;
  if (!Number.isInteger(vocabSize) || vocabSize < 1) throw new Error(`BPE training: vocabSize must be a positive integer, got ${vocabSize}`);
  const minFrequency = options.minFrequency ?? 0;
  const prefix = options.continuingSubwordPrefix ?? null;
  const suffix = options.endOfWordSuffix ?? null;
  const maxLength = options.maxTokenLength ?? Infinity;

  const vocab: string[] = [];
  const ids = new Map<string, number>();
  const addToken = (t: string): number => {
    let id = ids.get(t);
    if (id === undefined) {
      id = vocab.length;
      vocab.push(t);
      ids.set(t, id);
    }
    return id;
  };

  // 1. special tokens
  for (const t of options.specialTokens ?? []) addToken(t);

  // 2. alphabet
  const charCounts = new Map<string, number>();
  for (const [word, count] of wordCounts) for (const ch of word) charCounts.set(ch, (charCounts.get(ch) ?? 0) + count);
  for (const ch of options.initialAlphabet ?? []) {
    if ([...ch].length !== 1) throw new Error(`BPE training: initial alphabet entries must be single characters, got ${JSON.stringify(ch)}`);
    charCounts.set(ch, Infinity);
  }
  let alphabet = [...charCounts.entries()];
  const limit = options.limitAlphabet;
  if (limit !== undefined && alphabet.length > limit) {
    // Drop the rarest; among equal counts the higher code points go first.
    alphabet.sort((x, y) => (x[1] !== y[1] ? x[1] - y[1] : cmpCodePoints(y[0], x[0])));
    alphabet = alphabet.slice(alphabet.length - limit);
  }
  alphabet.sort((x, y) => cmpCodePoints(x[0], y[0]));
  for (const [ch] of alphabet) addToken(ch);

  // 3. words as symbol ids. First find the prefixed/suffixed tokens that must be created, number them, then
  //    convert the words.
  const symbolOf = (ch: string, first: boolean, last: boolean): string | null => {
    if (!ids.has(ch)) return null;
    let s = ch;
    if (!first && prefix !== null) s = prefix + s;
    if (last && suffix !== null) s = s + suffix;
    return s;
  };
  if (prefix !== null || suffix !== null) {
    const created = new Set<string>();
    for (const word of wordCounts.keys()) {
      const chars = [...word];
      chars.forEach((ch, i) => {
        const s = symbolOf(ch, i === 0, i === chars.length - 1);
        if (s !== null && !ids.has(s)) created.add(s);
      });
    }
    const order = new Map<string, number>();
    (options.continuingAlphabetOrder ?? []).forEach((t, i) => order.set(t, i));
    const rank = (t: string): number => order.get(t) ?? Infinity;
    const sorted = [...created].sort((x, y) => (rank(x) !== rank(y) ? (rank(x) < rank(y) ? -1 : 1) : cmpCodePoints(x, y)));
    for (const t of sorted) addToken(t);
  }
  const words: number[][] = [];
  const counts: number[] = [];
  const lengths: number[][] | null = Number.isFinite(maxLength) ? [] : null;
  for (const [word, count] of wordCounts) {
    const chars = [...word];
    const symbols: number[] = [];
    chars.forEach((ch, i) => {
      const s = symbolOf(ch, i === 0, i === chars.length - 1);
      if (s !== null) symbols.push(ids.get(s) as number);
    });
    words.push(symbols);
    counts.push(count);
    lengths?.push(symbols.map(() => 1));
  }

  // 4. pair counts and where each pair occurs
  const pairCounts = new Map<number, number>();
  let whereToUpdate = new Map<number, Set<number>>();
  const noteWord = (key: number, w: number): void => {
    const set = whereToUpdate.get(key);
    if (set) set.add(w);
    else whereToUpdate.set(key, new Set([w]));
  };
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = pairKey(s[i], s[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + counts[w]);
      noteWord(key, w);
    }
  }
  const queue = new Heap<QueuedMerge>(mergeBefore);
  let seq = 0;
  const flushUpdates = (): void => {
    for (const [key, pos] of whereToUpdate) {
      const count = pairCounts.get(key) ?? 0;
      if (count > 0) queue.push({ key, count, pos, seq: seq++ });
    }
    whereToUpdate = new Map();
  };
  flushUpdates();

  // 5. merges
  const merges: Array<[number, number]> = [];
  let stoppedBy: BpeTrainingResult['stoppedBy'] = 'no-pairs';
  const change = (a: number, b: number, delta: number, w: number): void => {
    const key = pairKey(a, b);
    pairCounts.set(key, (pairCounts.get(key) ?? 0) + delta * counts[w]);
    if (delta > 0) noteWord(key, w);
  };
  for (;;) {
    if (vocab.length >= vocabSize) {
      stoppedBy = 'vocab-size';
      break;
    }
    const top = queue.pop();
    if (top === undefined) break;
    const current = pairCounts.get(top.key) ?? 0;
    if (top.count !== current) {
      top.count = current;
      top.seq = seq++;
      queue.push(top);
      continue;
    }
    if (top.count < 1) break;
    if (minFrequency > top.count) {
      stoppedBy = 'min-frequency';
      break;
    }
    const a = Math.floor(top.key / PAIR_SHIFT);
    const b = top.key - a * PAIR_SHIFT;
    let right = vocab[b];
    if (prefix !== null && right.startsWith(prefix)) right = right.slice(prefix.length);
    const merged = addToken(vocab[a] + right);
    if (merged >= PAIR_SHIFT) throw new Error(`BPE training: more than ${PAIR_SHIFT} tokens`);
    merges.push([a, b]);
    for (const w of top.pos) mergeInWord(words[w], lengths ? lengths[w] : null, a, b, merged, maxLength, w, change);
    flushUpdates();
  }

  // A pair merged twice (possible when a token is re-created from a different pair) keeps its last rank, as in
  // the Rust library, whose merge table is a map from pair to rank.
  const lastRank = new Map<number, number>();
  merges.forEach(([a, b], i) => lastRank.set(pairKey(a, b), i));
  const finalMerges: Array<[string, string]> = [];
  merges.forEach(([a, b], i) => {
    if (lastRank.get(pairKey(a, b)) === i) finalMerges.push([vocab[a], vocab[b]]);
  });
  return { vocab, merges: finalMerges, alphabetSize: alphabet.length, stoppedBy };
}

/**
 * Replaces every non-overlapping (left to right) occurrence of the pair (c1, c2) in `symbols` by `replacement`,
 * reporting the pair-count changes: the pairs with the left and right neighbours lose one occurrence each, and
 * the new pairs with the replacement gain one (unless the result would reach `maxLength` symbols).
 */
function mergeInWord(
  symbols: number[],
  lengths: number[] | null,
  c1: number,
  c2: number,
  replacement: number,
  maxLength: number,
  word: number,
  change: (a: number, b: number, delta: number, word: number) => void,
): void {
  for (let i = 0; i < symbols.length; i++) {
    if (symbols[i] !== c1 || i + 1 >= symbols.length || symbols[i + 1] !== c2) continue;
    const second = symbols[i + 1];
    const newLength = lengths ? lengths[i] + lengths[i + 1] : 0;
    if (i > 0) {
      change(symbols[i - 1], symbols[i], -1, word);
      if (!lengths || lengths[i - 1] + newLength < maxLength) change(symbols[i - 1], replacement, 1, word);
    }
    symbols.splice(i, 2, replacement);
    lengths?.splice(i, 2, newLength);
    if (i < symbols.length - 1) {
      change(second, symbols[i + 1], -1, word);
      if (!lengths || lengths[i + 1] + newLength < maxLength) change(replacement, symbols[i + 1], 1, word);
    }
  }
}
