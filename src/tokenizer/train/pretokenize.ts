// The normalizer + pre-tokenizer half of each tokenizer family, as used when counting training words. Each
// one turns a text into the "words" the model is trained on, exactly as the tokenizer.json we write will split
// text at inference:
//   byte-level (GPT-2 / Llama-3 BPE): the GPT-2 regex, then every UTF-8 byte becomes one printable character;
//   BERT (WordPiece): BertNormalizer (clean control chars, space out CJK ideographs, strip accents, lowercase),
//                     then split on whitespace and isolate punctuation;
//   Metaspace (SentencePiece-style Unigram): NFKC, spaces become '▁', '▁' is prepended, split before each '▁'.
// The rules follow the Rust `tokenizers` library (the reference the trainer is compared with); where its
// regex engine and JavaScript's disagree on rare whitespace characters, the JavaScript loader's behaviour wins,
// so training and alignkit's own encoding split text the same way.

/** The GPT-2 pre-tokenization regex, as the byte-level pre-tokenizer of alignkit's loader runs it. */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** GPT-2's reversible byte -> printable character map: bytes that print as themselves keep their code point,
 *  the other 68 (controls, space, 0x7f-0xa0, 0xad) are moved to U+0100 onwards in byte order. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const out: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCharCode(printable ? b : 256 + shifted++);
  }
  return out;
})();

/** The 256 byte-level characters (the initial alphabet of a byte-level BPE). */
export function byteLevelAlphabet(): string[] {
  return [...BYTE_TO_CHAR];
}

const utf8 = new TextEncoder();

/** A string's UTF-8 bytes, each written as its byte-level character. */
export function toByteLevel(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  let out = '';
  if (ascii) for (let i = 0; i < s.length; i++) out += BYTE_TO_CHAR[s.charCodeAt(i)];
  else for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

/** Raw (not yet byte-mapped) pieces of the GPT-2 regex. */
export function gpt2Pieces(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}

export interface BertNormalizerOptions {
  /** Lowercase (default true). */
  lowercase?: boolean;
  /** Remove accents (NFD, then drop non-spacing marks). Default: same as `lowercase`, as in BERT. */
  stripAccents?: boolean;
  /** Put spaces around CJK ideographs so each becomes a word (default true). */
  handleChineseChars?: boolean;
}

/** CJK ideograph blocks BERT isolates (the Rust library's table, by code point). */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

// Control characters BERT drops: NUL, U+FFFD and the "other" categories, except tab / LF / CR, which are
// whitespace (as are the White_Space characters, which become one space each).
const BERT_DROP = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\uFFFD]/u;
const WHITE_SPACE = /\p{White_Space}/u;
const NEEDS_CLEANING = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Cn}\uFFFD\p{White_Space}]/u;
const CJK_ANY = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u{20000}-\u{2a6df}\u{2a700}-\u{2b81f}\u{2b920}-\u{2ceaf}\u{2f800}-\u{2fa1f}]/u;
const NONSPACING_MARK = /\p{Mn}/gu;

/** BertNormalizer(clean_text=true, handle_chinese_chars, strip_accents, lowercase). */
export function bertNormalize(text: string, options: BertNormalizerOptions = {}): string {
  const lowercase = options.lowercase ?? true;
  const stripAccents = options.stripAccents ?? lowercase;
  let s = text;
  if (NEEDS_CLEANING.test(s)) {
    let out = '';
    for (const ch of s) {
      if (ch === '\t' || ch === '\n' || ch === '\r') out += ' ';
      else if (BERT_DROP.test(ch)) continue;
      else out += WHITE_SPACE.test(ch) ? ' ' : ch;
    }
    s = out;
  }
  if ((options.handleChineseChars ?? true) && CJK_ANY.test(s)) {
    let out = '';
    for (const ch of s) out += isChineseChar(ch.codePointAt(0) ?? 0) ? ` ${ch} ` : ch;
    s = out;
  }
  if (stripAccents) s = s.normalize('NFD').replace(NONSPACING_MARK, '');
  if (lowercase) s = s.toLowerCase();
  return s;
}

// BERT punctuation: ASCII punctuation (which includes symbols such as $ + < = > ^ ` | ~) and Unicode P*.
const BERT_PUNCT = '\\p{P}!-\\/:-@\\[-`{-~';
const BERT_SPLIT = new RegExp(`[${BERT_PUNCT}]|[^\\p{White_Space}${BERT_PUNCT}]+`, 'gu');

/** BertPreTokenizer: whitespace separates words and is dropped; each punctuation character is its own word. */
export function bertPreTokenize(normalized: string): string[] {
  return normalized.match(BERT_SPLIT) ?? [];
}

/** The SentencePiece word-boundary mark. */
export const METASPACE = '\u2581';

/** NFKC (the normalizer written for Unigram tokenizers). */
export function nfkc(text: string): string {
  return text.normalize('NFKC');
}

/** Metaspace(replacement '▁', prepend_scheme 'always', split true). */
export function metaspacePreTokenize(normalized: string): string[] {
  if (normalized.length === 0) return [];
  let s = normalized.replaceAll(' ', METASPACE);
  if (!s.startsWith(METASPACE)) s = METASPACE + s;
  const words: string[] = [];
  let start = 0;
  for (let i = s.indexOf(METASPACE, 1); i >= 0; i = s.indexOf(METASPACE, i + 1)) {
    words.push(s.slice(start, i));
    start = i;
  }
  words.push(s.slice(start));
  return words;
}

export type PreTokenizerKind = 'byte-level' | 'bert' | 'metaspace';

/**
 * Counts the words of a stream of texts in one Map (the only memory that grows with the corpus: one entry per
 * distinct word). For byte-level the raw regex pieces are counted and mapped to bytes once per distinct piece.
 */
export class WordCounter {
  private readonly raw = new Map<string, number>();
  /** Texts added. */
  texts = 0;

  constructor(
    readonly kind: PreTokenizerKind,
    private readonly bert: BertNormalizerOptions = {},
  ) {}

  add(text: string): void {
    this.texts++;
    const pieces =
      this.kind === 'byte-level' ? gpt2Pieces(text) : this.kind === 'bert' ? bertPreTokenize(bertNormalize(text, this.bert)) : metaspacePreTokenize(nfkc(text));
    const m = this.raw;
    for (const p of pieces) m.set(p, (m.get(p) ?? 0) + 1);
  }

  /** Distinct words so far. */
  get distinct(): number {
    return this.raw.size;
  }

  /** Word -> count, words as the model sees them (byte-level characters for 'byte-level'). */
  counts(): Map<string, number> {
    if (this.kind !== 'byte-level') return this.raw;
    const out = new Map<string, number>();
    for (const [w, c] of this.raw) out.set(toByteLevel(w), c);
    return out;
  }
}
