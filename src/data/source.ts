// Random access to the rows of a dataset file without holding the file in memory.
//
// JSON Lines (and a .json file that turns out to be JSON Lines) and top-level JSON arrays are indexed in one
// streaming pass that records where each row's bytes are; a row is then read with one positioned read and parsed
// on demand. The index costs 24 bytes per row, whatever the size of the rows, and files beyond 2 GiB work (Node
// cannot read those in one call, and a string cannot hold them). Parquet files are read through hyparquet in
// blocks of rows, so a sequential pass decodes each page once.
//
// Row problems (malformed JSON, a row that is not an object, invalid UTF-8, a truncated last row) are found when
// the row is read, as a DataError naming the file and the 1-based line, so a caller can count and skip bad rows
// (`skipInvalid`) instead of losing the whole file to one of them.
import { createReadStream } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type FileMetaData } from 'hyparquet';
import { AlignkitError } from '../tensor/errors.ts';
import { DataError, quote, typeName } from './errors.ts';

export type RowFormat = 'jsonl' | 'json' | 'parquet';

/** A dataset file as an array of rows (JSON objects). */
export interface RowSource {
  readonly path: string;
  /** Number of rows (blank JSONL lines are not rows). */
  readonly length: number;
  /** Reads and parses row `index` (0-based); a bad row throws DataError. */
  get(index: number): Promise<Record<string, unknown>>;
  /** The 1-based location of row `index` for messages: JSONL line, JSON array element, Parquet row. */
  lineOf(index: number): number;
  /** Drops read-ahead buffers and cached rows (e.g. after a sequential pass, before random access). */
  releaseBuffers?(): void;
  close(): Promise<void>;
}

export interface OpenRowSourceOptions {
  /** Overrides the format implied by the file extension. */
  format?: RowFormat;
}

/** Read chunk of the indexing pass. */
const SCAN_CHUNK = 1 << 20;
/** Bytes read at once when fetching a row (the rows after it usually come next). */
const READ_AHEAD = 1 << 20;
/** Parquet rows decoded per read (a sequential pass then decodes each page about once). */
const PARQUET_BLOCK = 1024;

/** The format a file name implies, or null. */
export function formatOfPath(path: string): RowFormat | null {
  const ext = extname(path).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') return 'jsonl';
  if (ext === '.json') return 'json';
  if (ext === '.parquet') return 'parquet';
  return null;
}

function fileError(path: string, problem: string): AlignkitError {
  return new AlignkitError(`${path}: ${problem}`);
}

async function checkFile(path: string): Promise<void> {
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw fileError(path, 'is a directory, not a dataset file');
  } catch (e) {
    if (e instanceof AlignkitError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw fileError(path, code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String((e as Error).message));
  }
}

/** Opens a dataset file for random access by row. */
export async function openRowSource(path: string, opts: OpenRowSourceOptions = {}): Promise<RowSource> {
  const format = opts.format ?? formatOfPath(path);
  if (format === null) {
    throw fileError(path, `cannot tell the format from the extension '${extname(path)}' (expected .jsonl, .ndjson, .json or .parquet; or pass format)`);
  }
  await checkFile(path);
  if (format === 'parquet') return ParquetSource.open(path);
  if (format === 'jsonl') return ByteRangeSource.open(path, 'jsonl');
  // .json: a top-level array, or JSON Lines under a .json name — the first non-blank character decides.
  const first = await firstSignificantByte(path);
  if (first === -1 || first === 0x7b /* { */) return ByteRangeSource.open(path, 'json-lines');
  if (first === 0x5b /* [ */) return ByteRangeSource.open(path, 'json-array');
  throw new DataError(
    path,
    1,
    null,
    `a .json dataset must be a top-level array of objects or one JSON object per line; it starts with ${quote(String.fromCharCode(first))}`,
  );
}

