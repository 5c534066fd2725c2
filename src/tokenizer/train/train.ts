// Training a tokenizer from corpus files: stream the texts, count words, learn the model, and produce the
// tokenizer.json / tokenizer_config.json pair (see docs/tokenizer-training.md).
import { forEachCorpusText, type CorpusFormat, type CorpusSummary } from './corpus.ts';
import { trainBpe } from './bpe.ts';
import { trainUnigram, type UnigramTrainerOptions } from './unigram.ts';
import { WordCounter, byteLevelAlphabet } from './pretokenize.ts';
import {
  byteLevelBpeJson,
  stringifyOrdered,
  templateProcessor,
  tokenizerConfigJson,
  unigramJson,
  wordPieceJson,
  writeTokenizerFiles,
  type NamedSpecialTokens,
  type OrderedJson,
  type TemplateKind,
} from './serialize.ts';

export type TokenizerKind = 'bpe' | 'wordpiece' | 'unigram';
export const TOKENIZER_KINDS: readonly TokenizerKind[] = ['bpe', 'wordpiece', 'unigram'];

export interface TrainTokenizerOptions {
  /** 'bpe' = byte-level BPE (GPT-2 / Llama-3 style); 'wordpiece' = BERT style; 'unigram' = SentencePiece style. */
  type: TokenizerKind;
  /** Corpus files: text (one text per line) or JSONL (see `format`, `fields`). */
  files: readonly string[];
  format?: CorpusFormat;
  /** JSONL fields holding text (default ['text']). */
  fields?: readonly string[];
  /** Skip malformed JSONL records instead of failing (they are counted). */
  skipInvalid?: boolean;
  /** Target vocabulary size, special tokens included. */
  vocabSize: number;
  /** BPE / WordPiece: a pair must occur this often to be merged; Unigram: a multi-character seed piece must
   *  occur this often. Default 2. */
  minFrequency?: number;
  /**
   * Tokens with the first ids, in order. Default: none for 'bpe', [PAD] [UNK] [CLS] [SEP] [MASK] for 'wordpiece',
   * <unk> for 'unigram'. Named tokens (bos, eos, ...) missing from the list are appended to it.
   */
  specialTokens?: readonly string[];
  bos?: string;
  eos?: string;
  pad?: string;
  /** Unknown token. Default '[UNK]' (wordpiece), '<unk>' (unigram), none (bpe: every byte is in the vocabulary). */
  unk?: string;
  cls?: string;
  sep?: string;
  mask?: string;
  /** What the post-processor adds: 'auto' (default) = [CLS] A [SEP] when cls and sep are known, else BOS A when
   *  bos is given, else nothing; 'none' = nothing. */
  template?: 'auto' | 'none';
  /** BPE / WordPiece: keep at most this many characters in the initial alphabet. */
  limitAlphabet?: number;
  /** BPE / WordPiece: longest token in characters (bytes for byte-level BPE). */
  maxTokenLength?: number;
  /** WordPiece: lowercase and strip accents (default true, as bert-base-uncased). */
  lowercase?: boolean;
  /** Written to tokenizer_config.json as model_max_length when given. */
  modelMaxLength?: number;
  /** WordPiece: id order of the '##x' tokens (default: code-point order). Lets tests replay one run of the Rust
   *  trainer, whose order comes from hash-map iteration. */
  continuingAlphabetOrder?: readonly string[];
  /** Unigram: EM / pruning settings. */
  unigram?: Partial<Pick<UnigramTrainerOptions, 'maxPieceLength' | 'seedSize' | 'shrinkingFactor' | 'subIterations'>>;
  /** Progress messages (e.g. console.error); none by default. */
  log?: (message: string) => void;
}

