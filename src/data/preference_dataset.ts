// Preference (and unpaired preference) dataset files as tokenised examples, for the reward / DPO / ORPO / SimPO /
// KTO trainers. Same design as SftDataset: open() makes one streaming pass in which every row is read, converted
// and tokenised once, keeping only each valid example's source row and token count; get() re-reads and
// re-tokenises on demand (tokenisation is deterministic), with a small cache.
//
// Files: .jsonl / .ndjson / .json / .parquet through openRowSource, and gzip-compressed JSON Lines or JSON
// (.jsonl.gz, .ndjson.gz, .json.gz — HH-RLHF ships as .jsonl.gz). A compressed file is decompressed once, in a
// streaming pass, to a temporary file that is indexed like any other; the temporary file is unlinked as soon as
// it is open (on POSIX systems the open handle keeps it readable, so nothing is left behind even if close() is
// never called; elsewhere it is removed by close()). Messages always name the file the user gave.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Tokenizer } from '../tokenizer/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { DataError, type RowLocation } from './errors.ts';
import {
  isPairedRow,
  toPreferenceExample,
  toUnpairedExample,
  tokenizePreference,
  tokenizeUnpaired,
  unpairPreferenceExample,
  validatePreferenceOptions,
  type PreferenceTokenizeOptions,
  type TokenizedPair,
  type TokenizedUnpaired,
} from './preference.ts';
import { formatOfPath, openRowSource, type RowFormat, type RowSource } from './source.ts';

export interface PreferenceDatasetOptions extends PreferenceTokenizeOptions {
  /** Count and skip rows that are invalid (DataError) instead of failing on the first. Default false. */
  skipInvalid?: boolean;
  /** Stop after this many valid examples. */
  maxExamples?: number;
  /** Overrides the format implied by the file extension (of the decompressed name for .gz files). */
  format?: RowFormat;
}

export interface PreferenceDatasetStats {
  /** Rows read (blank lines excluded; rows after maxExamples was reached are not read). */
  rows: number;
  /** Valid examples (pairs; for UnpairedDataset, labelled completions). */
  examples: number;
  /** Invalid rows skipped (skipInvalid). */
  skipped: number;
  /** The first 20 skipped rows and why. */
  skippedReasons: { file: string; line: number; message: string }[];
  /** Examples whose prompt or completions were cut to fit. */
  truncated: number;
}

export interface UnpairedDatasetStats extends PreferenceDatasetStats {
  /** Examples labelled desirable / undesirable (KTO weighs the two losses by these counts). */
  desirable: number;
  undesirable: number;
}

const MAX_REASONS = 20;
const CACHE_SIZE = 256;

// ------------------------------------------------------------------------------------------- row source (+gzip)

/** A RowSource read from a temporary decompressed copy, reporting the user's file name in its errors. */
class RenamedSource implements RowSource {
  constructor(
    readonly path: string,
    private readonly inner: RowSource,
    /** Removes the temporary copy (a no-op when it is already gone). */
    private readonly cleanup: () => Promise<void>,
  ) {}

  get length(): number {
    return this.inner.length;
  }

  lineOf(index: number): number {
    return this.inner.lineOf(index);
  }

  async get(index: number): Promise<Record<string, unknown>> {
    try {
      return await this.inner.get(index);
    } catch (e) {
      throw renameError(e, this.inner.path, this.path);
    }
  }

  releaseBuffers(): void {
    this.inner.releaseBuffers?.();
  }

  async close(): Promise<void> {
    try {
      await this.inner.close();
    } finally {
      await this.cleanup();
    }
  }
}

function renameError(e: unknown, from: string, to: string): unknown {
  if (e instanceof DataError) return new DataError(to, e.line, e.field, e.reason);
  if (e instanceof AlignkitError) return new AlignkitError(e.message.split(from).join(to));
  if (e instanceof RangeError) return new RangeError(e.message.split(from).join(to));
  return e;
}

