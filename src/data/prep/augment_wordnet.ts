// Synonyms from the Princeton WordNet 3.0 database files (Debian: package wordnet-base, /usr/share/wordnet),
// read directly — no Python, no NLTK.
//
// Files (format: the WordNet manual pages wndb(5WN) and morphy(7WN)):
//   index.{noun,verb,adj,adv}   "lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt offset..."
//                               sorted by lemma; the offsets are in sense order (most frequent first)
//   data.{noun,verb,adj,adv}    one synset per line, which starts at its own byte offset:
//                               "offset lex_filenum ss_type w_cnt(hex) word lex_id ... p_cnt ... | gloss"
//   {noun,verb,adj,adv}.exc     irregular forms: "inflected base [base...]"
// Lines starting with a space are the licence header.
//
// The index files (about 6 MB) are read once, in 1 MiB chunks, into a map lemma -> synset offsets; synsets
// are read on demand by seeking to their offset in the data file (the data files, 22 MB, are never loaded
// whole), and cached.
//
// Lookup follows WordNet's morphy: a word's base forms in a part of speech are the forms from the exception
// list when the word is in it (with the word itself), else the word itself and every form made by one of the
// detachment rules below — of these, the ones present in the index. (NLTK additionally re-applies the rules
// when nothing is found; WordNet's own morphy and this one do not.) synsets(word) lists, for noun, verb,
// adjective, adverb in that order, the synsets of each base form in sense order, without repeats — NLTK's
// wn.synsets(word) order. synonyms(word) is every lemma of those synsets in that order, '_' read as a space,
// without the word itself, its base forms and repeats (compared case-insensitively). Synonyms are not
// re-inflected: "dogs" may become "domestic dog".
import fs from 'node:fs';
import nodePath from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import type { SynonymSource } from './augment_text.ts';
import { PrepConfigError, PrepError } from './errors.ts';

export const DEFAULT_WORDNET_DIR = '/usr/share/wordnet';

/** Parts of speech as the file names and index entries spell them. */
export type WordNetPos = 'n' | 'v' | 'a' | 'r';
const POS_ORDER: readonly WordNetPos[] = ['n', 'v', 'a', 'r'];
const POS_FILE: Record<WordNetPos, string> = { n: 'noun', v: 'verb', a: 'adj', r: 'adv' };

