// An SFT dataset file as tokenised examples (or packed rows), for the trainer.
//
// open() makes one streaming pass: every row is read, converted (formats.ts) and tokenised (sft_tokenize.ts)
// once, and only what is needed later is kept — the source row and token count of each valid example (8 bytes
// per example), so a dataset larger than memory works. get() re-reads and re-tokenises an example on demand
// (with a small cache); tokenisation is deterministic, so it gets the same tokens the pass counted.
import type { Tokenizer } from '../tokenizer/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { DataError } from './errors.ts';
import { toSftExample } from './formats.ts';
import { packRow, planPacking, type PackedRow } from './packing.ts';
import { IGNORE_INDEX, tokenizeSftExample, validateTokenizeOptions, type SftTokenizeOptions, type TokenizedExample } from './sft_tokenize.ts';
import { openRowSource, type RowFormat, type RowSource } from './source.ts';

export interface SftDatasetOptions extends SftTokenizeOptions {
  /** Pack examples into rows of up to maxLength tokens (best-fit decreasing). Default false. */
  packing?: boolean;
  /** Count and skip rows that are invalid (DataError) instead of failing on the first. Default false. */
  skipInvalid?: boolean;
  /** Stop after this many valid examples. */
  maxExamples?: number;
  /** Overrides the format implied by the file extension. */
  format?: RowFormat;
}

export interface SftDatasetStats {
  /** Rows read (blank lines excluded; rows after maxExamples was reached are not read). */
  rows: number;
  /** Valid examples. */
  examples: number;
  /** Invalid rows skipped (skipInvalid). */
  skipped: number;
  /** The first 20 skipped rows and why. */
  skippedReasons: { file: string; line: number; message: string }[];
  /** Examples cut to maxLength. */
  truncated: number;
  /** Tokens of all valid examples. */
  tokens: number;
  /** Loss targets of all valid examples after the shift (labels[t + 1] != -100). */
  lossTokens: number;
  /** Rows after packing (with packing only). */
  packedRows?: number;
}

const MAX_REASONS = 20;
const CACHE_SIZE = 256;

function lossTargets(labels: Int32Array): number {
  let n = 0;
  for (let t = 1; t < labels.length; t++) if (labels[t] !== IGNORE_INDEX) n++;
  return n;
}

export class SftDataset {
  /** Items: examples, or packed rows with packing. */
  readonly length: number;
  private readonly cache = new Map<number, TokenizedExample>();

  private constructor(
    readonly path: string,
    private readonly source: RowSource,
    private readonly tok: Tokenizer,
    private readonly opts: SftDatasetOptions,
    /** Source row of each valid example. */
    private readonly rows: Int32Array,
    /** Token count of each valid example. */
    private readonly lengths: Int32Array,
    /** Example indices of each packed row, or null without packing. */
    private readonly bins: number[][] | null,
    readonly stats: SftDatasetStats,
  ) {
    this.length = bins ? bins.length : rows.length;
  }