/** Opens a dataset file for random access by row; `.gz` files are decompressed first (see the top of the file). */
export async function openPreferenceRowSource(path: string, format?: RowFormat): Promise<RowSource> {
  if (extname(path).toLowerCase() !== '.gz') return openRowSource(path, { format });
  const inner = path.slice(0, -3);
  const innerFormat = format ?? formatOfPath(inner);
  if (innerFormat === null || innerFormat === 'parquet') {
    throw new AlignkitError(`${path}: a compressed dataset must be JSON Lines or JSON (.jsonl.gz, .ndjson.gz or .json.gz; or pass format)`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'alignkit-gunzip-'));
  const remove = async (): Promise<void> => {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };
  const tmp = join(dir, basename(inner));
  try {
    await pipeline(createReadStream(path), createGunzip(), createWriteStream(tmp));
  } catch (e) {
    await remove();
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && err.path === path) throw new AlignkitError(`${path}: file not found`);
    if (err.code === 'EISDIR') throw new AlignkitError(`${path}: is a directory, not a dataset file`);
    if (typeof err.code === 'string' && err.code.startsWith('Z_')) throw new AlignkitError(`${path}: not a valid gzip file (${err.message})`);
    throw new AlignkitError(`${path}: cannot decompress: ${err.message}`);
  }
  let source: RowSource;
  try {
    source = await openRowSource(tmp, { format: innerFormat });
  } catch (e) {
    await remove();
    throw renameError(e, tmp, path);
  }
  // The source holds the file open: on POSIX it stays readable after the unlink. Where an open file cannot be
  // removed (Windows), rm fails quietly and close() tries again.
  await remove();
  return new RenamedSource(path, source, remove);
}

// ------------------------------------------------------------------------------------------------- the pass

function checkOptions(o: PreferenceDatasetOptions, who: string): void {
  validatePreferenceOptions(o);
  if (o.maxExamples !== undefined && (!Number.isInteger(o.maxExamples) || o.maxExamples < 1)) {
    throw new AlignkitError(`${who}: maxExamples must be a positive integer, got ${o.maxExamples}`);
  }
}

function checkIndices(indices: readonly number[] | undefined, source: RowSource, who: string): void {
  indices?.forEach((r, k) => {
    if (!Number.isInteger(r) || r < 0 || r >= source.length) throw new AlignkitError(`${who}: indices[${k}] = ${r} is not a row of ${source.path} (it has ${source.length})`);
  });
}

/** Growable Int32 column. */
class IntColumn {
  data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const b = new Int32Array(this.data.length * 2);
      b.set(this.data);
      this.data = b;
    }
    this.data[this.length++] = v;
  }
  done(): Int32Array {
    return this.data.slice(0, this.length);
  }
}

function skipOrThrow(e: unknown, o: PreferenceDatasetOptions, stats: PreferenceDatasetStats): void {
  if (!(e instanceof DataError) || !o.skipInvalid) throw e;
  stats.skipped++;
  if (stats.skippedReasons.length < MAX_REASONS) stats.skippedReasons.push({ file: e.file, line: e.line, message: e.message });
}

function noExamples(path: string, what: string, stats: PreferenceDatasetStats): AlignkitError {
  const why = stats.skippedReasons.length > 0 ? `; the first problem: ${stats.skippedReasons[0].message}` : '';
  return new AlignkitError(`${path}: no usable ${what} (${stats.rows} rows read, ${stats.skipped} skipped${why})`);
}

/** Tokens of the longer of a pair's two rows (prompt + chosen, prompt + rejected): its padded length in a batch. */
export function pairTokens(p: TokenizedPair): number {
  return p.promptIds.length + Math.max(p.chosenIds.length, p.rejectedIds.length);
}

/** Small LRU cache of tokenised examples. */
class Lru<T> {
  private readonly map = new Map<number, T>();
  get(k: number): T | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: number, v: T): void {
    if (this.map.size >= CACHE_SIZE) this.map.delete(this.map.keys().next().value as number);
    this.map.set(k, v);
  }
  clear(): void {
    this.map.clear();
  }
}

// --------------------------------------------------------------------------------------- PreferenceDataset

/** A file of preference pairs (any format of preference.ts), tokenised lazily. */
export class PreferenceDataset {
  readonly length: number;
  private readonly cache = new Lru<TokenizedPair>();

