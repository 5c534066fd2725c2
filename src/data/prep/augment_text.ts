// Word-level text augmentation: EDA (Wei & Zou 2019, "EDA: Easy Data Augmentation Techniques for Boosting
// Performance on Text Classification Tasks") on text that keeps its punctuation, case and line breaks.
//
// Text model. A string is split into words and the gaps between them:
//     gaps[0] words[0] gaps[1] words[1] ... words[n-1] gaps[n]        (gaps.length === words.length + 1)
// A word is a run of letters, combining marks and digits (any script: "café", "naïve", "Straße", "東京"),
// joined by an apostrophe or hyphen inside it ("don't", "well-known", "l’eau"). Everything else — spaces,
// line breaks, punctuation, symbols, emoji — lives in the gaps. Scripts written without spaces (Chinese,
// Japanese, Thai) are one word per run of letters: EDA's word operations only make sense for spaced text.
//
// Punctuation rules (what every operation guarantees):
//   - Gaps are never rewritten, moved or reordered: every punctuation mark, symbol and line break of the
//     input is in the output, in the same order.
//   - Synonym replacement changes a word in place and matches its case: ALL-CAPS (two or more letters) ->
//     the synonym upper-cased; Capitalised -> the synonym's first letter upper-cased; otherwise the synonym
//     as the synonym source spells it.
//   - Random swap exchanges two words; the gaps stay where they were ("Hi, Bob." -> "Bob, Hi.").
//   - Random insertion puts the new word before words[p] followed by one space ("x Hello, world."), or
//     after the last word preceded by one space, before any trailing punctuation ("Hello, world x.").
//   - Random deletion removes the word and the spaces/tabs right before it — or, when there are none, the
//     spaces/tabs right after it. Punctuation and line breaks are never removed: "Hello, world." without
//     "world" is "Hello,." and without "Hello" is ", world.".
//   - A text without words (empty, only punctuation) comes back unchanged.
//
// Randomness: every choice draws from the caller's Rng (rng.ts: sfc32 seeded through splitmix32), in the
// order documented on each function, so the same seed always gives the same output.
import type { Rng } from './rng.ts';