/** morphy(7WN)'s detachment rules: [suffix, replacement] per part of speech. */
const DETACHMENT: Record<WordNetPos, readonly (readonly [string, string])[]> = {
  n: [['s', ''], ['ses', 's'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y']],
  v: [['s', ''], ['ies', 'y'], ['es', 'e'], ['es', ''], ['ed', 'e'], ['ed', ''], ['ing', 'e'], ['ing', '']],
  a: [['er', ''], ['est', ''], ['er', 'e'], ['est', 'e']],
  r: [],
};

export interface WordNetSynset {
  /** 'n', 'v', 'a', 's' (adjective satellite) or 'r'. */
  pos: string;
  /** Byte offset of the synset in its data file (WordNet's synset id within a part of speech). */
  offset: number;
  /** The synset's words as WordNet spells them ("domestic_dog", "Canis_familiaris"); adjective markers removed. */
  lemmas: string[];
}

/** Calls fn for every line of a text file, reading 1 MiB at a time. */
function forEachLine(file: string, fn: (line: string, lineNo: number) => void): void {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    const dec = new StringDecoder('utf8');
    let rest = '';
    let lineNo = 0;
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      const text = rest + (n > 0 ? dec.write(buf.subarray(0, n)) : dec.end());
      const parts = text.split('\n');
      rest = n > 0 ? parts.pop()! : '';
      for (const p of parts) fn(p, ++lineNo);
      if (n === 0) {
        if (rest) fn(rest, ++lineNo);
        return;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether dir holds the WordNet database files this module reads. */
export function hasWordNet(dir: string = DEFAULT_WORDNET_DIR): boolean {
  return POS_ORDER.every((p) => fs.existsSync(nodePath.join(dir, `index.${POS_FILE[p]}`)) && fs.existsSync(nodePath.join(dir, `data.${POS_FILE[p]}`)));
}

const MAX_CACHED = 50_000;

export class WordNet implements SynonymSource {
  private readonly index: Record<WordNetPos, Map<string, number[]>>;
  private readonly exceptions: Record<WordNetPos, Map<string, string[]>>;
  private readonly dataFds: Partial<Record<WordNetPos, number>> = {};
  private readonly synsetCache = new Map<string, WordNetSynset>();
  private readonly synonymCache = new Map<string, readonly string[]>();

  private constructor(readonly dir: string) {
    this.index = { n: new Map(), v: new Map(), a: new Map(), r: new Map() };
    this.exceptions = { n: new Map(), v: new Map(), a: new Map(), r: new Map() };
  }

  /** Opens the database in `dir`; a clear PrepConfigError when it is not there. */
  static open(dir: string = DEFAULT_WORDNET_DIR): WordNet {
    const missing = POS_ORDER.flatMap((p) => [`index.${POS_FILE[p]}`, `data.${POS_FILE[p]}`]).filter((f) => !fs.existsSync(nodePath.join(dir, f)));
    if (missing.length) {
      throw new PrepConfigError(
        `WordNet database not found in ${dir} (missing ${missing.join(', ')}): install it (Debian/Ubuntu: apt-get install wordnet-base) or pass --wordnet DIR, or give synonyms with --thesaurus FILE`,
      );
    }
    const wn = new WordNet(dir);
    for (const p of POS_ORDER) {
      const file = nodePath.join(dir, `index.${POS_FILE[p]}`);
      const map = wn.index[p];
      forEachLine(file, (line, lineNo) => {
        if (line === '' || line.startsWith(' ')) return;
        const f = line.trimEnd().split(' ');
        const count = Number(f[2]);
        if (f.length < 6 || !Number.isInteger(count) || count < 1 || f.length < 4 + count) throw new PrepError(file, { line: lineNo }, 'not a WordNet index line (lemma pos synset_cnt p_cnt ... offsets)');
        map.set(f[0], f.slice(f.length - count).map(Number));
      });
      const exc = nodePath.join(dir, `${POS_FILE[p]}.exc`);
      if (fs.existsSync(exc)) {
        forEachLine(exc, (line) => {
          const f = line.trim().split(' ');
          if (f.length >= 2) wn.exceptions[p].set(f[0], f.slice(1));
        });
      }
    }
    return wn;
  }

  /** Closes the data files. */
  close(): void {
    for (const p of POS_ORDER) {
      const fd = this.dataFds[p];
      if (fd !== undefined) fs.closeSync(fd);
      delete this.dataFds[p];
    }
  }

  /** Whether `lemma` (lower case, '_' for spaces) is in the index of `pos`. */
  has(lemma: string, pos: WordNetPos): boolean {
    return this.index[pos].has(lemma);
  }

  /** The base forms of `form` in `pos` that are in the index (morphy; see the file comment), in rule order. */
  baseForms(form: string, pos: WordNetPos): string[] {
    const w = lemmaKey(form);
    const candidates = this.exceptions[pos].has(w) ? [w, ...this.exceptions[pos].get(w)!] : [w, ...DETACHMENT[pos].filter(([suf]) => w.endsWith(suf)).map(([suf, rep]) => w.slice(0, w.length - suf.length) + rep)];
    const out: string[] = [];
    for (const c of candidates) if (c !== '' && this.index[pos].has(c) && !out.includes(c)) out.push(c);
    return out;
  }

  /** The first base form (what NLTK's wn.morphy(form, pos) returns when the rules find one at once), or null. */
  morphy(form: string, pos: WordNetPos): string | null {
    return this.baseForms(form, pos)[0] ?? null;
  }

  /** The synset at `offset` of the data file of `pos`. */
  synset(pos: WordNetPos, offset: number): WordNetSynset {
    const key = `${pos}${offset}`;
    const hit = this.synsetCache.get(key);
    if (hit) return hit;
    const file = nodePath.join(this.dir, `data.${POS_FILE[pos]}`);
    const line = this.readLineAt(pos, file, offset);
    const f = line.split(' ');
    const count = parseInt(f[3], 16);
    if (Number(f[0]) !== offset || !Number.isInteger(count) || f.length < 4 + 2 * count) throw new PrepError(file, {}, `no synset at byte offset ${offset} (the index and data files do not match)`);
    const lemmas: string[] = [];
    for (let i = 0; i < count; i++) lemmas.push(f[4 + 2 * i].replace(/\([a-z]+\)$/, ''));
    const s: WordNetSynset = { pos: f[2], offset, lemmas };
    if (this.synsetCache.size >= MAX_CACHED) this.synsetCache.clear();
    this.synsetCache.set(key, s);
    return s;
  }

  private readLineAt(pos: WordNetPos, file: string, offset: number): string {
    let fd = this.dataFds[pos];
    if (fd === undefined) {
      try {
        fd = fs.openSync(file, 'r');
      } catch (e) {
        throw new PrepError(file, {}, (e as Error).message);
      }
      this.dataFds[pos] = fd;
    }
    const parts: Buffer[] = [];
    let at = offset;
    for (;;) {
      const buf = Buffer.allocUnsafe(4096);
      const n = fs.readSync(fd, buf, 0, buf.length, at);
      if (n === 0) break;
      const nl = buf.subarray(0, n).indexOf(10);
      if (nl >= 0) {
        parts.push(buf.subarray(0, nl));
        break;
      }
      parts.push(buf.subarray(0, n));
      at += n;
    }
    return Buffer.concat(parts).toString('utf8').replace(/\r$/, '');
  }

  /** Synsets of a word in every part of speech (or one), in NLTK's wn.synsets order. */
  synsets(word: string, pos?: WordNetPos): WordNetSynset[] {
    const out: WordNetSynset[] = [];
    const seen = new Set<string>();
    for (const p of pos ? [pos] : POS_ORDER) {
      for (const base of this.baseForms(word, p)) {
        for (const off of this.index[p].get(base)!) {
          const k = `${p}${off}`;
          if (seen.has(k)) continue;
          seen.add(k);
          out.push(this.synset(p, off));
        }
      }
    }
    return out;
  }

  synonyms(word: string): readonly string[] {
    const key = lemmaKey(word);
    const hit = this.synonymCache.get(key);
    if (hit) return hit;
    const exclude = new Set<string>([key]);
    for (const p of POS_ORDER) for (const b of this.baseForms(word, p)) exclude.add(b);
    const out: string[] = [];
    for (const s of this.synsets(word)) {
      for (const l of s.lemmas) {
        const k = l.toLowerCase();
        if (exclude.has(k)) continue;
        exclude.add(k);
        out.push(l.replace(/_/g, ' '));
      }
    }
    if (this.synonymCache.size >= MAX_CACHED) this.synonymCache.clear();
    this.synonymCache.set(key, out);
    return out;
  }
}

/** How WordNet spells a lemma in its index: lower case, '_' for spaces, straight apostrophes. */
function lemmaKey(word: string): string {
  return word.normalize('NFC').toLowerCase().trim().replace(/\s+/g, '_').replace(/’/g, "'");
}
