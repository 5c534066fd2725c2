// Hugging Face tokenizers from a model folder (tokenizer.json + tokenizer_config.json), on top of the pure-JS
// port @huggingface/tokenizers. What this wrapper adds:
//   - special-token bookkeeping (bos/eos/pad/unk from tokenizer_config, special_tokens_map, generation_config),
//   - long inputs are cut into pieces at boundaries the tokenizer cannot merge across, so megabyte strings
//     neither overflow the stack nor hit the library's super-linear paths (one huge BPE "word"),
//   - character offsets for every token (the library has none), by aligning each token's surface bytes with
//     the text; this is what the chat assistant mask is built on,
//   - clear one-line errors for missing files and unsupported models.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import * as hfTokenizers from '@huggingface/tokenizers';

// The package's .d.ts files use extension-less relative re-exports, which NodeNext resolution cannot follow, so
// the few members used here are typed locally.
interface HfEncoding {
  ids: number[];
  tokens: string[];
}
interface HfTokenizer {
  encode(text: string, options?: { text_pair?: string | null; add_special_tokens?: boolean }): HfEncoding;
  decode(ids: number[], options?: { skip_special_tokens?: boolean; clean_up_tokenization_spaces?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
  model: { vocab: Array<string | undefined> } | null;
}
interface HfNormalizer {
  normalize(text: string): string;
}
const lib = hfTokenizers as unknown as {
  Tokenizer: new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;
  SequenceNormalizer: new (config: object) => HfNormalizer;
};

/** Parsed JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A parsed JSON object. */
export type JsonObject = { [key: string]: JsonValue };

export interface EncodeOptions {
  /** Add the tokens the post-processor adds (Llama-2: BOS; BERT: [CLS] … [SEP]; GPT-2: nothing). Default true. */
  addSpecialTokens?: boolean;
  /** Second sequence of a pair (BERT-style [CLS] A [SEP] B [SEP]); encoded in one library call. */
  pair?: string;
}

export interface DecodeOptions {
  /** Drop special tokens (added tokens flagged special, plus the config's special tokens). Default false. */
  skipSpecialTokens?: boolean;
  /** Undo the " ." / " 's" spacing of old word-level tokenizers. Default: tokenizer_config's value, else true. */
  cleanUpTokenizationSpaces?: boolean;
}

/** Token ids with the [start, end) UTF-16 code-unit span of the input text each token came from. */
export interface EncodingWithOffsets {
  ids: number[];
  /** Tokens added by the post-processor get [0, 0] (before) or [len, len] (after); a token that covers no text (a
   *  '▁' SentencePiece inserted) gets an empty span where the next token starts. A byte-fallback or byte-level
   *  token that covers part of a character gets that whole character's span, so neighbours may overlap. */
  offsets: Array<[number, number]>;
}

/** The parsed files a tokenizer is built from (see {@link loadTokenizer} for the folder form). */
export interface TokenizerFiles {
  tokenizerJson: unknown;
  tokenizerConfig?: unknown;
  specialTokensMap?: unknown;
  generationConfig?: unknown;
  /** Path or name of tokenizer.json, used in error messages. Default 'tokenizer.json'. */
  source?: string;
}

export interface LoadTokenizerOptions {
  /** Fail when tokenizer_config.json is missing (default true). With false, a missing config reads as {}. */
  requireConfig?: boolean;
}

/** Texts shorter than this are handed to the library in one piece. SentencePiece models without a pre-tokenizer
 *  are cut at every word above DROP_MIN_TEXT (the library runs BPE on whole pieces, slowly, and caches words);
 *  others only above KEEP_MIN_TEXT, into pieces of at least KEEP_PIECE characters (their regex pre-tokenizers
 *  already make the library fast; cutting only bounds the work and stack depth of one call). */
const DROP_MIN_TEXT = 256;
const KEEP_MIN_TEXT = 32768;
const KEEP_PIECE = 8192;
/** In 'keep' mode a run this long without a safe boundary is cut anyway (only pathological inputs get here). */
const HARD_CUT = 65536;

const SPECIAL_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** tokenizer_config token fields are strings, or AddedToken objects {content, ...}, or null. */
function tokenContent(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${path}: invalid JSON (${(e as Error).message})`);
  }
}

function readOptionalJson(path: string): unknown {
  return existsSync(path) ? readJson(path) : undefined;
}

/**
 * Loads the tokenizer of a Hugging Face model folder: tokenizer.json (required), tokenizer_config.json (required
 * unless `requireConfig: false`), special_tokens_map.json and generation_config.json (optional). Synchronous.
 */
export function loadTokenizer(dir: string, options: LoadTokenizerOptions = {}): Tokenizer {
  if (!existsSync(dir)) throw new Error(`${dir}: no such directory`);
  if (!statSync(dir).isDirectory()) throw new Error(`${dir}: not a directory (expected a model folder)`);
  const tokPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokPath)) throw new Error(`${tokPath}: not found (only tokenizer.json-based tokenizers are supported)`);
  const cfgPath = join(dir, 'tokenizer_config.json');
  if (!existsSync(cfgPath) && (options.requireConfig ?? true)) throw new Error(`${cfgPath}: not found`);
  return Tokenizer.fromFiles({
    tokenizerJson: readJson(tokPath),
    tokenizerConfig: readOptionalJson(cfgPath),
    specialTokensMap: readOptionalJson(join(dir, 'special_tokens_map.json')),
    generationConfig: readOptionalJson(join(dir, 'generation_config.json')),
    source: tokPath,
  });
}

// GPT-2's reversible byte <-> printable-character map, inverted: character code -> byte.
function byteLevelDecoderMap(): Map<number, number> {
  const m = new Map<number, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    m.set(printable ? b : 256 + n++, b);
  }
  return m;
}

/** Does a component config (normalizer/pre-tokenizer/decoder tree) contain a node of this type? */
function hasType(node: unknown, type: string): boolean {
  if (Array.isArray(node)) return node.some((x) => hasType(x, type));
  if (!isObject(node)) return false;
  if (node.type === type) return true;
  return Object.values(node).some((v) => typeof v === 'object' && hasType(v, type));
}

const utf8 = new TextEncoder();
const isWsByte = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;
const WS = /\s/;

/** How a long text may be cut: 'keep' = the next piece starts with its space; 'drop' = without it (SentencePiece
 *  tokenizers prepend '▁' to every piece themselves); 'none' = never cut. */
type ChunkMode = 'keep' | 'drop' | 'none';

export class Tokenizer {
  /** tokenizer.json path (or name) this came from. */
  readonly source: string;
  readonly modelType: 'BPE' | 'WordPiece' | 'Unigram';
  /** tokenizer_config.json as read (token objects left as they were). */
  readonly config: Readonly<Record<string, unknown>>;
  readonly bosToken: string | null;
  readonly eosToken: string | null;
  readonly padToken: string | null;
  readonly unkToken: string | null;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** pad_token's id, or null when the tokenizer has no pad token (never silently the EOS id). */
  readonly padId: number | null;
  readonly unkId: number | null;
  /** Ids that end generation: eosId plus generation_config.json's eos_token_id (a number or a list). */
  readonly stopIds: readonly number[];
  /** Number of ids (highest id + 1, added tokens included). */
  readonly vocabSize: number;
  /** Ids of special tokens: added tokens flagged special and the config's named / additional special tokens. */
  readonly specialIds: ReadonlySet<number>;

  private readonly hf: HfTokenizer;
  private readonly addedContent = new Map<number, string>();
  private readonly byteLevel: boolean;
  private readonly byteFallback: boolean;
  private readonly wordPiecePrefix: string | null;
  private readonly endOfWordSuffix: string | null;
  private readonly metaspace: string;
  private readonly charNormalizer: ((s: string) => string) | null;
  private readonly defaultCleanUp: boolean;
  // Lazily computed facts about the tokenizer (probes, vocabulary scans).
  private chunkInfo: { mode: ChunkMode; prefix: number[]; suffix: number[] } | null = null;
  private readonly surfaceCache = new Map<number, Uint8Array>();
  private bldec: Map<number, number> | null = null;

  /** Builds a tokenizer from already-parsed files (tests use this to derive variants of real tokenizers). */
  static fromFiles(files: TokenizerFiles): Tokenizer {
    return new Tokenizer(files);
  }

  private constructor(files: TokenizerFiles) {
    const src = files.source ?? 'tokenizer.json';
    this.source = src;
    const json = files.tokenizerJson;
    if (!isObject(json)) throw new Error(`${src}: not a tokenizer.json object`);
    const model = json.model;
    if (!isObject(model)) throw new Error(`${src}: missing "model"`);
    this.modelType = Tokenizer.modelTypeOf(model, src);
    const cfgIn = files.tokenizerConfig ?? {};
    if (!isObject(cfgIn)) throw new Error(`${src}: tokenizer_config is not an object`);
    this.config = cfgIn;
    const stm = isObject(files.specialTokensMap) ? files.specialTokensMap : {};
    const gen = isObject(files.generationConfig) ? files.generationConfig : {};

    // The library expects plain strings for the named tokens; configs often hold {content, ...} objects.
    const libCfg: Record<string, unknown> = { ...cfgIn };
    for (const k of SPECIAL_KEYS) {
      const v = k in cfgIn ? tokenContent(cfgIn[k]) : tokenContent(stm[k]);
      if (v === null) delete libCfg[k];
      else libCfg[k] = v;
    }
    const extra = cfgIn.additional_special_tokens ?? stm.additional_special_tokens;
    if (Array.isArray(extra)) libCfg.additional_special_tokens = extra.map(tokenContent).filter((x): x is string => x !== null);
    else delete libCfg.additional_special_tokens;
    const jsonForLib: Record<string, unknown> = { ...json, added_tokens: Array.isArray(json.added_tokens) ? json.added_tokens : [] };
    for (const k of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) if (!(k in jsonForLib)) jsonForLib[k] = null;
    try {
      this.hf = new lib.Tokenizer(jsonForLib, libCfg);
    } catch (e) {
      throw new Error(`${src}: ${(e as Error).message.split('\n')[0]}`);
    }

    for (const t of jsonForLib.added_tokens as unknown[]) {
      if (isObject(t) && typeof t.id === 'number' && typeof t.content === 'string') this.addedContent.set(t.id, t.content);
    }
    this.vocabSize = this.hf.model?.vocab.length ?? 0;
    for (const id of this.addedContent.keys()) if (id + 1 > this.vocabSize) this.vocabSize = id + 1;

    const idOf = (tok: string | null): number | null => (tok === null ? null : (this.hf.token_to_id(tok) ?? null));
    const named = (k: (typeof SPECIAL_KEYS)[number]): string | null => (typeof libCfg[k] === 'string' ? (libCfg[k] as string) : null);
    this.bosToken = named('bos_token');
    this.eosToken = named('eos_token');
    this.padToken = named('pad_token');
    this.unkToken = named('unk_token');
    const genIds = (v: unknown): number[] => (typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : []);
    this.bosId = idOf(this.bosToken) ?? genIds(gen.bos_token_id)[0] ?? null;
    this.eosId = idOf(this.eosToken) ?? genIds(gen.eos_token_id)[0] ?? null;
    if (this.bosToken === null && this.bosId !== null) this.bosToken = this.hf.id_to_token(this.bosId) ?? null;
    if (this.eosToken === null && this.eosId !== null) this.eosToken = this.hf.id_to_token(this.eosId) ?? null;
    this.padId = idOf(this.padToken);
    this.unkId = idOf(this.unkToken) ?? (typeof model.unk_token === 'string' ? idOf(model.unk_token) : typeof model.unk_id === 'number' ? model.unk_id : null);
    const stops = new Set<number>();
    if (this.eosId !== null) stops.add(this.eosId);
    for (const id of genIds(gen.eos_token_id)) stops.add(id);
    this.stopIds = [...stops];

    const special = new Set<number>();
    for (const t of jsonForLib.added_tokens as unknown[]) if (isObject(t) && t.special === true && typeof t.id === 'number') special.add(t.id);
    for (const k of SPECIAL_KEYS) {
      const id = idOf(named(k));
      if (id !== null) special.add(id);
    }
    for (const s of (libCfg.additional_special_tokens as string[] | undefined) ?? []) {
      const id = idOf(s);
      if (id !== null) special.add(id);
    }
    this.specialIds = special;

    // Facts used to turn a token back into the bytes of text it covers (for offsets).
    this.byteLevel = hasType(json.decoder, 'ByteLevel') || hasType(json.pre_tokenizer, 'ByteLevel');
    this.byteFallback = model.byte_fallback === true;
    this.wordPiecePrefix = this.modelType === 'WordPiece' ? (typeof model.continuing_subword_prefix === 'string' ? model.continuing_subword_prefix : '##') : null;
    this.endOfWordSuffix = typeof model.end_of_word_suffix === 'string' && model.end_of_word_suffix !== '' ? model.end_of_word_suffix : null;
    this.metaspace = Tokenizer.metaspaceChar(json);
    this.charNormalizer = Tokenizer.charLocalNormalizer(json.normalizer);
    this.defaultCleanUp = typeof cfgIn.clean_up_tokenization_spaces === 'boolean' ? cfgIn.clean_up_tokenization_spaces : true;
  }

  private static modelTypeOf(model: Record<string, unknown>, src: string): 'BPE' | 'WordPiece' | 'Unigram' {
    const t = model.type;
    if (t === 'BPE' || t === 'WordPiece' || t === 'Unigram') return t;
    if (t !== undefined) throw new Error(`${src}: unsupported model type '${String(t)}'`);
    // Old files have no "type": infer it the way the Rust library's untagged deserialiser does.
    if (Array.isArray(model.vocab)) return 'Unigram';
    if (isObject(model.vocab) && 'merges' in model) return 'BPE';
    if (isObject(model.vocab) && 'continuing_subword_prefix' in model) return 'WordPiece';
    throw new Error(`${src}: unsupported model type '(untyped, not BPE/WordPiece/Unigram)'`);
  }

  private static metaspaceChar(json: Record<string, unknown>): string {
    let found = '\u2581';
    const visit = (n: unknown): void => {
      if (Array.isArray(n)) n.forEach(visit);
      else if (isObject(n)) {
        if (n.type === 'Metaspace' && typeof n.replacement === 'string') found = n.replacement;
        Object.values(n).forEach((v) => typeof v === 'object' && visit(v));
      }
    };
    visit(json.pre_tokenizer);
    visit(json.decoder);
    return found;
  }

  /** The part of the normalizer that acts character by character (case, accents, Unicode forms, BERT cleaning),
   *  used to align tokens with text. Prepend/Replace/Strip are left out: the alignment treats spaces loosely. */
  private static charLocalNormalizer(cfg: unknown): ((s: string) => string) | null {
    const keep = new Set(['NFD', 'NFKD', 'NFC', 'NFKC', 'Lowercase', 'StripAccents', 'BertNormalizer', 'Precompiled']);
    const flat: Record<string, unknown>[] = [];
    const visit = (n: unknown): void => {
      if (!isObject(n)) return;
      if (n.type === 'Sequence' && Array.isArray(n.normalizers)) n.normalizers.forEach(visit);
      else if (typeof n.type === 'string' && keep.has(n.type)) flat.push(n);
    };
    visit(cfg);
    if (flat.length === 0) return null;
    const norm = new lib.SequenceNormalizer({ type: 'Sequence', normalizers: flat });
    const cache = new Map<string, string>();
    return (s: string) => {
      let r = cache.get(s);
      if (r === undefined) {
        r = norm.normalize(s);
        if (cache.size < 65536) cache.set(s, r);
      }
      return r;
    };
  }

  // ---------------------------------------------------------------- vocabulary

  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Token strings of ids (as stored in the vocabulary: 'Ġworld', '▁world', '##ing', '<0x0A>'). */
  tokens(ids: readonly number[]): string[] {
    return ids.map((id) => {
      this.checkId(id);
      return this.hf.id_to_token(id) ?? '';
    });
  }

  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Content of an added token (from tokenizer.json's added_tokens), or undefined. */
  addedTokenContent(id: number): string | undefined {
    return this.addedContent.get(id);
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} out of range [0, ${this.vocabSize})`);
  }

