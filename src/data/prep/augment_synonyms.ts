// Synonym sources for `alignkit data augment`: a user thesaurus file, WordNet (augment_wordnet.ts), or both.
//
// Thesaurus files (--thesaurus FILE), chosen by extension:
//   .json            {"word": ["synonym", ...], ...}
//   .tsv / .txt      one entry per line: word<TAB>synonym<TAB>synonym...; blank lines and lines starting
//                    with '#' are skipped
// Entries are directed: a synonym listed under "big" is offered for "big" only (list "large" -> "big" too if
// you want both ways). Head words are matched by key (NFC, lower-cased), so "Big" and "BIG" in the text find
// "big"; the synonyms are kept as written (case matching happens when they replace a word). Several entries
// for the same head word are merged in file order. A synonym equal to its head word is dropped, and so is a
// repeated one. Multi-word synonyms ("a lot") are allowed.
import fs from 'node:fs';
import { TextDecoder } from 'node:util';
import { wordKey, type SynonymSource } from './augment_text.ts';
import { PrepError } from './errors.ts';
import { firstInvalidUtf8 } from './utf8.ts';

/** How head words are matched: wordKey with curly apostrophes as straight ones ("don’t" finds "don't"). */
function headKey(word: string): string {
  return wordKey(word).replace(/’/g, "'");
}

/** Synonyms from an in-memory table (head key -> synonyms in order). */
export class Thesaurus implements SynonymSource {
  private readonly table = new Map<string, string[]>();

  /** Adds synonyms for a head word (merged with earlier ones; self and duplicates dropped). */
  add(word: string, synonyms: readonly string[]): void {
    const k = headKey(word);
    const list = this.table.get(k) ?? [];
    const seen = new Set(list.map(headKey));
    for (const s of synonyms) {
      const sk = headKey(s);
      if (sk === k || seen.has(sk)) continue;
      seen.add(sk);
      list.push(s);
    }
    if (list.length) this.table.set(k, list);
  }

  synonyms(word: string): readonly string[] {
    return this.table.get(headKey(word)) ?? [];
  }

  /** Head words with at least one synonym. */
  get size(): number {
    return this.table.size;
  }

  static fromObject(obj: Readonly<Record<string, readonly string[]>>): Thesaurus {
    const t = new Thesaurus();
    for (const [k, v] of Object.entries(obj)) t.add(k, v);
    return t;
  }
}

function readUtf8(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    throw new PrepError(file, {}, code === 'ENOENT' ? 'thesaurus file not found' : code === 'EISDIR' ? 'is a directory, not a file' : (e as Error).message);
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 10) line++;
    throw new PrepError(file, { line }, `invalid UTF-8: byte 0x${bytes[at].toString(16).padStart(2, '0')} (the file must be UTF-8)`);
  }
}

/** Parses a JSON thesaurus {word: [synonyms]}; errors name the file and the head word. */
export function parseJsonThesaurus(file: string, text: string): Thesaurus {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new PrepError(file, {}, `invalid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new PrepError(file, {}, 'a JSON thesaurus must be an object {"word": ["synonym", ...]}');
  const t = new Thesaurus();
  for (const [word, syns] of Object.entries(v)) {
    if (word.trim() === '') throw new PrepError(file, { field: word }, 'empty head word');
    if (!Array.isArray(syns)) throw new PrepError(file, { field: word }, `expected a list of synonyms, got ${syns === null ? 'null' : typeof syns}`);
    syns.forEach((s, i) => {
      if (typeof s !== 'string' || s.trim() === '') throw new PrepError(file, { field: `${word}[${i}]` }, `expected a non-empty string, got ${JSON.stringify(s)}`);
    });
    t.add(word, (syns as string[]).map((s) => s.trim()));
  }
  return t;
}

/** Parses a TSV thesaurus (word<TAB>synonym<TAB>...); errors name the file and line. */
export function parseTsvThesaurus(file: string, text: string): Thesaurus {
  const t = new Thesaurus();
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '' || line.trimStart().startsWith('#')) return;
    const cols = line.split('\t').map((c) => c.trim());
    if (cols[0] === '') throw new PrepError(file, { line: i + 1 }, 'empty head word (expected word<TAB>synonym<TAB>...)');
    const syns = cols.slice(1).filter((c) => c !== '');
    if (syns.length === 0) throw new PrepError(file, { line: i + 1 }, `'${cols[0]}' has no synonyms (expected word<TAB>synonym<TAB>..., separated by tabs)`);
    t.add(cols[0], syns);
  });
  return t;
}

/** Loads a thesaurus file (.json, or .tsv / .txt). */
export function loadThesaurus(file: string): Thesaurus {
  const lower = file.toLowerCase();
  const isJson = lower.endsWith('.json');
  if (!isJson && !lower.endsWith('.tsv') && !lower.endsWith('.txt')) throw new PrepError(file, {}, 'a thesaurus must be .json ({"word": [synonyms]}) or .tsv / .txt (word<TAB>synonym<TAB>...)');
  const text = readUtf8(file);
  return isJson ? parseJsonThesaurus(file, text) : parseTsvThesaurus(file, text);
}

/** Several sources in order: their synonyms concatenated, duplicates (by key) dropped. */
export class ChainedSynonyms implements SynonymSource {
  constructor(private readonly sources: readonly SynonymSource[]) {}
  synonyms(word: string): readonly string[] {
    if (this.sources.length === 1) return this.sources[0].synonyms(word);
    const out: string[] = [];
    const seen = new Set<string>();
    for (const s of this.sources) {
      for (const x of s.synonyms(word)) {
        const k = wordKey(x);
        if (seen.has(k)) continue;
        seen.add(k);
        out.push(x);
      }
    }
    return out;
  }
}