  /**
   * Opens and validates a dataset file (.jsonl / .json / .parquet). `indices` restricts it to those source rows
   * (0-based, e.g. one side of splitTrainEval), read in the order given.
   */
  static async open(path: string, tok: Tokenizer, opts: SftDatasetOptions, indices?: readonly number[]): Promise<SftDataset> {
    validateTokenizeOptions(opts);
    if (opts.maxExamples !== undefined && (!Number.isInteger(opts.maxExamples) || opts.maxExamples < 1)) {
      throw new AlignkitError(`SFT: maxExamples must be a positive integer, got ${opts.maxExamples}`);
    }
    const source = await openRowSource(path, { format: opts.format });
    try {
      const count = indices ? indices.length : source.length;
      if (indices) {
        indices.forEach((r, k) => {
          if (!Number.isInteger(r) || r < 0 || r >= source.length) throw new AlignkitError(`SFT: indices[${k}] = ${r} is not a row of ${path} (it has ${source.length})`);
        });
      }
      const stats: SftDatasetStats = { rows: 0, examples: 0, skipped: 0, skippedReasons: [], truncated: 0, tokens: 0, lossTokens: 0 };
      let rows: Int32Array = new Int32Array(Math.min(count, 1024));
      let lengths: Int32Array = new Int32Array(rows.length);
      for (let k = 0; k < count; k++) {
        if (opts.maxExamples !== undefined && stats.examples >= opts.maxExamples) break;
        const r = indices ? indices[k] : k;
        stats.rows++;
        let ex: TokenizedExample;
        try {
          ex = await SftDataset.load(source, tok, opts, r);
        } catch (e) {
          if (!(e instanceof DataError) || !opts.skipInvalid) throw e;
          stats.skipped++;
          if (stats.skippedReasons.length < MAX_REASONS) stats.skippedReasons.push({ file: e.file, line: e.line, message: e.message });
          continue;
        }
        if (stats.examples === rows.length) {
          const grow = (a: Int32Array): Int32Array => {
            const b = new Int32Array(Math.max(16, a.length * 2));
            b.set(a);
            return b;
          };
          rows = grow(rows);
          lengths = grow(lengths);
        }
        rows[stats.examples] = r;
        lengths[stats.examples] = ex.inputIds.length;
        stats.examples++;
        stats.tokens += ex.inputIds.length;
        stats.lossTokens += lossTargets(ex.labels);
        if (ex.truncated) stats.truncated++;
      }
      if (stats.examples === 0) {
        const why = stats.skippedReasons.length > 0 ? `; the first problem: ${stats.skippedReasons[0].message}` : '';
        throw new AlignkitError(`${path}: no usable SFT examples (${stats.rows} rows read, ${stats.skipped} skipped${why})`);
      }
      // get() reads in the trainer's (shuffled) order: the pass's read-ahead buffers would only go stale.
      source.releaseBuffers?.();
      rows = rows.slice(0, stats.examples);
      lengths = lengths.slice(0, stats.examples);
      let bins: number[][] | null = null;
      if (opts.packing) {
        bins = planPacking(Array.from(lengths), opts.maxLength);
        stats.packedRows = bins.length;
      }
      return new SftDataset(path, source, tok, opts, rows, lengths, bins, stats);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  /** Reads, converts and tokenises source row r. */
  private static async load(source: RowSource, tok: Tokenizer, opts: SftTokenizeOptions, r: number): Promise<TokenizedExample> {
    const where = { file: source.path, line: source.lineOf(r) };
    const row = await source.get(r);
    return tokenizeSftExample(tok, toSftExample(row, where), opts, where);
  }

  /** Number of valid examples (before packing). */
  get numExamples(): number {
    return this.rows.length;
  }

  /** Tokens of item i (an example, or a packed row), without reading it. */
  tokensOf(i: number): number {
    this.checkIndex(i);
    if (!this.bins) return this.lengths[i];
    let n = 0;
    for (const j of this.bins[i]) n += this.lengths[j];
    return n;
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`SftDataset: item ${i} out of range [0, ${this.length})`);
  }

  /** Item i: a tokenised example, or with packing a packed row. */
  async get(i: number): Promise<TokenizedExample | PackedRow> {
    this.checkIndex(i);
    if (!this.bins) return this.example(i);
    const parts: TokenizedExample[] = [];
    for (const j of this.bins[i]) parts.push(await this.example(j));
    return packRow(parts);
  }

  /** Valid example j (0-based among valid examples), tokenised. */
  async example(j: number): Promise<TokenizedExample> {
    if (!Number.isInteger(j) || j < 0 || j >= this.rows.length) throw new RangeError(`SftDataset: example ${j} out of range [0, ${this.rows.length})`);
    const hit = this.cache.get(j);
    if (hit) {
      this.cache.delete(j);
      this.cache.set(j, hit);
      return hit;
    }
    const ex = await SftDataset.load(this.source, this.tok, this.opts, this.rows[j]);
    if (ex.inputIds.length !== this.lengths[j]) {
      throw new AlignkitError(`${this.path}:${this.source.lineOf(this.rows[j])}: the row changed since the dataset was opened (${ex.inputIds.length} tokens, was ${this.lengths[j]})`);
    }
    if (this.cache.size >= CACHE_SIZE) this.cache.delete(this.cache.keys().next().value as number);
    this.cache.set(j, ex);
    return ex;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.source.close();
  }
}
