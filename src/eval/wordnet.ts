// A reader for the Princeton WordNet 3.0 database files (index.*, data.*, *.exc: the layout of Debian's
// `wordnet-base` package in /usr/share/wordnet, or WordNet's own dict/ folder), with NLTK's synset lookup:
// `synsets(word)` lowercases the word, lemmatises it per part of speech with NLTK's morphy (exception lists,
// else one round of suffix rules, keeping forms that are in the index), and returns the synsets of every form
// for nouns, verbs, adjectives and adverbs in that order. METEOR only needs the lemma names of those synsets.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';

export type WordNetPos = 'n' | 'v' | 'a' | 'r';
const POS_LIST: readonly WordNetPos[] = ['n', 'v', 'a', 'r'];
const FILE_OF: Record<WordNetPos, string> = { n: 'noun', v: 'verb', a: 'adj', r: 'adv' };

/** NLTK's MORPHOLOGICAL_SUBSTITUTIONS, in order. */
const SUBSTITUTIONS: Record<WordNetPos, readonly [string, string][]> = {
  n: [['s', ''], ['ses', 's'], ['ves', 'f'], ['xes', 'x'], ['zes', 'z'], ['ches', 'ch'], ['shes', 'sh'], ['men', 'man'], ['ies', 'y']],
  v: [['s', ''], ['ies', 'y'], ['es', 'e'], ['es', ''], ['ed', 'e'], ['ed', ''], ['ing', 'e'], ['ing', '']],
  a: [['er', ''], ['est', ''], ['er', 'e'], ['est', 'e']],
  r: [],
};

/** Where WordNet database folders are usually installed (first with index.noun wins). */
export const WORDNET_SEARCH_PATHS = ['/usr/share/wordnet', '/usr/local/share/wordnet', '/usr/share/WordNet-3.0/dict', '/usr/local/WordNet-3.0/dict', '/opt/homebrew/share/wordnet'];

/** The WordNet folder to use: `explicit`, else $ALIGNKIT_WORDNET, else the first standard location present; null if none. */
export function findWordNet(explicit?: string): string | null {
  const candidates = explicit ? [explicit] : process.env.ALIGNKIT_WORDNET ? [process.env.ALIGNKIT_WORDNET] : WORDNET_SEARCH_PATHS;
  for (const dir of candidates) if (existsSync(join(dir, 'index.noun')) && existsSync(join(dir, 'data.noun'))) return dir;
  return null;
}

export class WordNetError extends Error {}

export class WordNet {
  /** lemma -> pos -> synset offsets (index.* files). */
  private readonly index = new Map<string, Partial<Record<WordNetPos, number[]>>>();
  private readonly exceptions: Record<WordNetPos, Map<string, string[]>> = { n: new Map(), v: new Map(), a: new Map(), r: new Map() };
  private readonly dataFd: Partial<Record<WordNetPos, number>> = {};
  private readonly lemmaCache = new Map<string, string[]>();
  /** The version named in the data files' licence header (e.g. '3.0'). */
  readonly version: string | null;

