// tokenizer.json (the Hugging Face `tokenizers` serialization) and tokenizer_config.json for a trained model,
// with the same component settings the Python library writes for the equivalent pipeline, so the files load in
// alignkit's loader, in `tokenizers` and in `transformers` (PreTrainedTokenizerFast).
import fs from 'node:fs';
import nodePath from 'node:path';
import { writeAtomically } from '../../io/file.ts';

/** A JSON value whose objects may be Maps (written in insertion order: a vocabulary stays in id order, which a
 *  plain object would not keep for integer-like keys such as "0"). */
export type OrderedJson = null | boolean | number | string | OrderedJson[] | Map<string, OrderedJson> | { [key: string]: OrderedJson };

function isPrimitive(v: OrderedJson): boolean {
  return v === null || typeof v !== 'object';
}

function scalar(v: null | boolean | number | string): string {
  if (typeof v === 'number' && !Number.isFinite(v)) throw new Error(`cannot write ${v} to JSON`);
  return JSON.stringify(v);
}

/** JSON text with 2-space indentation; arrays of scalars (merge pairs, [piece, score]) stay on one line. */
export function stringifyOrdered(value: OrderedJson, indent = ''): string {
  if (value === null || typeof value !== 'object') return scalar(value);
  const inner = indent + '  ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every(isPrimitive)) return `[${value.map((v) => scalar(v as null | boolean | number | string)).join(', ')}]`;
    return `[\n${value.map((v) => inner + stringifyOrdered(v, inner)).join(',\n')}\n${indent}]`;
  }
  const entries = value instanceof Map ? [...value.entries()] : Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stringifyOrdered(v, inner)}`).join(',\n')}\n${indent}}`;
}

/** The named special tokens of a tokenizer (each null when absent). */
export interface NamedSpecialTokens {
  bos: string | null;
  eos: string | null;
  unk: string | null;
  pad: string | null;
  cls: string | null;
  sep: string | null;
  mask: string | null;
}

/** What the post-processor adds around encoded text. */
export type TemplateKind = 'bert' | 'bos' | 'none';

/** TemplateProcessing: 'bert' = [CLS] A [SEP] (B [SEP]); 'bos' = BOS A (BOS B), as Llama-3 writes it. */
export function templateProcessor(kind: TemplateKind, named: NamedSpecialTokens, idOf: (token: string) => number): OrderedJson {
  const special = (id: string, typeId: number): OrderedJson => ({ SpecialToken: { id, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number): OrderedJson => ({ Sequence: { id, type_id: typeId } });
  const table = (tokens: string[]): OrderedJson => {
    const m = new Map<string, OrderedJson>();
    for (const t of tokens) m.set(t, { id: t, ids: [idOf(t)], tokens: [t] });
    return m;
  };
  if (kind === 'bert' && named.cls !== null && named.sep !== null) {
    const { cls, sep } = named;
    return {
      type: 'TemplateProcessing',
      single: [special(cls, 0), seq('A', 0), special(sep, 0)],
      pair: [special(cls, 0), seq('A', 0), special(sep, 0), seq('B', 1), special(sep, 1)],
      special_tokens: table(cls === sep ? [cls] : [cls, sep]),
    };
  }
  if (kind === 'bos' && named.bos !== null) {
    const { bos } = named;
    return {
      type: 'TemplateProcessing',
      single: [special(bos, 0), seq('A', 0)],
      pair: [special(bos, 0), seq('A', 0), special(bos, 1), seq('B', 1)],
      special_tokens: table([bos]),
    };
  }
  return null;
}

/** added_tokens entries for the special tokens (ids 0..n-1 in order). */
export function addedTokens(specials: readonly string[]): OrderedJson[] {
  return specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
}

function vocabMap(vocab: readonly string[]): Map<string, OrderedJson> {
  const m = new Map<string, OrderedJson>();
  vocab.forEach((t, id) => m.set(t, id));
  return m;
}

export interface TokenizerJsonParts {
  specials: readonly string[];
  postProcessor: OrderedJson;
}

/** Byte-level BPE (GPT-2 style): ByteLevel pre-tokenizer with the GPT-2 regex, ByteLevel decoder, no normalizer. */
export function byteLevelBpeJson(parts: TokenizerJsonParts, vocab: readonly string[], merges: ReadonlyArray<readonly [string, string]>, unk: string | null): OrderedJson {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(parts.specials),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: parts.postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: vocabMap(vocab),
      merges: merges.map(([a, b]) => [a, b]),
    },
  };
}

/** WordPiece (BERT style): BertNormalizer, BertPreTokenizer, WordPiece decoder with '##'. */
export function wordPieceJson(parts: TokenizerJsonParts, vocab: readonly string[], unk: string, lowercase: boolean): OrderedJson {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(parts.specials),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: parts.postProcessor,
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: vocabMap(vocab) },
  };
}

/** Unigram (SentencePiece style): NFKC, Metaspace pre-tokenizer and decoder. */
export function unigramJson(parts: TokenizerJsonParts, pieces: ReadonlyArray<readonly [string, number]>, unkId: number): OrderedJson {
  const metaspace = { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'always', split: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens(parts.specials),
    normalizer: { type: 'NFKC' },
    pre_tokenizer: metaspace,
    post_processor: parts.postProcessor,
    decoder: { ...metaspace },
    model: { type: 'Unigram', unk_id: unkId, vocab: pieces.map(([p, s]) => [p, s]), byte_fallback: false },
  };
}

/** tokenizer_config.json: the named special tokens (only those given), for transformers' AutoTokenizer too. */
export function tokenizerConfigJson(named: NamedSpecialTokens, specials: readonly string[], options: { cleanUpTokenizationSpaces: boolean; modelMaxLength?: number }): OrderedJson {
  const cfg = new Map<string, OrderedJson>();
  const decoder = new Map<string, OrderedJson>();
  specials.forEach((content, id) => decoder.set(String(id), { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true }));
  cfg.set('added_tokens_decoder', decoder);
  for (const key of ['bos', 'eos', 'unk', 'pad', 'cls', 'sep', 'mask'] as const) {
    const v = named[key];
    if (v !== null) cfg.set(`${key}_token`, v);
  }
  cfg.set('clean_up_tokenization_spaces', options.cleanUpTokenizationSpaces);
  if (options.modelMaxLength !== undefined) cfg.set('model_max_length', options.modelMaxLength);
  cfg.set('tokenizer_class', 'PreTrainedTokenizerFast');
  return cfg;
}

const utf8 = new TextEncoder();

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed), each atomically. */
export function writeTokenizerFiles(dir: string, tokenizerJsonText: string, tokenizerConfig: OrderedJson): { tokenizerJson: string; tokenizerConfig: string } {
  fs.mkdirSync(dir, { recursive: true });
  const tokPath = nodePath.join(dir, 'tokenizer.json');
  const cfgPath = nodePath.join(dir, 'tokenizer_config.json');
  writeAtomically('tokenizer.json', tokPath, (f) => f.write(utf8.encode(tokenizerJsonText + '\n')));
  writeAtomically('tokenizer_config.json', cfgPath, (f) => f.write(utf8.encode(stringifyOrdered(tokenizerConfig) + '\n')));
  return { tokenizerJson: tokPath, tokenizerConfig: cfgPath };
}