  private constructor(
    readonly path: string,
    private readonly source: RowSource,
    private readonly tok: Tokenizer,
    private readonly opts: PreferenceDatasetOptions,
    /** Source row of each valid pair. */
    private readonly rows: Int32Array,
    /** pairTokens() of each valid pair. */
    private readonly lengths: Int32Array,
    readonly stats: PreferenceDatasetStats,
  ) {
    this.length = rows.length;
  }

  /**
   * Opens and validates a preference file. `indices` restricts it to those source rows (0-based, e.g. one side
   * of splitTrainEval), read in the order given. Either every pair has a margin (or scores) or none has: a row
   * that differs from the first valid one is invalid (skipped with skipInvalid).
   */
  static async open(path: string, tok: Tokenizer, o: PreferenceDatasetOptions, indices?: readonly number[]): Promise<PreferenceDataset> {
    checkOptions(o, 'PreferenceDataset');
    const source = await openPreferenceRowSource(path, o.format);
    try {
      checkIndices(indices, source, 'PreferenceDataset');
      const count = indices ? indices.length : source.length;
      const stats: PreferenceDatasetStats = { rows: 0, examples: 0, skipped: 0, skippedReasons: [], truncated: 0 };
      const rows = new IntColumn();
      const lengths = new IntColumn();
      let withMargin: { has: boolean; line: number } | null = null;
      for (let k = 0; k < count; k++) {
        if (o.maxExamples !== undefined && stats.examples >= o.maxExamples) break;
        const r = indices ? indices[k] : k;
        stats.rows++;
        try {
          const ex = await PreferenceDataset.load(source, tok, o, r);
          const has = ex.margin !== null;
          if (withMargin === null) withMargin = { has, line: source.lineOf(r) };
          else if (withMargin.has !== has) {
            throw new DataError(
              path,
              source.lineOf(r),
              'margin',
              has
                ? `this pair has a margin (or scores) but the first pair (line ${withMargin.line}) has none: every pair needs one, or none`
                : `missing: the first pair (line ${withMargin.line}) has a margin (or scores), so every pair needs one`,
            );
          }
          rows.push(r);
          lengths.push(pairTokens(ex));
          stats.examples++;
          if (ex.truncated) stats.truncated++;
        } catch (e) {
          skipOrThrow(e, o, stats);
        }
      }
      if (stats.examples === 0) throw noExamples(path, 'preference pairs', stats);
      // get() reads in the trainer's (shuffled) order: the pass's read-ahead buffers would only go stale.
      source.releaseBuffers?.();
      return new PreferenceDataset(path, source, tok, o, rows.done(), lengths.done(), stats);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  private static async load(source: RowSource, tok: Tokenizer, o: PreferenceTokenizeOptions, r: number): Promise<TokenizedPair> {
    const where: RowLocation = { file: source.path, line: source.lineOf(r) };
    const row = await source.get(r);
    return tokenizePreference(tok, toPreferenceExample(row, where), o, where);
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`PreferenceDataset: pair ${i} out of range [0, ${this.length})`);
  }

  /** Tokens of pair i's longer row (prompt + the longer completion), without reading it. */
  tokensOf(i: number): number {
    this.checkIndex(i);
    return this.lengths[i];
  }

  /** Pair i (0-based among valid pairs), tokenised. */
  async get(i: number): Promise<TokenizedPair> {
    this.checkIndex(i);
    const hit = this.cache.get(i);
    if (hit) return hit;
    const ex = await PreferenceDataset.load(this.source, this.tok, this.opts, this.rows[i]);
    if (pairTokens(ex) !== this.lengths[i]) {
      throw new AlignkitError(`${this.path}:${this.source.lineOf(this.rows[i])}: the row changed since the dataset was opened (${pairTokens(ex)} tokens, was ${this.lengths[i]})`);
    }
    this.cache.set(i, ex);
    return ex;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.source.close();
  }
}

// ----------------------------------------------------------------------------------------- UnpairedDataset

/**
 * A file of labelled completions for KTO. Rows in an unpaired format give one example each; rows holding a pair
 * give two, (prompt, chosen, desirable) then (prompt, rejected, undesirable), as TRL's KTOTrainer unpairs a
 * preference dataset.
 */
export class UnpairedDataset {
  readonly length: number;
  private readonly cache = new Lru<TokenizedUnpaired>();