export interface TrainedTokenizer {
  type: TokenizerKind;
  /** tokenizer.json text. */
  tokenizerJsonText: string;
  /** tokenizer_config.json content. */
  tokenizerConfig: OrderedJson;
  /** Special tokens, ids 0..n-1. */
  specialTokens: string[];
  named: NamedSpecialTokens;
  /** Final vocabulary size (may be below the target when the corpus runs out of pairs / pieces, or above it
   *  when special tokens and the alphabet alone exceed it). */
  vocabSize: number;
  /** BPE merges learned (0 for Unigram; WordPiece keeps none in its file but learns them). */
  merges: number;
  alphabetSize: number;
  /** Why training stopped: 'vocab-size' | 'min-frequency' | 'no-pairs' (BPE/WordPiece) or 'em' (Unigram). */
  stoppedBy: string;
  distinctWords: number;
  corpus: CorpusSummary;
  seconds: number;
}

const BERT_CONVENTIONAL: Partial<Record<keyof NamedSpecialTokens, string>> = { pad: '[PAD]', unk: '[UNK]', cls: '[CLS]', sep: '[SEP]', mask: '[MASK]' };

/** The special-token list and named roles after defaults and conventions (exported for tests and the CLI). */
export function resolveSpecialTokens(o: Pick<TrainTokenizerOptions, 'type' | 'specialTokens' | 'bos' | 'eos' | 'pad' | 'unk' | 'cls' | 'sep' | 'mask'>): { specials: string[]; named: NamedSpecialTokens } {
  const given = o.specialTokens ?? (o.type === 'wordpiece' ? ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] : o.type === 'unigram' ? ['<unk>'] : []);
  const specials: string[] = [];
  for (const t of given) {
    if (t.length === 0) throw new Error('special tokens must not be empty strings');
    if (!specials.includes(t)) specials.push(t);
  }
  const named: NamedSpecialTokens = {
    bos: o.bos ?? null,
    eos: o.eos ?? null,
    unk: o.unk ?? (o.type === 'wordpiece' ? '[UNK]' : o.type === 'unigram' ? '<unk>' : null),
    pad: o.pad ?? null,
    cls: o.cls ?? null,
    sep: o.sep ?? null,
    mask: o.mask ?? null,
  };
  if (o.type === 'wordpiece') {
    // BERT's conventional names fill the roles not given explicitly, when they are in the list.
    for (const [role, name] of Object.entries(BERT_CONVENTIONAL) as Array<[keyof NamedSpecialTokens, string]>) {
      if (named[role] === null && specials.includes(name)) named[role] = name;
    }
  }
  for (const role of ['bos', 'eos', 'unk', 'pad', 'cls', 'sep', 'mask'] as const) {
    const t = named[role];
    if (t === null) continue;
    if (t.length === 0) throw new Error(`the ${role} token must not be an empty string`);
    if (!specials.includes(t)) specials.push(t);
  }
  return { specials, named };
}

function templateKind(o: TrainTokenizerOptions, named: NamedSpecialTokens): TemplateKind {
  if (o.template === 'none') return 'none';
  if (named.cls !== null && named.sep !== null) return 'bert';
  if (named.bos !== null) return 'bos';
  return 'none';
}

function checkOptions(o: TrainTokenizerOptions): void {
  if (!(TOKENIZER_KINDS as readonly string[]).includes(o.type)) throw new Error(`unknown tokenizer type '${o.type}' (expected ${TOKENIZER_KINDS.join(', ')})`);
  if (o.files.length === 0) throw new Error('no corpus files given');
  if (!Number.isSafeInteger(o.vocabSize) || o.vocabSize < 1) throw new Error(`vocab size must be a positive integer, got ${o.vocabSize}`);
  if (o.vocabSize >= 2 ** 26) throw new Error(`vocab size ${o.vocabSize} is too large (limit ${2 ** 26 - 1})`);
  const mf = o.minFrequency ?? 2;
  if (!Number.isSafeInteger(mf) || mf < 0) throw new Error(`min frequency must be an integer >= 0, got ${mf}`);
  if (o.limitAlphabet !== undefined && (!Number.isSafeInteger(o.limitAlphabet) || o.limitAlphabet < 1)) throw new Error(`limit alphabet must be a positive integer, got ${o.limitAlphabet}`);
  if (o.maxTokenLength !== undefined && (!Number.isSafeInteger(o.maxTokenLength) || o.maxTokenLength < 1)) throw new Error(`max token length must be a positive integer, got ${o.maxTokenLength}`);
  if (o.type === 'unigram' && (o.limitAlphabet !== undefined || o.maxTokenLength !== undefined)) throw new Error('limit alphabet / max token length apply to bpe and wordpiece only (unigram keeps every character; see unigram.maxPieceLength)');
}

