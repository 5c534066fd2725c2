// `alignkit tokenizer train` (learn a byte-level BPE, WordPiece or Unigram tokenizer from text / JSONL files)
// and `alignkit tokenizer stats` (fertility, unknown-token rate and sequence lengths of a dataset under a
// tokenizer). See docs/tokenizer-training.md.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CommanderError, InvalidArgumentError, type Command } from 'commander';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { formatTokenizerStats, saveTrainedTokenizer, tokenizerStats, trainTokenizer, TOKENIZER_KINDS, type CorpusFormat, type TokenizerKind } from '../../tokenizer/train/index.ts';

function intArg(name: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}

function kindArg(v: string): TokenizerKind {
  if (!(TOKENIZER_KINDS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--type must be one of ${TOKENIZER_KINDS.join(', ')}.`);
  return v as TokenizerKind;
}

function formatArg(v: string): CorpusFormat {
  if (v !== 'auto' && v !== 'text' && v !== 'jsonl') throw new InvalidArgumentError('--format must be auto, text or jsonl.');
  return v;
}

/** "a, b,c" -> ['a', 'b', 'c']; an empty string is an empty list. */
function listArg(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Runs a command body; failures become one line `alignkit tokenizer <cmd>: <message>` and exit code 1. */
function guarded<A extends unknown[]>(cmd: string, body: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      body(...args);
    } catch (e) {
      if (e instanceof CommanderError) throw e;
      const err = e instanceof Error ? e : new Error(String(e));
      console.error(`alignkit tokenizer ${cmd}: ${err.message.replace(/[\r\n]+/g, ' ')}`);
      if (process.env.ALIGNKIT_DEBUG) console.error(err.stack);
      process.exitCode = 1;
    }
  };
}

interface TrainOpts {
  type: TokenizerKind;
  data: string[];
  field?: string[];
  format?: CorpusFormat;
  vocabSize: number;
  minFrequency: number;
  specialTokens?: string[];
  bos?: string;
  eos?: string;
  pad?: string;
  unk?: string;
  cls?: string;
  sep?: string;
  mask?: string;
  limitAlphabet?: number;
  maxTokenLength?: number;
  lowercase: boolean;
  template: boolean;
  modelMaxLength?: number;
  skipInvalid?: boolean;
  out: string;
  json?: boolean;
}

interface StatsOpts {
  tokenizer: string;
  data: string[];
  field?: string[];
  format?: CorpusFormat;
  maxLength?: number;
  skipInvalid?: boolean;
  json?: boolean;
}

function mb(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** model_max_length from tokenizer_config.json when it is a real limit (transformers writes 1e30 for "none"). */
function configMaxLength(dir: string): number | null {
  const p = join(dir, 'tokenizer_config.json');
  if (!existsSync(p)) return null;
  try {
    const v = (JSON.parse(readFileSync(p, 'utf8')) as { model_max_length?: unknown }).model_max_length;
    return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 && v <= 10_000_000 ? v : null;
  } catch {
    return null;
  }
}

export function registerTokenizerCommands(program: Command): void {
  const group = program.command('tokenizer').description('train a tokenizer (byte-level BPE, WordPiece, Unigram) on your data, or measure how a tokenizer fits a dataset');

  group
    .command('train')
    .description(
      'train a tokenizer and write tokenizer.json + tokenizer_config.json (Hugging Face format). bpe = byte-level BPE (GPT-2 / Llama-3 style, lossless on any text), wordpiece = BERT style (lowercased, [UNK] for unseen characters), unigram = SentencePiece style (Metaspace, NFKC)',
    )
    .requiredOption('--type <type>', `tokenizer kind: ${TOKENIZER_KINDS.join(' | ')}`, kindArg)
    .requiredOption('--data <files...>', 'corpus files: text (every line is one example, its line ending included) or JSONL (.jsonl/.ndjson/.json, or any file with --field)')
    .option('--field <names>', 'JSONL field(s) holding text, comma-separated (default text); implies JSONL', listArg)
    .option('--format <format>', 'auto (by extension) | text | jsonl', formatArg)
    .requiredOption('--vocab-size <n>', 'target vocabulary size, special tokens included', intArg('--vocab-size', 1))
    .option('--min-frequency <n>', 'bpe/wordpiece: a pair must occur this often to be merged; unigram: a seed piece must occur this often', intArg('--min-frequency', 0), 2)
    .option('--special-tokens <list>', 'comma-separated tokens that get the first ids, in order (default: none for bpe; [PAD],[UNK],[CLS],[SEP],[MASK] for wordpiece; <unk> for unigram); named tokens missing from it are appended', listArg)
    .option('--bos <token>', 'beginning-of-sequence token (added in front of every encoding, unless --no-template or both --cls and --sep are known)')
    .option('--eos <token>', 'end-of-sequence token (recorded in tokenizer_config.json)')
    .option('--pad <token>', 'padding token')
    .option('--unk <token>', 'unknown token (default [UNK] for wordpiece, <unk> for unigram, none for byte-level bpe)')
    .option('--cls <token>', 'classifier token: with --sep, encodings become CLS text SEP (wordpiece default [CLS] when listed)')
    .option('--sep <token>', 'separator token (wordpiece default [SEP] when listed)')
    .option('--mask <token>', 'mask token (wordpiece default [MASK] when listed)')
    .option('--limit-alphabet <n>', 'bpe/wordpiece: keep only the n most frequent characters as initial tokens', intArg('--limit-alphabet', 1))
    .option('--max-token-length <n>', 'bpe/wordpiece: longest token, in characters (bytes for bpe)', intArg('--max-token-length', 1))
    .option('--no-lowercase', 'wordpiece: keep case and accents (cased BERT)')
    .option('--no-template', 'do not add BOS or CLS/SEP tokens when encoding (no post-processor)')
    .option('--model-max-length <n>', 'model_max_length to record in tokenizer_config.json', intArg('--model-max-length', 1))
    .option('--skip-invalid', 'skip malformed JSONL records (counted) instead of failing')
    .requiredOption('--out <dir>', 'output folder (created if missing; existing tokenizer files are replaced atomically)')
    .option('--json', 'print one JSON object')
    .action(
      guarded('train', (o: TrainOpts) => {
        const log = o.json ? undefined : (m: string) => console.error(m);
        const trained = trainTokenizer({
          type: o.type,
          files: o.data,
          fields: o.field,
          format: o.format ?? (o.field ? 'jsonl' : 'auto'),
          skipInvalid: o.skipInvalid,
          vocabSize: o.vocabSize,
          minFrequency: o.minFrequency,
          specialTokens: o.specialTokens,
          bos: o.bos,
          eos: o.eos,
          pad: o.pad,
          unk: o.unk,
          cls: o.cls,
          sep: o.sep,
          mask: o.mask,
          template: o.template ? 'auto' : 'none',
          limitAlphabet: o.limitAlphabet,
          maxTokenLength: o.maxTokenLength,
          lowercase: o.lowercase,
          modelMaxLength: o.modelMaxLength,
          log,
        });
        const files = saveTrainedTokenizer(o.out, trained);
        // Prove the files load in alignkit's own loader before reporting success.
        const loaded = loadTokenizer(o.out);
        if (loaded.vocabSize !== trained.vocabSize) throw new Error(`${files.tokenizerJson}: reloaded vocabulary has ${loaded.vocabSize} ids, expected ${trained.vocabSize}`);
        const report = {
          type: trained.type,
          out: o.out,
          files,
          vocabSize: trained.vocabSize,
          targetVocabSize: o.vocabSize,
          specialTokens: trained.specialTokens,
          namedTokens: trained.named,
          merges: trained.merges,
          alphabetSize: trained.alphabetSize,
          stoppedBy: trained.stoppedBy,
          distinctWords: trained.distinctWords,
          corpus: trained.corpus,
          seconds: trained.seconds,
        };
        if (o.json) {
          console.log(JSON.stringify(report));
          return;
        }
        const why =
          trained.vocabSize > o.vocabSize
            ? 'special tokens and the alphabet alone exceed the target'
            : trained.stoppedBy === 'vocab-size'
              ? 'target size reached'
              : trained.stoppedBy === 'min-frequency' ? `no pair occurs ${o.minFrequency}+ times` : trained.stoppedBy === 'no-pairs' ? 'no pairs left to merge' : 'EM + pruning';
        console.log(
          `trained ${trained.type} tokenizer: ${trained.vocabSize} tokens (target ${o.vocabSize}; ${trained.specialTokens.length} special, ${trained.alphabetSize} characters${trained.type === 'unigram' ? '' : `, ${trained.merges} merges`}; ${why})`,
        );
        console.log(`corpus: ${trained.corpus.texts} texts, ${mb(trained.corpus.bytes)}, ${trained.distinctWords} distinct words${trained.corpus.skipped ? `, ${trained.corpus.skipped} invalid records skipped` : ''}; ${trained.seconds.toFixed(2)} s`);
        console.log(`special tokens: ${trained.specialTokens.map((t, i) => `${i}=${t}`).join(' ') || 'none'}`);
        console.log(`wrote ${files.tokenizerJson} and ${files.tokenizerConfig}`);
      }),
    );

  group
    .command('stats')
    .description('encode a dataset with a tokenizer and report tokens per word (fertility), the unknown-token rate and the sequence-length histogram, per field')
    .requiredOption('--tokenizer <dir>', 'folder with tokenizer.json (tokenizer_config.json optional)')
    .requiredOption('--data <files...>', 'text files (one example per line) or JSONL files')
    .option('--field <names>', 'JSONL field(s) to measure, comma-separated (default text); implies JSONL', listArg)
    .option('--format <format>', 'auto (by extension) | text | jsonl', formatArg)
    .option('--max-length <n>', "report the fraction of sequences longer than this (default: tokenizer_config's model_max_length, else 2048)", intArg('--max-length', 1))
    .option('--skip-invalid', 'skip malformed JSONL records (counted) instead of failing')
    .option('--json', 'print one JSON object')
    .action(
      guarded('stats', (o: StatsOpts) => {
        const tok = loadTokenizer(o.tokenizer, { requireConfig: false });
        const maxLength = o.maxLength ?? configMaxLength(o.tokenizer) ?? 2048;
        const stats = tokenizerStats(tok, o.data, { fields: o.field, format: o.format ?? (o.field ? 'jsonl' : 'auto'), maxLength, skipInvalid: o.skipInvalid });
        if (o.json) console.log(JSON.stringify({ tokenizer: o.tokenizer, model: tok.modelType, vocabSize: tok.vocabSize, unkToken: tok.unkToken, data: o.data, ...stats }));
        else console.log(formatTokenizerStats(stats, `tokenizer ${o.tokenizer} (${tok.modelType}, ${tok.vocabSize} ids${tok.unkToken ? `, unk ${tok.unkToken}` : ''}) on ${o.data.join(', ')}`));
      }),
    );
}