/** A word: letters / marks / digits, with inner apostrophes (' or ’) and hyphens. */
export const WORD_PATTERN = /[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*/gu;

export interface Segmented {
  /** The words, in order. */
  words: string[];
  /** The text around and between the words; gaps.length === words.length + 1. */
  gaps: string[];
}

/** Splits text into words and gaps (see the file comment). join(segment(s)) === s for every string. */
export function segment(text: string): Segmented {
  const words: string[] = [];
  const gaps: string[] = [];
  let last = 0;
  for (const m of text.matchAll(WORD_PATTERN)) {
    gaps.push(text.slice(last, m.index));
    words.push(m[0]);
    last = m.index + m[0].length;
  }
  gaps.push(text.slice(last));
  return { words, gaps };
}

export function join(s: Segmented): string {
  let out = s.gaps[0];
  for (let i = 0; i < s.words.length; i++) out += s.words[i] + s.gaps[i + 1];
  return out;
}

function cloneSeg(s: Segmented): Segmented {
  return { words: [...s.words], gaps: [...s.gaps] };
}

/** The key words are compared and looked up by: NFC, lower-cased (locale-independent). */
export function wordKey(word: string): string {
  return word.normalize('NFC').toLowerCase();
}

function hasCase(ch: string): boolean {
  return ch.toUpperCase() !== ch.toLowerCase();
}

/** Applies the case pattern of `original` to `replacement` (see the file comment). */
export function matchCase(original: string, replacement: string): string {
  const chars = Array.from(original);
  const cased = chars.filter(hasCase);
  if (cased.length >= 2 && cased.every((c) => c === c.toUpperCase())) return replacement.toUpperCase();
  const first = chars[0];
  if (first !== undefined && hasCase(first) && first === first.toUpperCase()) {
    const r = Array.from(replacement);
    if (r.length === 0) return replacement;
    return r[0].toUpperCase() + r.slice(1).join('');
  }
  return replacement;
}

// ------------------------------------------------------------------------------------------- stop words

/**
 * English function words that synonym replacement and insertion never pick (EDA's rule): articles,
 * pronouns, prepositions, conjunctions, auxiliaries and modals, common adverbs of degree and time, and the
 * contractions built from them. Written for alignkit; pass your own list with --stop-words for other
 * languages (keys are compared NFC + lower-case).
 */
export const DEFAULT_STOP_WORDS: ReadonlySet<string> = new Set(
  [
    // articles and determiners
    'a an the this that these those each every either neither some any no all both few many much more most other another such what which whose',
    // personal, possessive and reflexive pronouns
    'i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself she her hers herself it its itself they them their theirs themselves one who whom',
    // prepositions
    'about above across after against along among around at before behind below beneath beside between beyond by down during except for from in inside into near of off on onto out outside over past since through throughout till to toward towards under until up upon with within without via per',
    // conjunctions and subordinators
    'and or but nor so yet if then else than as because while whereas although though unless whether once',
    // be / have / do, modals
    'am is are was were be been being have has had having do does did doing will would shall should can could may might must ought',
    // adverbs of place, time, degree; question words
    'here there where when why how now just only also too very again further still even ever not',
    // contractions (straight and curly apostrophes are both matched by normalising ’ to ')
    "i'm i've i'll i'd you're you've you'll you'd he's he'll he'd she's she'll she'd it's it'll we're we've we'll we'd they're they've they'll they'd that's there's what's who's let's",
    "isn't aren't wasn't weren't hasn't haven't hadn't doesn't don't didn't won't wouldn't shan't shouldn't can't cannot couldn't mustn't mightn't needn't",
  ]
    .join(' ')
    .split(/\s+/),
);

/** Whether a word is a stop word of `stop` (curly apostrophes count as straight ones). */
export function isStopWord(word: string, stop: ReadonlySet<string>): boolean {
  return stop.has(wordKey(word).replace(/’/g, "'"));
}

// ------------------------------------------------------------------------------------------- synonyms

/** Where synonyms come from: a thesaurus file, WordNet, or both (augment_synonyms.ts, augment_wordnet.ts). */
export interface SynonymSource {
  /**
   * Candidate replacements for a word as written in the text (the source normalises case and inflection),
   * in a fixed order, without the word itself and without duplicates. Empty when none are known.
   */
  synonyms(word: string): readonly string[];
}

// ------------------------------------------------------------------------------------------- operations

/** EDA's count of words an operation changes: n = max(1, round(alpha * words)); round half up. */
export function edaCount(alpha: number, words: number): number {
  return Math.max(1, Math.round(alpha * words));
}

/** One word replaced, inserted, swapped or deleted (for the augmentation record). */
export type WordEdit =
  | { op: 'replace'; word: string; with: string }
  | { op: 'insert'; word: string; at: number }
  | { op: 'swap'; a: string; b: string }
  | { op: 'delete'; word: string };

export interface OpResult {
  text: string;
  edits: WordEdit[];
}

/**
 * Synonym replacement (SR). The distinct non-stop words of the text (by key, in order of first appearance)
 * are shuffled (rng.shuffle); going through them in that order, each word that has synonyms has ALL its
 * occurrences replaced by one synonym drawn uniformly (rng.below), case-matched per occurrence, until n words
 * were replaced or the list ends. (Replacing every occurrence keeps a repeated word consistent, as the
 * authors' code does.)
 */
export function synonymReplacement(text: string, n: number, synonyms: SynonymSource, stop: ReadonlySet<string>, rng: Rng): OpResult {
  const seg = segment(text);
  const order: string[] = [];
  const firstSpelling = new Map<string, string>();
  for (const w of seg.words) {
    const k = wordKey(w);
    if (firstSpelling.has(k) || isStopWord(w, stop)) continue;
    firstSpelling.set(k, w);
    order.push(k);
  }
  rng.shuffle(order);
  const edits: WordEdit[] = [];
  for (const k of order) {
    if (edits.length >= n) break;
    const cands = synonyms.synonyms(firstSpelling.get(k)!);
    if (cands.length === 0) continue;
    const pick = cands[rng.below(cands.length)];
    for (let i = 0; i < seg.words.length; i++) if (wordKey(seg.words[i]) === k) seg.words[i] = matchCase(seg.words[i], pick);
    edits.push({ op: 'replace', word: firstSpelling.get(k)!, with: pick });
  }
  return { text: join(seg), edits };
}

/** Inserts `word` so that it becomes words[p] (0 <= p <= words.length), following the insertion rule above. */
export function insertWord(seg: Segmented, p: number, word: string): Segmented {
  const s = cloneSeg(seg);
  if (s.words.length === 0) {
    s.words.push(word);
    s.gaps = [s.gaps[0], ''];
    return s;
  }
  if (p < s.words.length) {
    // gaps[p] word ' ' words[p]
    s.words.splice(p, 0, word);
    s.gaps.splice(p + 1, 0, ' ');
  } else {
    // words[n-1] ' ' word gaps[n]
    s.words.push(word);
    s.gaps.splice(s.gaps.length - 1, 0, ' ');
  }
  return s;
}

/**
 * Random insertion (RI), repeated n times: among the current non-stop words that have synonyms, one is drawn
 * uniformly (rng.below), then one of its synonyms (rng.below), then a position p in 0..words (rng.below);
 * the synonym is inserted there as the source spells it. Stops early when no word has a synonym. (The
 * authors' code retries a random word up to 10 times; drawing from the words that have synonyms gives the
 * same distribution without giving up.)
 */
export function randomInsertion(text: string, n: number, synonyms: SynonymSource, stop: ReadonlySet<string>, rng: Rng): OpResult {
  let seg = segment(text);
  const edits: WordEdit[] = [];
  for (let r = 0; r < n; r++) {
    const cands: { i: number; syns: readonly string[] }[] = [];
    for (let i = 0; i < seg.words.length; i++) {
      if (isStopWord(seg.words[i], stop)) continue;
      const syns = synonyms.synonyms(seg.words[i]);
      if (syns.length) cands.push({ i, syns });
    }
    if (cands.length === 0) break;
    const c = cands[rng.below(cands.length)];
    const word = c.syns[rng.below(c.syns.length)];
    const at = rng.below(seg.words.length + 1);
    seg = insertWord(seg, at, word);
    edits.push({ op: 'insert', word, at });
  }
  return { text: join(seg), edits };
}

/**
 * Random swap (RS), repeated n times: two different positions i (rng.below(words)) and j (rng.below(words - 1),
 * skipping i) have their words exchanged; gaps stay. Needs at least two words (else unchanged).
 */
export function randomSwap(text: string, n: number, rng: Rng): OpResult {
  const seg = segment(text);
  const edits: WordEdit[] = [];
  const len = seg.words.length;
  if (len < 2) return { text, edits };
  for (let r = 0; r < n; r++) {
    const i = rng.below(len);
    let j = rng.below(len - 1);
    if (j >= i) j++;
    edits.push({ op: 'swap', a: seg.words[i], b: seg.words[j] });
    const t = seg.words[i];
    seg.words[i] = seg.words[j];
    seg.words[j] = t;
  }
  return { text: join(seg), edits };
}

const TRAILING_HSPACE = /[\t\p{Zs}]+$/u;
const LEADING_HSPACE = /^[\t\p{Zs}]+/u;

/** Removes words[i] by the deletion rule of the file comment. */
export function deleteWord(seg: Segmented, i: number): Segmented {
  const s = cloneSeg(seg);
  let left = s.gaps[i];
  let right = s.gaps[i + 1];
  const m = TRAILING_HSPACE.exec(left);
  if (m) left = left.slice(0, m.index);
  else right = right.replace(LEADING_HSPACE, '');
  s.words.splice(i, 1);
  s.gaps.splice(i, 2, left + right);
  return s;
}

/**
 * Random deletion (RD): each word is deleted with probability p (one rng.next() per word, in order; deleted
 * when the draw is < p). A one-word text is left alone; when every word would go, one drawn uniformly
 * (rng.below) is kept — both as the authors' code does.
 */
export function randomDeletion(text: string, p: number, rng: Rng): OpResult {
  let seg = segment(text);
  const len = seg.words.length;
  if (len <= 1) return { text, edits: [] };
  const keep = seg.words.map(() => rng.next() >= p);
  if (!keep.some((k) => k)) keep[rng.below(len)] = true;
  const edits: WordEdit[] = [];
  for (let i = len - 1; i >= 0; i--) {
    if (keep[i]) continue;
    edits.unshift({ op: 'delete', word: seg.words[i] });
    seg = deleteWord(seg, i);
  }
  return { text: join(seg), edits };
}

// ------------------------------------------------------------------------------------------------- EDA

export type EdaOperation = 'synonym_replacement' | 'random_insertion' | 'random_swap' | 'random_deletion';
export const EDA_OPERATIONS: readonly EdaOperation[] = ['synonym_replacement', 'random_insertion', 'random_swap', 'random_deletion'];

export interface EdaParams {
  /** Fraction of words replaced by synonyms (0 turns SR off). */
  alphaSr: number;
  /** Fraction of words inserted (0 turns RI off). */
  alphaRi: number;
  /** Fraction of words swapped (0 turns RS off). */
  alphaRs: number;
  /** Probability that a word is deleted (0 turns RD off). */
  pRd: number;
  /** Augmented texts per input. */
  numAug: number;
}

/** EDA's defaults (the authors' code): alpha = 0.1 for all four operations, 9 augmentations per sentence. */
export const EDA_DEFAULTS: EdaParams = { alphaSr: 0.1, alphaRi: 0.1, alphaRs: 0.1, pRd: 0.1, numAug: 9 };

/** The rate parameter of one operation. */
export function edaRate(op: EdaOperation, p: EdaParams): number {
  return op === 'synonym_replacement' ? p.alphaSr : op === 'random_insertion' ? p.alphaRi : op === 'random_swap' ? p.alphaRs : p.pRd;
}

/**
 * Which operation each of the numAug outputs uses. Every enabled operation (rate > 0) gets
 * ceil(numAug / enabled) slots, in the order SR, RI, RS, RD; the list is shuffled (rng.shuffle) and cut to
 * numAug. (The authors' code gives each of the four int(numAug / 4) + 1 and cuts the shuffled list the same
 * way; ceil(numAug / enabled) is the fewest that always yields numAug outputs when some are turned off.)
 * Empty when no operation is enabled.
 */
export function edaPlan(p: EdaParams, rng: Rng): EdaOperation[] {
  const enabled = EDA_OPERATIONS.filter((op) => edaRate(op, p) > 0);
  if (enabled.length === 0 || p.numAug <= 0) return [];
  const per = Math.ceil(p.numAug / enabled.length);
  const plan: EdaOperation[] = [];
  for (const op of enabled) for (let i = 0; i < per; i++) plan.push(op);
  return rng.shuffle(plan).slice(0, p.numAug);
}

/**
 * Applies one EDA operation to a text: n = edaCount(alpha, words) for SR / RI / RS (n counted on the input
 * text's words), probability pRd for RD.
 */
export function applyEda(op: EdaOperation, text: string, p: EdaParams, synonyms: SynonymSource, stop: ReadonlySet<string>, rng: Rng): OpResult & { n: number | null } {
  const words = segment(text).words.length;
  if (words === 0) return { text, edits: [], n: 0 };
  switch (op) {
    case 'synonym_replacement': {
      const n = edaCount(p.alphaSr, words);
      return { ...synonymReplacement(text, n, synonyms, stop, rng), n };
    }
    case 'random_insertion': {
      const n = edaCount(p.alphaRi, words);
      return { ...randomInsertion(text, n, synonyms, stop, rng), n };
    }
    case 'random_swap': {
      const n = edaCount(p.alphaRs, words);
      return { ...randomSwap(text, n, rng), n };
    }
    case 'random_deletion':
      return { ...randomDeletion(text, p.pRd, rng), n: null };
  }
}
