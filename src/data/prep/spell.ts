// Spelling correction against a word list (optional `clean` step).
//
// A word (a run of letters, with inner apostrophes) that is not in the list — compared in lower case — is
// replaced by the best candidate at Damerau-Levenshtein distance 1 (one deletion, insertion, substitution or
// transposition of adjacent letters), or, when there is none and maxDistance is 2, at distance 2. Among the
// candidates at the smallest distance the most frequent wins when a frequency list was given; without one (or
// on a tie) the alphabetically first. A capitalised word stays capitalised: "Teh" -> "The".
//
// Left alone: words shorter than minLength (3 by default), words containing digits or underscores (attached by
// the tokeniser below, so they never match), ALL-CAPS words (acronyms), words with an upper-case letter after
// the first (CamelCase, names like McDonald), and words with no candidate. This is a conservative typo fixer
// for English-like text, not a grammar checker: it cannot fix real-word errors ("form" for "from") and will
// "correct" rare words missing from the list — run it only with a list that fits the data.
//
// Word list: one word per line (Debian's wamerican /usr/share/dict/words, or any such file); '#' comments and
// blank lines are ignored. Frequency list: "word count" or "word<TAB>count" per line.
import fs from 'node:fs';
import { PrepError } from './errors.ts';

export interface SpellOptions {
  maxDistance?: 1 | 2;
  minLength?: number;
}

export class SpellChecker {
  private readonly words: Set<string>;
  private readonly freq: Map<string, number> | null;
  private readonly alphabet: string[];
  private readonly cache = new Map<string, string | null>();
  readonly maxDistance: 1 | 2;
  readonly minLength: number;

  constructor(words: Iterable<string>, freq: Map<string, number> | null = null, o: SpellOptions = {}) {
    this.words = new Set();
    const letters = new Set<string>();
    for (const w of words) {
      const lw = w.trim().toLowerCase();
      if (!lw) continue;
      this.words.add(lw);
      for (const c of lw) if (/\p{L}/u.test(c)) letters.add(c);
    }
    this.freq = freq;
    this.alphabet = [...letters].sort();
    this.maxDistance = o.maxDistance ?? 1;
    this.minLength = o.minLength ?? 3;
  }

  static fromFiles(wordlist: string, freqFile?: string, o: SpellOptions = {}): SpellChecker {
    const words = readList(wordlist).map((l) => l.text);
    let freq: Map<string, number> | null = null;
    if (freqFile) {
      freq = new Map();
      for (const { text, line } of readList(freqFile)) {
        const m = /^(\S+)[ \t]+(\d+(?:\.\d+)?)\s*$/.exec(text);
        if (!m) throw new PrepError(freqFile, { line }, `expected "word count", got ${JSON.stringify(text.slice(0, 60))}`);
        freq.set(m[1].toLowerCase(), (freq.get(m[1].toLowerCase()) ?? 0) + Number(m[2]));
      }
    }
    return new SpellChecker(words, freq, o);
  }

  has(word: string): boolean {
    return this.words.has(word.toLowerCase());
  }

  /** Single-edit variants of a lower-case word (may contain duplicates). */
  private edits1(w: string): string[] {
    const out: string[] = [];
    for (let i = 0; i <= w.length; i++) {
      const a = w.slice(0, i), b = w.slice(i);
      if (b) out.push(a + b.slice(1)); // deletion
      if (b.length > 1) out.push(a + b[1] + b[0] + b.slice(2)); // transposition
      for (const c of this.alphabet) {
        if (b) out.push(a + c + b.slice(1)); // substitution
        out.push(a + c + b); // insertion
      }
    }
    return out;
  }

  private best(cands: Iterable<string>): string | null {
    let best: string | null = null;
    let bestF = -1;
    for (const c of cands) {
      if (!this.words.has(c)) continue;
      const f = this.freq?.get(c) ?? 0;
      if (best === null || f > bestF || (f === bestF && c < best)) {
        best = c;
        bestF = f;
      }
    }
    return best;
  }

  /** The lower-case correction of a lower-case word, or null when it is known or has no candidate. */
  suggest(lower: string): string | null {
    if (this.words.has(lower)) return null;
    const hit = this.cache.get(lower);
    if (hit !== undefined) return hit;
    const e1 = this.edits1(lower);
    let r = this.best(e1);
    if (r === null && this.maxDistance === 2 && lower.length <= 20) {
      const e2 = new Set<string>();
      for (const x of new Set(e1)) for (const y of this.edits1(x)) e2.add(y);
      r = this.best(e2);
    }
    if (this.cache.size > 100_000) this.cache.clear();
    this.cache.set(lower, r);
    return r;
  }

  /** Corrects every eligible word of a text. */
  correct(text: string): string {
    return text.replace(/[\p{L}\p{M}\p{N}_]+(?:['’][\p{L}\p{M}]+)*/gu, (word) => {
      if (word.length < this.minLength || /[\p{N}_]/u.test(word)) return word;
      const rest = word.slice(1);
      if (rest !== rest.toLowerCase()) return word; // ALL-CAPS, CamelCase
      const lower = word.toLowerCase();
      const fix = this.suggest(lower);
      if (fix === null) return word;
      return word[0] !== word[0].toLowerCase() ? fix[0].toUpperCase() + fix.slice(1) : fix;
    });
  }
}

function readList(file: string): { text: string; line: number }[] {
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    throw new PrepError(file, {}, code === 'ENOENT' ? 'word list not found (install Debian\'s wamerican for /usr/share/dict/words, or pass --wordlist FILE)' : (e as Error).message);
  }
  const out: { text: string; line: number }[] = [];
  content.split(/\r?\n/).forEach((l, i) => {
    const t = l.trim();
    if (t && !t.startsWith('#')) out.push({ text: t, line: i + 1 });
  });
  return out;
}

/** Debian's wamerican list, when installed. */
export const SYSTEM_WORDLIST = '/usr/share/dict/words';