  private constructor(readonly dir: string) {
    for (const pos of POS_LIST) {
      const file = join(dir, `index.${FILE_OF[pos]}`);
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (line === '' || line.startsWith(' ')) return; // licence header lines start with spaces
        const f = line.split(' ').filter((x) => x !== '');
        const nSynsets = Number(f[2]);
        const nPointers = Number(f[3]);
        const offsetsStart = 4 + nPointers + 2;
        if (!(nSynsets > 0) || !Number.isInteger(nPointers) || f.length < offsetsStart + nSynsets) throw new WordNetError(`WordNet ${file}: line ${i + 1}: malformed index entry`);
        const offsets = f.slice(offsetsStart, offsetsStart + nSynsets).map(Number);
        let entry = this.index.get(f[0]);
        if (entry === undefined) this.index.set(f[0], (entry = {}));
        entry[f[1] as WordNetPos] = offsets;
      });
      const exc = join(dir, `${FILE_OF[pos]}.exc`);
      if (existsSync(exc)) {
        for (const line of readFileSync(exc, 'utf8').split('\n')) {
          const terms = line.split(/\s+/).filter((x) => x !== '');
          if (terms.length > 0) this.exceptions[pos].set(terms[0], terms.slice(1));
        }
      }
    }
    const head = readFileSync(join(dir, 'data.adj'), { encoding: 'latin1' }).slice(0, 4000);
    this.version = /Word[nN]et (\d+\+?|\d+\.\d+) Copyright/.exec(head)?.[1] ?? null;
  }

  static open(dir: string): WordNet {
    if (!existsSync(join(dir, 'index.noun'))) throw new WordNetError(`WordNet ${dir}: no index.noun (is this a WordNet dict folder?)`);
    return new WordNet(dir);
  }

  /** NLTK's _morphy: base forms of `form` for `pos` that are in the index. */
  morphy(form: string, pos: WordNetPos): string[] {
    const exc = this.exceptions[pos].get(form);
    const forms = exc !== undefined ? exc : SUBSTITUTIONS[pos].filter(([old]) => form.endsWith(old)).map(([old, rep]) => form.slice(0, form.length - old.length) + rep);
    const out: string[] = [];
    for (const f of [form, ...forms]) if (this.index.get(f)?.[pos] !== undefined && !out.includes(f)) out.push(f);
    return out;
  }

  private readLine(pos: WordNetPos, offset: number): string {
    let fd = this.dataFd[pos];
    if (fd === undefined) fd = this.dataFd[pos] = openSync(join(this.dir, `data.${FILE_OF[pos]}`), 'r');
    const chunks: Buffer[] = [];
    let at = offset;
    for (;;) {
      const buf = Buffer.alloc(1024);
      const n = readSync(fd, buf, 0, buf.length, at);
      if (n === 0) break;
      const nl = buf.subarray(0, n).indexOf(10);
      if (nl >= 0) {
        chunks.push(buf.subarray(0, nl));
        break;
      }
      chunks.push(buf.subarray(0, n));
      at += n;
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  /** Lemma names of the synset at `offset` in data.<pos> (syntactic markers like "(a)" removed). */
  synsetLemmaNames(pos: WordNetPos, offset: number): string[] {
    const key = `${pos}${offset}`;
    const cached = this.lemmaCache.get(key);
    if (cached) return cached;
    const line = this.readLine(pos, offset);
    const f = line.split(' ');
    if (Number(f[0]) !== offset) throw new WordNetError(`WordNet ${this.dir}: data.${FILE_OF[pos]} has no synset at offset ${offset}`);
    const n = parseInt(f[3], 16);
    const names: string[] = [];
    for (let i = 0; i < n; i++) names.push(f[4 + 2 * i].replace(/\(.*\)$/, ''));
    this.lemmaCache.set(key, names);
    return names;
  }

  /** Lemma names of every synset of `word` (any part of speech), in NLTK's synset order, with repeats. */
  synonyms(word: string): string[] {
    const lemma = word.toLowerCase();
    const out: string[] = [];
    for (const pos of POS_LIST)
      for (const form of this.morphy(lemma, pos)) for (const off of this.index.get(form)?.[pos] ?? []) out.push(...this.synsetLemmaNames(pos, off));
    return out;
  }

  close(): void {
    for (const pos of POS_LIST) {
      const fd = this.dataFd[pos];
      if (fd !== undefined) closeSync(fd);
      delete this.dataFd[pos];
    }
  }
}

let shared: { dir: string; wn: WordNet } | null = null;

/** The WordNet at `dir` (or found by findWordNet), opened once per process; null when none is installed. */
export function loadWordNet(dir?: string): WordNet | null {
  const found = findWordNet(dir);
  if (found === null) return null;
  if (shared?.dir !== found) shared = { dir: found, wn: WordNet.open(found) };
  return shared.wn;
}