  // ---------------------------------------------------------------- encode / decode

  /** Token ids of one document. Long texts are split at safe boundaries, so the result equals the whole-text result. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== 'string') throw new TypeError(`encode: expected a string, got ${typeof text}`);
    const add = options.addSpecialTokens ?? true;
    if (options.pair !== undefined) return this.hf.encode(text, { text_pair: options.pair, add_special_tokens: add }).ids;
    if (text.length < DROP_MIN_TEXT) return this.hf.encode(text, { add_special_tokens: add }).ids;
    const info = this.chunking();
    if (info.mode === 'none' || (info.mode === 'keep' && text.length < KEEP_MIN_TEXT)) return this.encodeWhole(text, add);
    const out: number[] = [];
    if (add) for (const id of info.prefix) out.push(id);
    for (const piece of this.pieces(text, info.mode)) {
      for (const id of this.hf.encode(piece, { add_special_tokens: false }).ids) out.push(id);
    }
    if (add) for (const id of info.suffix) out.push(id);
    return out;
  }

  /** Encodes each document separately. */
  encodeBatch(texts: readonly string[], options: EncodeOptions = {}): number[][] {
    return texts.map((t) => this.encode(t, options));
  }

  private encodeWhole(text: string, add: boolean): number[] {
    try {
      return this.hf.encode(text, { add_special_tokens: add }).ids;
    } catch (e) {
      if (e instanceof RangeError) throw new RangeError(`${this.source}: text of ${text.length} characters is too long to tokenize in one piece (${e.message})`);
      throw e;
    }
  }

  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.checkId(id);
    let list = ids as number[];
    if (options.skipSpecialTokens) {
      list = ids.filter((id) => !this.specialIds.has(id));
      if (list.length === 0) return '';
    }
    return this.hf.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces ?? this.defaultCleanUp,
    });
  }

  // ---------------------------------------------------------------- long texts

  /** Works out (once) how texts can be cut, and which ids the post-processor puts around a sequence. */
  private chunking(): { mode: ChunkMode; prefix: number[]; suffix: number[] } {
    if (this.chunkInfo) return this.chunkInfo;
    const enc = (s: string, add = false): number[] => this.hf.encode(s, { add_special_tokens: add }).ids;
    const eq = (a: number[], b: number[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
    let mode: ChunkMode = 'none';
    const probes: Array<[string, string]> = [['hello', 'world'], ['The cat.', 'It sat'], ['x=1;', 'y']];
    const agree = (m: ChunkMode): boolean =>
      probes.every(([a, b]) => {
        const whole = enc(`${a} ${b}`);
        const left = enc(a);
        if (!eq(whole.slice(0, left.length), left)) return false;
        return eq(whole.slice(left.length), enc(m === 'keep' ? ` ${b}` : b));
      });
    if (agree('keep')) mode = 'keep';
    else if (agree('drop')) mode = 'drop';
    if (mode !== 'none' && this.vocabMergesAcrossSpaces()) mode = 'none';
    // Post-processor frame: ids before / after the sequence.
    let prefix: number[] = [];
    let suffix: number[] = [];
    const frame = (s: string): [number[], number[]] | null => {
      const bare = enc(s);
      const full = enc(s, true);
      for (let i = 0; i + bare.length <= full.length; i++) {
        if (eq(full.slice(i, i + bare.length), bare)) return [full.slice(0, i), full.slice(i + bare.length)];
      }
      return null;
    };
    const f1 = frame('hello world');
    const f2 = frame('The cat sat. 123');
    if (f1 && f2 && eq(f1[0], f2[0]) && eq(f1[1], f2[1])) [prefix, suffix] = f1;
    else mode = 'none';
    this.chunkInfo = { mode, prefix, suffix };
    return this.chunkInfo;
  }

  /** True if some vocabulary token spans "non-space, space" — then a cut before a space could change merges. */
  private vocabMergesAcrossSpaces(): boolean {
    const vocab = this.hf.model?.vocab ?? [];
    const dec = new TextDecoder();
    for (let id = 0; id < vocab.length; id++) {
      if (vocab[id] === undefined || this.addedContent.has(id)) continue;
      const s = dec.decode(this.surface(id));
      for (let i = 1; i < s.length; i++) if (s[i] === ' ' && !WS.test(s[i - 1])) return true;
    }
    return false;
  }

  /** Cuts a long text into pieces whose separate encodings concatenate to the whole-text encoding. A cut is made
   *  before a single space that sits between two non-space characters, away from any added-token occurrence. */
  private *pieces(text: string, mode: ChunkMode): Generator<string> {
    const n = text.length;
    const blocked = this.addedTokenZones(text);
    // Pre-tokenizer-less SentencePiece models run BPE on whole pieces: cut at every word so the library's per-word
    // cache works. Otherwise pieces of several thousand characters keep the number of calls small.
    const minPiece = mode === 'drop' ? 1 : KEEP_PIECE;
    let start = 0;
    let p = 1;
    while (start < n) {
      let cut = -1;
      for (; p < n - 1; p++) {
        if (p - start >= minPiece && text.charCodeAt(p) === 0x20 && !WS.test(text[p - 1]) && !WS.test(text[p + 1]) && !blocked.has(p)) {
          cut = p;
          break;
        }
        if (mode === 'keep' && p - start >= HARD_CUT) {
          // No boundary in a very long run: cut at a code-point boundary (may differ from the whole-text result).
          cut = p;
          const c = text.charCodeAt(p);
          if (c >= 0xdc00 && c <= 0xdfff) cut = p + 1;
          break;
        }
      }
      if (cut < 0) cut = n;
      const from = mode === 'drop' && start > 0 && text.charCodeAt(start) === 0x20 ? start + 1 : start;
      yield text.slice(from, cut);
      start = cut;
      p = cut + 1;
    }
  }

  /** Positions next to or inside an occurrence of an added token, where a cut could change lstrip/rstrip. */
  private addedTokenZones(text: string): Set<number> {
    const zones = new Set<number>();
    for (const content of this.addedContent.values()) {
      if (content.length === 0) continue;
      for (let i = text.indexOf(content); i >= 0; i = text.indexOf(content, i + 1)) {
        for (let q = i - 1; q <= i + content.length + 1; q++) zones.add(q);
      }
    }
    return zones;
  }

  // ---------------------------------------------------------------- offsets

  /**
   * Token ids plus the character span each token covers. Works for byte-level BPE, SentencePiece-style BPE /
   * Unigram (with byte fallback) and WordPiece; throws if the tokens cannot be aligned with the text (a normalizer
   * that rewrites text beyond case/accents/Unicode forms).
   */
  encodeWithOffsets(text: string, options: EncodeOptions = {}): EncodingWithOffsets {
    const add = options.addSpecialTokens ?? true;
    if (options.pair !== undefined) throw new Error('encodeWithOffsets: text pairs are not supported');
    const ids = this.encode(text, { addSpecialTokens: false });
    const offsets = this.align(text, ids);
    if (!add) return { ids, offsets };
    let prefix: number[];
    let suffix: number[];
    if (text.length >= DROP_MIN_TEXT && this.chunking().mode !== 'none') ({ prefix, suffix } = this.chunking());
    else {
      const full = this.hf.encode(text, { add_special_tokens: true }).ids;
      const at = findSub(full, ids);
      if (at < 0) throw new Error(`${this.source}: encodeWithOffsets: the post-processor rewrites the sequence; offsets unavailable`);
      prefix = full.slice(0, at);
      suffix = full.slice(at + ids.length);
    }
    return {
      ids: [...prefix, ...ids, ...suffix],
      offsets: [...prefix.map((): [number, number] => [0, 0]), ...offsets, ...suffix.map((): [number, number] => [text.length, text.length])],
    };
  }

  /** UTF-8 bytes of the text a (non-post-processor) token stands for, with '▁' as a space and '##' removed. */
  private surface(id: number): Uint8Array {
    let s = this.surfaceCache.get(id);
    if (s) return s;
    const added = this.addedContent.get(id);
    const tok = added ?? this.hf.id_to_token(id) ?? '';
    if (added !== undefined) s = utf8.encode(added);
    else if (this.byteLevel) {
      if (!this.bldec) this.bldec = byteLevelDecoderMap();
      const out: number[] = [];
      for (const ch of tok) {
        const b = this.bldec.get(ch.codePointAt(0) ?? -1);
        if (b === undefined) for (const x of utf8.encode(ch)) out.push(x);
        else out.push(b);
      }
      s = Uint8Array.from(out);
    } else if (this.byteFallback && /^<0x[0-9A-Fa-f]{2}>$/.test(tok)) {
      s = Uint8Array.of(parseInt(tok.slice(3, 5), 16));
    } else {
      let t = tok;
      if (this.wordPiecePrefix && t.startsWith(this.wordPiecePrefix) && t.length > this.wordPiecePrefix.length) t = t.slice(this.wordPiecePrefix.length);
      if (this.endOfWordSuffix && t.endsWith(this.endOfWordSuffix)) t = t.slice(0, -this.endOfWordSuffix.length);
      s = utf8.encode(t.split(this.metaspace).join(' '));
    }
    this.surfaceCache.set(id, s);
    return s;
  }

  /**
   * Aligns token surfaces with the (character-normalised) text, left to right. Allowed mismatches: a space in a
   * token that is not in the text (SentencePiece's prepended '▁', ByteLevel add_prefix_space), and whitespace in
   * the text that no token kept (BERT, lstrip/rstrip added tokens). An unknown token swallows the characters up to
   * where the next token matches.
   */
  private align(text: string, ids: number[]): Array<[number, number]> {
    // Normalised text as bytes, each byte remembering the [start, end) of the source character.
    const bytes: number[] = [];
    const cStart: number[] = [];
    const cEnd: number[] = [];
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i) ?? 0;
      const w = cp > 0xffff ? 2 : 1;
      const ch = text.slice(i, i + w);
      const norm = this.charNormalizer ? this.charNormalizer(ch) : ch;
      for (const b of utf8.encode(norm)) {
        bytes.push(b);
        cStart.push(i);
        cEnd.push(i + w);
      }
      i += w;
    }
    const n = bytes.length;
    const posChar = (j: number): number => (j < n ? cStart[j] : text.length);
    const fail = (k: number): never => {
      const shown = JSON.stringify(this.hf.id_to_token(ids[k]));
      throw new Error(`${this.source}: cannot align token ${k} (${shown}) with the text near character ${posChar(j)}; offsets unavailable for this tokenizer/text`);
    };
    const offsets: Array<[number, number]> = new Array(ids.length);
    let j = 0;
    for (let k = 0; k < ids.length; k++) {
      const id = ids[k];
      let first = -1;
      let last = -1;
      const added = this.addedContent.get(id);
      let matchedAdded = false;
      if (added !== undefined && added.length > 0) {
        // Added tokens are matched on the raw text (the normaliser, e.g. BERT's lowercasing, does not touch them).
        let jj = j;
        while (jj < n && isWsByte(bytes[jj]) && !text.startsWith(added, cStart[jj])) jj++;
        const at = posChar(jj);
        if (text.startsWith(added, at)) {
          matchedAdded = true;
          j = jj;
          first = j;
          while (j < n && cStart[j] < at + added.length) j++;
          last = j - 1;
        }
      }
      if (matchedAdded) {
        // done
      } else if (id === this.unkId) {
        while (j < n && isWsByte(bytes[j])) j++;
        if (j < n) {
          first = j;
          const nextByte = k + 1 < ids.length ? firstNonSpace(this.surface(ids[k + 1])) : -1;
          do {
            j++;
            while (j < n && cStart[j] === cStart[j - 1]) j++;
          } while (j < n && !isWsByte(bytes[j]) && bytes[j] !== nextByte);
          last = j - 1;
        }
      } else {
        for (const b of this.surface(id)) {
          for (;;) {
            if (j < n && bytes[j] === b) {
              if (first < 0) first = j;
              last = j++;
              break;
            }
            if (b === 0x20) break;
            if (j < n && isWsByte(bytes[j])) {
              j++;
              continue;
            }
            fail(k);
          }
        }
      }
      offsets[k] = first < 0 ? [-1, -1] : [cStart[first], cEnd[last]];
    }
    // Tokens that cover no text (an inserted '▁') sit, empty, where the next token starts.
    let next = text.length;
    for (let k = ids.length - 1; k >= 0; k--) {
      if (offsets[k][0] < 0) offsets[k] = [next, next];
      else next = offsets[k][0];
    }
    return offsets;
  }


}

function firstNonSpace(b: Uint8Array): number {
  for (const x of b) if (x !== 0x20) return x;
  return -1;
}

function findSub(hay: number[], needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let k = 0; k < needle.length; k++) if (hay[i + k] !== needle[k]) continue outer;
    return i;
  }
  return -1;
}