/** Streams the corpus, counts words and trains the model. Nothing is written; see {@link saveTrainedTokenizer}. */
export function trainTokenizer(o: TrainTokenizerOptions): TrainedTokenizer {
  checkOptions(o);
  const started = performance.now();
  const log = o.log ?? (() => {});
  const { specials, named } = resolveSpecialTokens(o);
  const minFrequency = o.minFrequency ?? 2;
  const lowercase = o.lowercase ?? true;

  const counter = new WordCounter(o.type === 'bpe' ? 'byte-level' : o.type === 'wordpiece' ? 'bert' : 'metaspace', { lowercase });
  const corpus = forEachCorpusText(o.files, { format: o.format, fields: o.fields, skipInvalid: o.skipInvalid, keepLineEndings: true }, (text) => counter.add(text));
  if (corpus.texts === 0) throw new Error(`the corpus (${o.files.join(', ')}) contains no text`);
  const wordCounts = counter.counts();
  log(`counted ${corpus.texts} texts (${corpus.bytes} bytes), ${wordCounts.size} distinct words`);

  const idOf = (t: string): number => specials.indexOf(t);
  const parts = { specials, postProcessor: templateProcessor(templateKind(o, named), named, idOf) };
  let json: OrderedJson;
  let vocabSize: number;
  let merges = 0;
  let alphabetSize: number;
  let stoppedBy: string;
  if (o.type === 'unigram') {
    const unk = named.unk as string;
    const r = trainUnigram(wordCounts, {
      vocabSize: o.vocabSize,
      specialTokens: specials,
      unkToken: unk,
      minFrequency,
      ...o.unigram,
      onRound: (n) => log(`unigram: ${n} pieces after pruning`),
    });
    json = unigramJson(parts, r.pieces, r.unkId);
    vocabSize = r.pieces.length;
    alphabetSize = r.alphabetSize;
    stoppedBy = 'em';
  } else {
    const r = trainBpe(wordCounts, {
      vocabSize: o.vocabSize,
      minFrequency,
      specialTokens: specials,
      limitAlphabet: o.limitAlphabet,
      maxTokenLength: o.maxTokenLength,
      initialAlphabet: o.type === 'bpe' ? byteLevelAlphabet() : undefined,
      continuingSubwordPrefix: o.type === 'wordpiece' ? '##' : undefined,
      continuingAlphabetOrder: o.continuingAlphabetOrder,
    });
    json = o.type === 'bpe' ? byteLevelBpeJson(parts, r.vocab, r.merges, named.unk) : wordPieceJson(parts, r.vocab, named.unk as string, lowercase);
    vocabSize = r.vocab.length;
    merges = r.merges.length;
    alphabetSize = r.alphabetSize;
    stoppedBy = r.stoppedBy;
  }
  const tokenizerConfig = tokenizerConfigJson(named, specials, { cleanUpTokenizationSpaces: o.type === 'wordpiece', modelMaxLength: o.modelMaxLength });
  return {
    type: o.type,
    tokenizerJsonText: stringifyOrdered(json),
    tokenizerConfig,
    specialTokens: specials,
    named,
    vocabSize,
    merges,
    alphabetSize,
    stoppedBy,
    distinctWords: wordCounts.size,
    corpus,
    seconds: (performance.now() - started) / 1000,
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir` (created if missing), each atomically. */
export function saveTrainedTokenizer(dir: string, trained: TrainedTokenizer): { tokenizerJson: string; tokenizerConfig: string } {
  return writeTokenizerFiles(dir, trained.tokenizerJsonText, trained.tokenizerConfig);
}