  private constructor(
    readonly path: string,
    private readonly source: RowSource,
    private readonly tok: Tokenizer,
    private readonly opts: PreferenceDatasetOptions,
    /** Source row of each valid example. */
    private readonly rows: Int32Array,
    /** -1: an unpaired row; 0 / 1: the chosen / rejected half of a paired row. */
    private readonly sides: Int8Array,
    /** Tokens (prompt + completion) of each example. */
    private readonly lengths: Int32Array,
    readonly stats: UnpairedDatasetStats,
  ) {
    this.length = rows.length;
  }

  /** Opens and validates a file; `indices` restricts it to those source rows (0-based), in the order given. */
  static async open(path: string, tok: Tokenizer, o: PreferenceDatasetOptions, indices?: readonly number[]): Promise<UnpairedDataset> {
    checkOptions(o, 'UnpairedDataset');
    const source = await openPreferenceRowSource(path, o.format);
    try {
      checkIndices(indices, source, 'UnpairedDataset');
      const count = indices ? indices.length : source.length;
      const stats: UnpairedDatasetStats = { rows: 0, examples: 0, skipped: 0, skippedReasons: [], truncated: 0, desirable: 0, undesirable: 0 };
      const rows = new IntColumn();
      const sides = new IntColumn();
      const lengths = new IntColumn();
      for (let k = 0; k < count; k++) {
        if (o.maxExamples !== undefined && stats.examples >= o.maxExamples) break;
        const r = indices ? indices[k] : k;
        stats.rows++;
        let examples: { side: number; ex: TokenizedUnpaired }[];
        try {
          examples = await UnpairedDataset.loadRow(source, tok, o, r);
        } catch (e) {
          skipOrThrow(e, o, stats);
          continue;
        }
        for (const { side, ex } of examples) {
          if (o.maxExamples !== undefined && stats.examples >= o.maxExamples) break;
          rows.push(r);
          sides.push(side);
          lengths.push(ex.promptIds.length + ex.completionIds.length);
          stats.examples++;
          if (ex.label) stats.desirable++;
          else stats.undesirable++;
          if (ex.truncated) stats.truncated++;
        }
      }
      if (stats.examples === 0) throw noExamples(path, 'unpaired preference examples', stats);
      source.releaseBuffers?.();
      return new UnpairedDataset(path, source, tok, o, rows.done(), Int8Array.from(sides.done()), lengths.done(), stats);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  /** The example(s) of source row r: one for an unpaired row, two for a pair. */
  private static async loadRow(source: RowSource, tok: Tokenizer, o: PreferenceTokenizeOptions, r: number): Promise<{ side: number; ex: TokenizedUnpaired }[]> {
    const where: RowLocation = { file: source.path, line: source.lineOf(r) };
    const row = await source.get(r);
    if (!isPairedRow(row)) return [{ side: -1, ex: tokenizeUnpaired(tok, toUnpairedExample(row, where), o, where) }];
    const halves = unpairPreferenceExample(toPreferenceExample(row, where));
    return halves.map((h, side) => ({ side, ex: tokenizeUnpaired(tok, h, o, where) }));
  }

  private checkIndex(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.length) throw new RangeError(`UnpairedDataset: example ${i} out of range [0, ${this.length})`);
  }

  /** Tokens (prompt + completion) of example i, without reading it. */
  tokensOf(i: number): number {
    this.checkIndex(i);
    return this.lengths[i];
  }

  /** Example i (0-based among valid examples), tokenised. */
  async get(i: number): Promise<TokenizedUnpaired> {
    this.checkIndex(i);
    const hit = this.cache.get(i);
    if (hit) return hit;
    const all = await UnpairedDataset.loadRow(this.source, this.tok, this.opts, this.rows[i]);
    const side = this.sides[i];
    const found = all.find((x) => x.side === side);
    const ex = found?.ex;
    if (!ex || ex.promptIds.length + ex.completionIds.length !== this.lengths[i]) {
      throw new AlignkitError(`${this.path}:${this.source.lineOf(this.rows[i])}: the row changed since the dataset was opened`);
    }
    this.cache.set(i, ex);
    return ex;
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.source.close();
  }
}