/** The first byte that is neither whitespace nor a UTF-8 byte-order mark; -1 for an empty file. */
async function firstSignificantByte(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(4096);
    let pos = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return -1;
      for (let i = 0; i < bytesRead; i++) {
        const b = buf[i];
        if (pos + i < 3 && (b === 0xef || b === 0xbb || b === 0xbf)) continue;
        if (!isWs(b)) return b;
      }
      pos += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

function isWs(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Growable typed-array columns of the row index: start offset, byte length, 1-based line. */
class RowIndex {
  starts: Float64Array = new Float64Array(1024);
  lengths: Float64Array = new Float64Array(1024);
  lines: Float64Array = new Float64Array(1024);
  length = 0;

  push(start: number, end: number, line: number): void {
    if (this.length === this.starts.length) {
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      this.starts = grow(this.starts);
      this.lengths = grow(this.lengths);
      this.lines = grow(this.lines);
    }
    this.starts[this.length] = start;
    this.lengths[this.length] = end - start;
    this.lines[this.length] = line;
    this.length++;
  }
}

type ByteRangeKind = 'jsonl' | 'json-lines' | 'json-array';

/** Rows that are byte ranges of the file: JSONL lines or the elements of a top-level JSON array. */
class ByteRangeSource implements RowSource {
  private fh: FileHandle | null;
  /** The last bytes read: [start, start + buf.length) of the file. */
  private window: { start: number; buf: Buffer } | null = null;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  private constructor(
    readonly path: string,
    private readonly index: RowIndex,
    private readonly kind: ByteRangeKind,
    /** The last row ends at end of file without a newline (JSONL) / before the array was closed (JSON). */
    private readonly lastUnterminated: boolean,
    fh: FileHandle,
  ) {
    this.fh = fh;
  }

  static async open(path: string, kind: ByteRangeKind): Promise<ByteRangeSource> {
    const { index, lastUnterminated } = kind === 'json-array' ? await indexJsonArray(path) : await indexLines(path);
    const fh = await open(path, 'r');
    return new ByteRangeSource(path, index, kind, lastUnterminated, fh);
  }

  get length(): number {
    return this.index.length;
  }

  lineOf(index: number): number {
    this.checkIndex(index);
    return this.index.lines[index];
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.index.length) {
      throw new RangeError(`${this.path}: row ${index} out of range [0, ${this.index.length})`);
    }
  }

  async get(index: number): Promise<Record<string, unknown>> {
    this.checkIndex(index);
    if (this.fh === null) throw fileError(this.path, 'read after close()');
    const line = this.index.lines[index];
    const start = this.index.starts[index];
    const length = this.index.lengths[index];
    // V8 strings hold at most 2^29 - 24 UTF-16 units; a longer row cannot be parsed by JSON.parse anyway.
    if (length > 512 * 1024 * 1024) throw new DataError(this.path, line, null, `row of ${length} bytes is too large to parse`);
    const buf = await this.bytes(start, length, line);
    let text: string;
    try {
      text = this.decoder.decode(buf);
    } catch {
      throw new DataError(this.path, line, null, `invalid UTF-8 (byte ${firstInvalidUtf8(buf) + 1} of the row)`);
    }
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      const why = (e as Error).message;
      if (index === this.index.length - 1 && this.lastUnterminated) {
        const where = this.kind === 'json-array' ? 'the file ends before the top-level array is closed' : 'the last line has no newline';
        throw new DataError(this.path, line, null, `truncated row: ${where} and its JSON is incomplete (${why})`);
      }
      const hint =
        this.kind === 'json-lines' && index === 0
          ? ' (a .json dataset must be a top-level array of objects or one JSON object per line; a pretty-printed single object is neither)'
          : '';
      throw new DataError(this.path, line, null, `malformed JSON: ${why}${hint}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      const what = this.kind === 'json-array' ? 'each element of the top-level array' : 'each line';
      throw new DataError(this.path, line, null, `${what} must be a JSON object, got ${typeName(value)}`);
    }
    return value as Record<string, unknown>;
  }

  /** Bytes [start, start + length) of the file, from the read-ahead window when it holds them (a sequential pass
   *  then costs one read per READ_AHEAD bytes instead of one per row). */
  private async bytes(start: number, length: number, line: number): Promise<Buffer> {
    const w = this.window;
    if (w && start >= w.start && start + length <= w.start + w.buf.length) return w.buf.subarray(start - w.start, start - w.start + length);
    const fh = this.fh as FileHandle;
    const buf = Buffer.allocUnsafe(Math.max(length, READ_AHEAD));
    let done = 0;
    while (done < length) {
      const { bytesRead } = await fh.read(buf, done, buf.length - done, start + done);
      if (bytesRead === 0) throw new DataError(this.path, line, null, 'the file became shorter while being read');
      done += bytesRead;
    }
    this.window = { start, buf: buf.subarray(0, done) };
    return buf.subarray(0, length);
  }

  releaseBuffers(): void {
    this.window = null;
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = null;
    this.window = null;
    if (fh) await fh.close();
  }
}

/** Position (0-based) of the first byte that breaks UTF-8, for messages. */
function firstInvalidUtf8(buf: Uint8Array): number {
  let i = 0;
  while (i < buf.length) {
    const b = buf[i];
    const n = b < 0x80 ? 1 : b >= 0xc2 && b < 0xe0 ? 2 : b >= 0xe0 && b < 0xf0 ? 3 : b >= 0xf0 && b < 0xf5 ? 4 : 0;
    if (n === 0 || i + n > buf.length) return i;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(i, i + n));
    } catch {
      return i;
    }
    i += n;
  }
  return i;
}

/**
 * One streaming pass over a JSON Lines file: the byte range and line number of every non-blank line. A line is
 * blank when it holds only spaces, tabs and CR. A UTF-8 BOM at the start of the file is skipped.
 */
async function indexLines(path: string): Promise<{ index: RowIndex; lastUnterminated: boolean }> {
  const index = new RowIndex();
  let pos = 0; // absolute offset of the current chunk
  let line = 1;
  let lineStart = 0;
  let hasContent = false;
  let first = true;
  for await (const chunkAny of createReadStream(path, { highWaterMark: SCAN_CHUNK })) {
    const chunk = chunkAny as Buffer;
    let i = 0;
    if (first) {
      first = false;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) {
        i = 3;
        lineStart = 3;
      }
    }
    while (i < chunk.length) {
      const nl = chunk.indexOf(0x0a, i);
      const end = nl < 0 ? chunk.length : nl;
      if (!hasContent) {
        for (let k = i; k < end; k++) {
          const b = chunk[k];
          if (b !== 0x20 && b !== 0x09 && b !== 0x0d) {
            hasContent = true;
            break;
          }
        }
      }
      if (nl < 0) break;
      const lineEnd = pos + nl;
      if (hasContent) index.push(lineStart, lineEnd, line);
      line++;
      lineStart = lineEnd + 1;
      hasContent = false;
      i = nl + 1;
    }
    pos += chunk.length;
  }
  let lastUnterminated = false;
  if (hasContent && lineStart < pos) {
    index.push(lineStart, pos, line);
    lastUnterminated = true;
  }
  return { index, lastUnterminated };
}

/**
 * One streaming pass over a top-level JSON array: the byte range of each element (1-based element number as its
 * line). Only the structure is tracked (strings, escapes, nesting depth); each element is validated when read.
 * Structural errors outside elements (an empty element "[1,,2]", content after the closing bracket) are thrown here.
 */
async function indexJsonArray(path: string): Promise<{ index: RowIndex; lastUnterminated: boolean }> {
  const index = new RowIndex();
  let pos = 0;
  let opened = false; // seen the top-level '['
  let closed = false; // seen its ']'
  let depth = 0; // nesting inside the current element
  let inString = false;
  let escape = false;
  let elemStart = -1; // absolute offset of the current element's first byte, -1 between elements
  let lastNonWs = -1; // absolute offset of the last non-whitespace byte
  let afterComma = false;
  const fail = (problem: string): never => {
    throw new DataError(path, index.length + 1, null, problem);
  };
  let first = true;
  for await (const chunkAny of createReadStream(path, { highWaterMark: SCAN_CHUNK })) {
    const chunk = chunkAny as Buffer;
    let i = 0;
    if (first) {
      first = false;
      if (chunk.length >= 3 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf) i = 3;
    }
    for (; i < chunk.length; i++) {
      const b = chunk[i];
      if (inString) {
        lastNonWs = pos + i;
        if (escape) escape = false;
        else if (b === 0x5c /* \ */) escape = true;
        else if (b === 0x22 /* " */) inString = false;
        continue;
      }
      if (isWs(b)) continue;
      const at = pos + i;
      if (closed) fail(`unexpected ${quote(String.fromCharCode(b))} after the closing ']' of the top-level array`);
      if (!opened) {
        // openRowSource checked that the first significant byte is '['.
        opened = true;
        continue;
      }
      if (depth === 0 && (b === 0x2c /* , */ || b === 0x5d) /* ] */) {
        if (elemStart >= 0) {
          index.push(elemStart, lastNonWs + 1, index.length + 1);
          elemStart = -1;
        } else if (b === 0x2c || afterComma) fail(b === 0x2c ? 'empty element (two commas in a row?)' : 'trailing comma before the closing ]');
        afterComma = b === 0x2c;
        if (b === 0x5d) closed = true;
        lastNonWs = at;
        continue;
      }
      if (elemStart < 0) elemStart = at;
      lastNonWs = at;
      if (b === 0x22) inString = true;
      else if (b === 0x7b || b === 0x5b) depth++;
      else if (b === 0x7d || b === 0x5d) depth--;
    }
    pos += chunk.length;
  }
  if (closed) return { index, lastUnterminated: false };
  if (elemStart >= 0) {
    // The file ends inside an element: keep the complete elements readable; reading this one reports the truncation.
    index.push(elemStart, lastNonWs + 1, index.length + 1);
    return { index, lastUnterminated: true };
  }
  return fail('truncated file: it ends before the top-level array is closed');
}

/** Parquet rows through hyparquet, decoded PARQUET_BLOCK rows at a time (the last two blocks are kept). */
class ParquetSource implements RowSource {
  private blocks = new Map<number, Record<string, unknown>[]>();
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly file: Awaited<ReturnType<typeof asyncBufferFromFile>>,
    private readonly metadata: FileMetaData,
    readonly length: number,
  ) {}

  static async open(path: string): Promise<ParquetSource> {
    try {
      const file = await asyncBufferFromFile(path);
      const metadata = await parquetMetadataAsync(file);
      return new ParquetSource(path, file, metadata, Number(metadata.num_rows));
    } catch (e) {
      throw fileError(path, `not a readable Parquet file (${(e as Error).message})`);
    }
  }

  lineOf(index: number): number {
    this.checkIndex(index);
    return index + 1;
  }

  private checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) throw new RangeError(`${this.path}: row ${index} out of range [0, ${this.length})`);
  }

  async get(index: number): Promise<Record<string, unknown>> {
    this.checkIndex(index);
    if (this.closed) throw fileError(this.path, 'read after close()');
    const b = Math.floor(index / PARQUET_BLOCK);
    let rows = this.blocks.get(b);
    if (!rows) {
      const rowStart = b * PARQUET_BLOCK;
      const rowEnd = Math.min(this.length, rowStart + PARQUET_BLOCK);
      try {
        rows = (await parquetReadObjects({ file: this.file, metadata: this.metadata, rowStart, rowEnd })) as Record<string, unknown>[];
      } catch (e) {
        throw new DataError(this.path, index + 1, null, `cannot decode Parquet rows ${rowStart + 1}-${rowEnd}: ${(e as Error).message}`);
      }
      if (this.blocks.size >= 2) this.blocks.delete(this.blocks.keys().next().value as number);
      this.blocks.set(b, rows);
    }
    const row = rows[index - b * PARQUET_BLOCK];
    if (typeof row !== 'object' || row === null) throw new DataError(this.path, index + 1, null, 'row could not be decoded');
    return row;
  }

  releaseBuffers(): void {
    this.blocks.clear();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.blocks.clear();
  }
}
