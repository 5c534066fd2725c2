// Streaming readers and writers for the data tools: JSONL (optionally gzip'ed), CSV/TSV (RFC 4180), Parquet,
// and whole-file JSON arrays. Readers are AsyncIterables of { row, line } that hold one chunk (1 MiB) or one
// Parquet row group in memory at a time, never the file; writers append to a temporary file next to the
// destination and rename it into place on close(), so a failure at any point leaves no partial output.
//
// Bad input raises a PrepError naming file, line (or row) and field. With skipInvalid the bad row is counted
// in `stats.skipped` (the first messages kept in `stats.samples`) and reading goes on.
//
// Lone surrogates: JSON text can spell a UTF-16 surrogate that has no partner ("\ud800"); JSON.parse accepts it
// and the result is not valid Unicode (it cannot be written as UTF-8 and breaks tokenizers). By default such a
// string is an error naming the line and field; with loneSurrogates: 'replace' each lone surrogate becomes
// U+FFFD. Raw UTF-8 bytes can never decode to a lone surrogate (the fatal decoder rejects ED A0..BF), so only
// \u escapes are checked, and only on lines that contain one.
import fs from 'node:fs';
import nodePath from 'node:path';
import zlib from 'node:zlib';
import { TextDecoder } from 'node:util';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema, type FileMetaData, type SchemaTree } from 'hyparquet';
import { ByteWriter, ParquetWriter, type ColumnSource, type SchemaElement } from 'hyparquet-writer';
import { AtomicFile } from '../../io/file.ts';
import { PrepConfigError, PrepError } from './errors.ts';
import { firstInvalidUtf8, incompleteTail } from './utf8.ts';

export type Row = Record<string, unknown>;
export interface SourceRow {
  row: Row;
  /** 1-based physical line (JSONL, CSV: where the record starts) or row number (Parquet, JSON arrays). */
  line: number;
}

export type DataFormat = 'jsonl' | 'json' | 'csv' | 'tsv' | 'parquet';
export const DATA_FORMATS: readonly DataFormat[] = ['jsonl', 'json', 'csv', 'tsv', 'parquet'];

/** The format a path's extension names (.jsonl, .ndjson, .jsonl.gz, .json, .csv, .tsv, .parquet). */
export function formatOf(path: string, explicit?: string): DataFormat {
  if (explicit) {
    if (!(DATA_FORMATS as readonly string[]).includes(explicit)) throw new PrepConfigError(`unknown data format '${explicit}' (expected one of ${DATA_FORMATS.join(', ')})`);
    return explicit as DataFormat;
  }
  const p = path.toLowerCase().replace(/\.gz$/, '');
  if (p.endsWith('.jsonl') || p.endsWith('.ndjson')) return 'jsonl';
  if (p.endsWith('.json')) return 'json';
  if (p.endsWith('.csv')) return 'csv';
  if (p.endsWith('.tsv')) return 'tsv';
  if (p.endsWith('.parquet') || p.endsWith('.pq')) return 'parquet';
  throw new PrepConfigError(`${path}: cannot tell the format from the extension (use .jsonl, .json, .csv, .tsv or .parquet, or pass --format)`);
}

/** What a field must hold. 'text': a string, a message list, or a message object (see fields.ts). */
export type FieldType = 'string' | 'number' | 'boolean' | 'text' | 'any';
export interface FieldExpectation {
  field: string;
  type: FieldType;
}

export interface ReadOptions {
  format?: DataFormat;
  /** Count and skip bad rows instead of throwing. */
  skipInvalid?: boolean;
  /** 'error' (default) or 'replace' with U+FFFD. */
  loneSurrogates?: 'error' | 'replace';
  /** Fields every row must have (JSONL/CSV: checked per row; Parquet: against the schema, once). */
  expect?: readonly FieldExpectation[];
  /** CSV field separator (default ',' for .csv, tab for .tsv). */
  delimiter?: string;
  /** Bytes per read (default 1 MiB). */
  chunkBytes?: number;
}

export interface ReadStats {
  /** Rows yielded. */
  rows: number;
  /** Rows skipped as invalid (only with skipInvalid). */
  skipped: number;
  /** The first few skip messages. */
  samples: string[];
}

const MAX_SAMPLES = 10;

/** A file of rows, read lazily. Iterate it once. */
export class RowReader implements AsyncIterable<SourceRow> {
  readonly stats: ReadStats = { rows: 0, skipped: 0, samples: [] };
  readonly format: DataFormat;

  constructor(
    readonly path: string,
    readonly options: ReadOptions = {},
  ) {
    this.format = formatOf(path, options.format);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<SourceRow> {
    const src = this.format === 'jsonl' ? readJsonl(this.path, this.options, this) :
      this.format === 'json' ? readJsonArray(this.path, this.options, this) :
      this.format === 'parquet' ? readParquet(this.path, this.options, this) :
      readCsv(this.path, this.options, this.options.delimiter ?? (this.format === 'tsv' ? '\t' : ','), this);
    for await (const r of src) {
      this.stats.rows++;
      yield r;
    }
  }

  /** Throws e, or (with skipInvalid) records it and returns so the caller moves on. */
  invalid(e: PrepError): void {
    if (!this.options.skipInvalid) throw e;
    this.stats.skipped++;
    if (this.stats.samples.length < MAX_SAMPLES) this.stats.samples.push(e.message);
  }
}

export function readRows(path: string, options: ReadOptions = {}): RowReader {
  return new RowReader(path, options);
}

function errnoMessage(e: unknown): string {
  const code = e instanceof Error && 'code' in e ? String(e.code) : '';
  if (code === 'ENOENT') return 'file not found';
  if (code === 'EISDIR') return 'is a directory, not a file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return e instanceof Error ? e.message : String(e);
}

/** The file's bytes as chunks; .gz files are gunzipped. Open/read errors become PrepErrors. */
async function* byteChunks(path: string, chunkBytes: number): AsyncGenerator<Buffer> {
  try {
    const st = await fs.promises.stat(path);
    if (st.isDirectory()) throw new PrepError(path, {}, 'is a directory, not a file');
  } catch (e) {
    if (e instanceof PrepError) throw e;
    throw new PrepError(path, {}, errnoMessage(e));
  }
  const raw = fs.createReadStream(path, { highWaterMark: chunkBytes });
  const stream = path.toLowerCase().endsWith('.gz') ? raw.pipe(zlib.createGunzip({ chunkSize: Math.min(chunkBytes, 1 << 20) })) : raw;
  if (stream !== raw) raw.on('error', (e) => stream.destroy(e));
  try {
    for await (const chunk of stream) yield chunk as Buffer;
  } catch (e) {
    throw new PrepError(path, {}, `read failed: ${errnoMessage(e)}`);
  } finally {
    raw.destroy();
    if (stream !== raw) stream.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------- JSON

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');
/** A \u escape of a surrogate in raw JSON text (the only way a lone surrogate gets into a parsed string). */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Replaces every lone surrogate with U+FFFD. */
export function replaceLoneSurrogates(s: string): string {
  return LONE_SURROGATE.test(s) ? s.replace(LONE_SURROGATE_G, '\uFFFD') : s;
}

/** Finds the first string (key or value) holding a lone surrogate; returns its field path, or null. */
export function findLoneSurrogate(v: unknown, path: string): { path: string; unit: number } | null {
  if (typeof v === 'string') {
    const m = LONE_SURROGATE.exec(v);
    return m ? { path, unit: v.charCodeAt(m.index) } : null;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const r = findLoneSurrogate(v[i], `${path}[${i}]`);
      if (r) return r;
    }
    return null;
  }
  if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const kp = path ? `${path}.${k}` : k;
      if (LONE_SURROGATE.test(k)) return { path: kp, unit: k.charCodeAt(LONE_SURROGATE.exec(k)!.index) };
      const r = findLoneSurrogate(x, kp);
      if (r) return r;
    }
  }
  return null;
}

function deepReplaceSurrogates(v: unknown): unknown {
  if (typeof v === 'string') return replaceLoneSurrogates(v);
  if (Array.isArray(v)) return v.map(deepReplaceSurrogates);
  if (v !== null && typeof v === 'object') {
    const out: Row = {};
    for (const [k, x] of Object.entries(v)) out[replaceLoneSurrogates(k)] = deepReplaceSurrogates(x);
    return out;
  }
  return v;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Whether v is text the cleaning tools can work on: a string, a list of messages, or one message object. */
export function isTextLike(v: unknown): boolean {
  if (typeof v === 'string') return true;
  if (Array.isArray(v)) return v.every((m) => m !== null && typeof m === 'object' && !Array.isArray(m));
  return v !== null && typeof v === 'object';
}

function checkExpectations(file: string, row: Row, expect: readonly FieldExpectation[] | undefined, where: { line?: number; row?: number }): PrepError | null {
  if (!expect) return null;
  for (const { field, type } of expect) {
    const v = row[field];
    if (v === undefined) return new PrepError(file, { ...where, field }, `missing field (the row has: ${Object.keys(row).join(', ') || 'no fields'})`);
    const ok = type === 'any' || (type === 'text' ? isTextLike(v) : typeof v === type);
    if (!ok) return new PrepError(file, { ...where, field }, `expected ${type === 'text' ? 'a string or a list of messages' : `a ${type}`}, got ${typeName(v)}`);
  }
  return null;
}

/** Parses one JSONL line (bytes without the newline). Returns null for blank lines; throws PrepError. */
function parseJsonlLine(file: string, bytes: Uint8Array, line: number, noNewline: boolean, decoder: TextDecoder, o: ReadOptions): Row | null {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 13) end--; // CRLF
  let text: string;
  try {
    text = decoder.decode(bytes.subarray(0, end));
  } catch {
    const at = firstInvalidUtf8(bytes, 0, end);
    const b = at >= 0 ? bytes[at] : -1;
    throw new PrepError(file, { line }, `invalid UTF-8${at >= 0 ? `: byte 0x${b.toString(16).padStart(2, '0')} at byte ${at + 1} of the line` : ''} (the file must be UTF-8)`);
  }
  if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1); // byte-order mark
  if (text.trim() === '') return null;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const why = (e as Error).message;
    if (noNewline) throw new PrepError(file, { line }, `truncated last line: no newline at the end of the file and the JSON is incomplete (${why})`);
    throw new PrepError(file, { line }, `invalid JSON: ${why}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new PrepError(file, { line }, `expected a JSON object, got ${typeName(v)}`);
  if (text.includes('\\u') && SURROGATE_ESCAPE.test(text)) {
    const lone = findLoneSurrogate(v, '');
    if (lone) {
      if (o.loneSurrogates === 'replace') v = deepReplaceSurrogates(v);
      else throw new PrepError(file, { line, field: lone.path }, `lone surrogate \\u${lone.unit.toString(16)} (not valid Unicode; pass --lone-surrogates replace to turn it into U+FFFD)`);
    }
  }
  return v as Row;
}

async function* readJsonl(file: string, o: ReadOptions, reader: RowReader): AsyncGenerator<SourceRow> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let pending: Buffer[] = [];
  let line = 0;
  const handle = (bytes: Uint8Array, noNewline: boolean): SourceRow | null => {
    line++;
    try {
      const row = parseJsonlLine(file, bytes, line, noNewline, decoder, o);
      if (row === null) return null;
      const bad = checkExpectations(file, row, o.expect, { line });
      if (bad) throw bad;
      return { row, line };
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      reader.invalid(e);
      return null;
    }
  };
  for await (const chunk of byteChunks(file, o.chunkBytes ?? 1 << 20)) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      let bytes: Uint8Array = chunk.subarray(start, nl);
      if (pending.length) {
        pending.push(chunk.subarray(start, nl));
        bytes = Buffer.concat(pending);
        pending = [];
      }
      const r = handle(bytes, false);
      if (r) yield r;
      start = nl + 1;
    }
    if (start < chunk.length) pending.push(chunk.subarray(start));
  }
  if (pending.length) {
    const r = handle(Buffer.concat(pending), true);
    if (r) yield r;
  }
}

/** A whole-file JSON array of objects (not streamed: the file is parsed at once; use JSONL for big data). */
async function* readJsonArray(file: string, o: ReadOptions, reader: RowReader): AsyncGenerator<SourceRow> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(file);
  } catch (e) {
    throw new PrepError(file, {}, errnoMessage(e));
  }
  if (file.toLowerCase().endsWith('.gz')) bytes = zlib.gunzipSync(bytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 10) line++;
    throw new PrepError(file, { line }, `invalid UTF-8: byte 0x${bytes[at].toString(16).padStart(2, '0')} (the file must be UTF-8)`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (e) {
    throw new PrepError(file, {}, `invalid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(v)) throw new PrepError(file, {}, `expected a JSON array of objects (or use .jsonl), got ${typeName(v)}`);
  for (let i = 0; i < v.length; i++) {
    let row = v[i] as unknown;
    try {
      if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new PrepError(file, { row: i + 1 }, `expected a JSON object, got ${typeName(row)}`);
      const lone = findLoneSurrogate(row, '');
      if (lone) {
        if (o.loneSurrogates === 'replace') row = deepReplaceSurrogates(row);
        else throw new PrepError(file, { row: i + 1, field: lone.path }, `lone surrogate \\u${lone.unit.toString(16)} (not valid Unicode; pass --lone-surrogates replace to turn it into U+FFFD)`);
      }
      const bad = checkExpectations(file, row as Row, o.expect, { row: i + 1 });
      if (bad) throw bad;
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      reader.invalid(e);
      continue;
    }
    yield { row: row as Row, line: i + 1 };
  }
}

// ----------------------------------------------------------------------------------------------------- CSV

/**
 * RFC 4180 record splitter, fed text in pieces. Quoted fields may hold the delimiter, CR/LF and doubled quotes;
 * lines end in LF or CRLF; a blank line between records is skipped. Tracks physical lines so every record
 * knows the line it starts on.
 */
export class CsvParser {
  private field = '';
  private fields: string[] = [];
  private inQuotes = false;
  /** Just saw the closing quote of a quoted field. */
  private afterQuote = false;
  /** The current field started with a quote. */
  private quoted = false;
  private fieldStarted = false;
  private line = 1;
  private recordLine = 1;
  private pendingCR = false;
  /** A problem in the current record (reported when the record ends, so parsing can resynchronise). */
  private problem: string | null = null;

  constructor(private readonly delimiter = ',') {
    if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') throw new PrepConfigError(`CSV delimiter must be one character other than a quote or newline, got ${JSON.stringify(delimiter)}`);
  }

  /** Consumes text; calls onRecord for each complete record. */
  push(text: string, onRecord: (fields: string[], line: number, problem: string | null, endLine: number) => void): void {
    const d = this.delimiter;
    const n = text.length;
    let i = 0;
    while (i < n) {
      if (this.pendingCR) {
        this.pendingCR = false;
        if (text.charCodeAt(i) === 10) {
          i++; // the LF of a CRLF already ended the record
          continue;
        }
      }
      if (this.inQuotes) {
        // Everything up to the next quote belongs to the field.
        const q = text.indexOf('"', i);
        const end = q < 0 ? n : q;
        this.countLines(text, i, end);
        this.field += text.slice(i, end);
        if (q < 0) break;
        if (q + 1 === n) {
          // Cannot tell "" from " at a piece boundary: decide on the next piece.
          this.inQuotes = false;
          this.afterQuote = true;
          this.maybeEscapedQuote = true;
          i = n;
        } else if (text.charCodeAt(q + 1) === 34) {
          this.field += '"';
          this.prevCR = false;
          i = q + 2;
        } else {
          this.inQuotes = false;
          this.afterQuote = true;
          i = q + 1;
        }
        continue;
      }
      if (this.maybeEscapedQuote) {
        this.maybeEscapedQuote = false;
        if (text.charCodeAt(i) === 34) {
          this.field += '"';
          this.inQuotes = true;
          this.afterQuote = false;
          this.prevCR = false;
          i++;
          continue;
        }
      }
      const c = text[i];
      if (c === d) {
        this.endField();
        i++;
      } else if (c === '\n' || c === '\r') {
        this.endField();
        const fields = this.fields;
        const blank = fields.length === 1 && fields[0] === '' && !this.quoted;
        this.fields = [];
        const endLine = this.line;
        this.line++;
        if (c === '\r') this.pendingCR = true;
        if (!blank) onRecord(fields, this.recordLine, this.problem, endLine);
        this.problem = null;
        this.quoted = false;
        this.recordLine = this.line;
        i++;
      } else if (c === '"') {
        if (!this.fieldStarted) {
          this.inQuotes = true;
          this.quoted = true;
          this.fieldStarted = true;
          this.prevCR = false;
        } else {
          if (this.problem === null) this.problem = this.afterQuote ? 'unexpected character \'"\' after a closing quote (a quote inside a quoted field must be doubled)' : 'a quote inside an unquoted field (quote the whole field and double the inner quote)';
          this.field += c;
        }
        i++;
      } else {
        // A run of ordinary characters.
        let j = i + 1;
        while (j < n) {
          const cj = text[j];
          if (cj === d || cj === '\n' || cj === '\r' || cj === '"') break;
          j++;
        }
        if (this.afterQuote && this.problem === null) this.problem = `unexpected character ${JSON.stringify(c)} after a closing quote (a quote inside a quoted field must be doubled)`;
        this.field += text.slice(i, j);
        this.fieldStarted = true;
        i = j;
      }
    }
  }

  /** Counts physical lines in text[start, end) inside a quoted field: CR, LF and CRLF each end one. */
  private countLines(text: string, start: number, end: number): void {
    for (let k = start; k < end; k++) {
      const c = text.charCodeAt(k);
      if (c === 13) {
        this.line++;
        this.prevCR = true;
      } else {
        if (c === 10 && !this.prevCR) this.line++;
        this.prevCR = false;
      }
    }
  }

  private maybeEscapedQuote = false;
  /** The previous character inside quotes was a CR. */
  private prevCR = false;

  private endField(): void {
    this.fields.push(this.field);
    this.field = '';
    this.afterQuote = false;
    this.fieldStarted = false;
    this.maybeEscapedQuote = false;
  }

  /** End of input: flushes the last record (a file need not end with a newline). */
  end(onRecord: (fields: string[], line: number, problem: string | null, endLine: number) => void): void {
    if (this.inQuotes) {
      this.fields.push(this.field);
      onRecord(this.fields, this.recordLine, 'unterminated quoted field (the closing quote is missing before the end of the file)', this.line);
      this.fields = [];
      this.inQuotes = false;
      return;
    }
    if (this.fieldStarted || this.fields.length > 0 || this.afterQuote || this.maybeEscapedQuote) {
      this.endField();
      const fields = this.fields;
      this.fields = [];
      if (!(fields.length === 1 && fields[0] === '' && !this.quoted)) onRecord(fields, this.recordLine, this.problem, this.line);
    }
  }
}

function countNewlines(bytes: Uint8Array, start: number, end: number): number {
  let n = 0;
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = buf.indexOf(10, start); i >= 0 && i < end; i = buf.indexOf(10, i + 1)) n++;
  return n;
}

async function* readCsv(file: string, o: ReadOptions, delimiter: string, reader: RowReader): AsyncGenerator<SourceRow> {
  const parser = new CsvParser(delimiter);
  const fatal = new TextDecoder('utf-8', { fatal: true });
  const lenient = new TextDecoder('utf-8');
  let header: string[] | null = null;
  let recordNo = 0;
  /** Physical lines that hold invalid UTF-8 (a record touching one is invalid). Few in practice. */
  const badLines = new Map<number, string>();
  let linesBefore = 1; // physical line number at the start of the current chunk
  let carry: Buffer | null = null;
  let firstChunk = true;
  const out: SourceRow[] = [];
  const onRecord = (fields: string[], line: number, problem: string | null, endLine: number): void => {
    recordNo++;
    let utf8Problem: string | null = null;
    for (const [l, msg] of badLines) if (l >= line && l <= endLine) utf8Problem = `${msg} on line ${l}`;
    if (header === null) {
      if (problem || utf8Problem) throw new PrepError(file, { row: 1, line }, `header: ${problem ?? utf8Problem}`);
      const seen = new Set<string>();
      fields.forEach((name, i) => {
        if (name.trim() === '') throw new PrepError(file, { row: 1, line }, `header: column ${i + 1} has no name`);
        if (seen.has(name)) throw new PrepError(file, { row: 1, line, field: name }, 'header: duplicate column name');
        seen.add(name);
      });
      header = fields;
      return;
    }
    try {
      if (utf8Problem) throw new PrepError(file, { row: recordNo, line }, utf8Problem);
      if (problem) throw new PrepError(file, { row: recordNo, line }, problem);
      if (fields.length !== header.length) {
        const extra = fields.length > header.length ? '' : `; missing ${header.slice(fields.length).map((h) => `'${h}'`).join(', ')}`;
        throw new PrepError(file, { row: recordNo, line }, `ragged row: ${fields.length} field${fields.length === 1 ? '' : 's'}, the header has ${header.length}${extra}`);
      }
      const row: Row = {};
      for (let i = 0; i < header.length; i++) row[header[i]] = fields[i];
      const bad = checkExpectations(file, row, o.expect, { row: recordNo, line });
      if (bad) throw bad;
      out.push({ row, line });
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      reader.invalid(e);
    }
  };
  const decodeChunk = (bytes: Uint8Array): string => {
    try {
      return fatal.decode(bytes);
    } catch {
      // Find every invalid sequence and the line it is on; decode with U+FFFD so parsing can go on.
      let pos = 0, line = linesBefore, counted = 0;
      while (pos < bytes.length) {
        const at = firstInvalidUtf8(bytes, pos, bytes.length);
        if (at < 0) break;
        line += countNewlines(bytes, counted, at);
        counted = at;
        if (!badLines.has(line)) badLines.set(line, `invalid UTF-8 (byte 0x${bytes[at].toString(16).padStart(2, '0')})`);
        pos = at + 1;
      }
      return lenient.decode(bytes);
    }
  };
  for await (const chunk of byteChunks(file, o.chunkBytes ?? 1 << 20)) {
    let bytes: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const tail = incompleteTail(bytes);
    carry = tail ? Buffer.from(bytes.subarray(bytes.length - tail)) : null;
    bytes = bytes.subarray(0, bytes.length - tail);
    let text = decodeChunk(bytes);
    linesBefore += countNewlines(bytes, 0, bytes.length);
    if (firstChunk && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    firstChunk = false;
    parser.push(text, onRecord);
    for (const r of out) yield r;
    out.length = 0;
  }
  if (carry) parser.push(decodeChunk(carry), onRecord);
  parser.end(onRecord);
  for (const r of out) yield r;
  if (header === null) throw new PrepError(file, {}, 'empty CSV file (no header row)');
}

// ------------------------------------------------------------------------------------------------- Parquet

/** The reader-side type of a top-level Parquet column, for schema checks. */
function parquetColumnType(node: SchemaTree): FieldType | 'list' | 'object' {
  const e = node.element;
  if (node.children.length > 0) {
    const isList = e.converted_type === 'LIST' || e.logical_type?.type === 'LIST' || e.repetition_type === 'REPEATED';
    return isList ? 'list' : 'object';
  }
  if (e.repetition_type === 'REPEATED') return 'list';
  switch (e.type) {
    case 'BOOLEAN':
      return 'boolean';
    case 'INT32':
    case 'INT64':
    case 'INT96':
    case 'FLOAT':
    case 'DOUBLE':
      return 'number';
    case 'BYTE_ARRAY':
      return e.converted_type === 'JSON' || e.logical_type?.type === 'JSON' ? 'any' : 'string';
    default:
      return 'any';
  }
}

/** Parquet values to JSON-friendly ones: safe bigints to numbers (others to decimal strings), bytes to base64. */
function toPlain(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toPlain);
  if (v !== null && typeof v === 'object') {
    const out: Row = {};
    for (const [k, x] of Object.entries(v)) out[k] = toPlain(x);
    return out;
  }
  return v;
}

async function* readParquet(file: string, o: ReadOptions, reader: RowReader): AsyncGenerator<SourceRow> {
  let meta: FileMetaData;
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  try {
    const st = await fs.promises.stat(file);
    if (st.isDirectory()) throw new PrepError(file, {}, 'is a directory, not a file');
    buffer = await asyncBufferFromFile(file);
    meta = await parquetMetadataAsync(buffer);
  } catch (e) {
    if (e instanceof PrepError) throw e;
    const code = e instanceof Error && 'code' in e ? String(e.code) : '';
    throw new PrepError(file, {}, code ? errnoMessage(e) : `not a readable Parquet file: ${(e as Error).message}`);
  }
  const schema = parquetSchema(meta);
  const columns = new Map(schema.children.map((c) => [c.element.name, c] as const));
  for (const { field, type } of o.expect ?? []) {
    const col = columns.get(field);
    if (!col) throw new PrepError(file, { field }, `unexpected schema: no column '${field}' (columns: ${[...columns.keys()].join(', ') || 'none'})`);
    const have = parquetColumnType(col);
    const ok = type === 'any' || have === 'any' || have === type || (type === 'text' && (have === 'string' || have === 'list' || have === 'object'));
    if (!ok) throw new PrepError(file, { field }, `unexpected schema: column '${field}' holds ${have} values (${col.element.type ?? 'group'}${col.element.converted_type ? `/${col.element.converted_type}` : ''}), expected ${type === 'text' ? 'a string or a list of messages' : type}`);
  }
  let rowStart = 0;
  for (const group of meta.row_groups) {
    const n = Number(group.num_rows);
    let rows: Row[];
    try {
      rows = (await parquetReadObjects({ file: buffer, metadata: meta, rowStart, rowEnd: rowStart + n })) as Row[];
    } catch (e) {
      throw new PrepError(file, { row: rowStart + 1 }, `cannot decode the row group of rows ${rowStart + 1}..${rowStart + n}: ${(e as Error).message}`);
    }
    for (let i = 0; i < rows.length; i++) {
      const row = toPlain(rows[i]) as Row;
      const where = { row: rowStart + i + 1 };
      const bad = checkExpectations(file, row, o.expect, where);
      if (bad) {
        reader.invalid(bad);
        continue;
      }
      yield { row, line: rowStart + i + 1 };
    }
    rowStart += n;
  }
}

// ------------------------------------------------------------------------------------------------- writers

export interface RowWriter {
  readonly path: string;
  readonly format: DataFormat;
  /** Rows written so far. */
  readonly rows: number;
  write(row: Row): void | Promise<void>;
  /** Finishes the file and renames it into place. */
  close(): Promise<void>;
  /** Removes the temporary file; the destination is left as it was. Never throws. */
  abort(): void;
}

export interface WriteOptions {
  format?: DataFormat;
  /** CSV separator (default ',' / tab for .tsv). */
  delimiter?: string;
  /** Parquet rows per row group (default 10000): also the number of rows buffered in memory. */
  rowGroupSize?: number;
}

export function openWriter(path: string, options: WriteOptions = {}): RowWriter {
  const format = formatOf(path, options.format);
  if (path.toLowerCase().endsWith('.gz')) throw new PrepConfigError(`${path}: writing gzip output is not supported; write .jsonl and compress it afterwards`);
  const dir = nodePath.dirname(path);
  if (!fs.existsSync(dir)) throw new PrepError(path, {}, `output directory ${dir} does not exist`);
  switch (format) {
    case 'jsonl':
      return new JsonlWriter(path);
    case 'json':
      return new JsonArrayWriter(path);
    case 'csv':
    case 'tsv':
      return new CsvWriter(path, format, options.delimiter ?? (format === 'tsv' ? '\t' : ','));
    case 'parquet':
      return new ParquetRowWriter(path, options.rowGroupSize ?? 10000);
  }
}

/** Text appended to an AtomicFile through a 1 MiB buffer. */
class BufferedText {
  private parts: string[] = [];
  private pendingChars = 0;
  constructor(readonly file: AtomicFile) {}
  append(s: string): void {
    this.parts.push(s);
    this.pendingChars += s.length;
    if (this.pendingChars >= 1 << 19) this.flush();
  }
  flush(): void {
    if (this.parts.length === 0) return;
    this.file.write(Buffer.from(this.parts.join(''), 'utf8'));
    this.parts = [];
    this.pendingChars = 0;
  }
}

abstract class TextWriter implements RowWriter {
  rows = 0;
  protected readonly out: BufferedText;
  private readonly file: AtomicFile;
  private closed = false;
  constructor(
    readonly path: string,
    readonly format: DataFormat,
  ) {
    this.file = new AtomicFile(format, path);
    this.out = new BufferedText(this.file);
  }
  abstract write(row: Row): void;
  protected footer(): string {
    return '';
  }
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.out.append(this.footer());
      this.out.flush();
      this.file.publish();
      this.closed = true;
    } catch (e) {
      this.abort();
      throw e;
    }
  }
  abort(): void {
    this.closed = true;
    this.file.abort();
  }
}

/** JSON.stringify that names the field holding a value JSON cannot represent (BigInt, a cycle). */
function stringifyRow(path: string, row: Row, n: number): string {
  try {
    return JSON.stringify(row);
  } catch (e) {
    throw new PrepError(path, { row: n }, `cannot write the row as JSON: ${(e as Error).message}`);
  }
}

class JsonlWriter extends TextWriter {
  constructor(path: string) {
    super(path, 'jsonl');
  }
  write(row: Row): void {
    this.out.append(stringifyRow(this.path, row, this.rows + 1) + '\n');
    this.rows++;
  }
}

class JsonArrayWriter extends TextWriter {
  constructor(path: string) {
    super(path, 'json');
  }
  write(row: Row): void {
    this.out.append((this.rows === 0 ? '[\n' : ',\n') + stringifyRow(this.path, row, this.rows + 1));
    this.rows++;
  }
  protected override footer(): string {
    return this.rows === 0 ? '[]\n' : '\n]\n';
  }
}

class CsvWriter extends TextWriter {
  private header: string[] | null = null;
  constructor(
    path: string,
    format: DataFormat,
    private readonly delimiter: string,
  ) {
    super(path, format);
  }
  private quote(s: string): string {
    return s.includes(this.delimiter) || s.includes('"') || s.includes('\n') || s.includes('\r') || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
  }
  private cell(v: unknown): string {
    if (v === undefined || v === null) return '';
    if (typeof v === 'string') return this.quote(v);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return this.quote(JSON.stringify(v));
  }
  write(row: Row): void {
    if (this.header === null) {
      this.header = Object.keys(row);
      this.out.append(this.header.map((h) => this.quote(h)).join(this.delimiter) + '\r\n');
    }
    for (const k of Object.keys(row)) {
      if (!this.header.includes(k)) throw new PrepError(this.path, { row: this.rows + 1, field: k }, `field not in the CSV header written from the first row (${this.header.join(', ')})`);
    }
    this.out.append(this.header.map((h) => this.cell(row[h])).join(this.delimiter) + '\r\n');
    this.rows++;
  }
}

type ParquetColumnKind = 'STRING' | 'DOUBLE' | 'BOOLEAN' | 'JSON';

/** hyparquet-writer's ByteWriter, flushed to an AtomicFile whenever it holds more than 1 MiB. */
class AtomicByteWriter extends ByteWriter {
  constructor(private readonly file: AtomicFile) {
    super(1 << 16);
  }
  private flushOut(): void {
    if (this.index > 0) this.file.write(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
  }
  override ensure(size: number): void {
    if (this.index > 1 << 20) this.flushOut();
    super.ensure(size);
  }
  override finish(): void {
    this.flushOut();
  }
}

/**
 * Parquet output. Rows are buffered up to rowGroupSize and written as one row group. The columns and their
 * types are fixed by the first row group: strings -> STRING, numbers -> DOUBLE, booleans -> BOOLEAN, anything
 * else (objects, arrays, or a mix of types in one column) -> JSON text (read back as parsed values). A later row
 * with a field outside that schema, or a value of another type, is an error naming the row and field.
 */
class ParquetRowWriter implements RowWriter {
  readonly format: DataFormat = 'parquet';
  rows = 0;
  private readonly file: AtomicFile;
  private readonly bytes: AtomicByteWriter;
  private writer: ParquetWriter | null = null;
  private columns: { name: string; kind: ParquetColumnKind }[] = [];
  private batch: Row[] = [];
  private closed = false;

  constructor(
    readonly path: string,
    private readonly rowGroupSize: number,
  ) {
    this.file = new AtomicFile('parquet', path);
    this.bytes = new AtomicByteWriter(this.file);
  }

  write(row: Row): void {
    this.batch.push(row);
    this.rows++;
    if (this.batch.length >= this.rowGroupSize) this.flushBatch();
  }

  private static kindOf(values: unknown[]): ParquetColumnKind {
    let kind: ParquetColumnKind | null = null;
    for (const v of values) {
      if (v === null || v === undefined) continue;
      const k: ParquetColumnKind = typeof v === 'string' ? 'STRING' : typeof v === 'number' ? 'DOUBLE' : typeof v === 'boolean' ? 'BOOLEAN' : 'JSON';
      if (kind === null) kind = k;
      else if (kind !== k) return 'JSON';
    }
    return kind ?? 'STRING';
  }

  private flushBatch(): void {
    const rows = this.batch;
    this.batch = [];
    const firstRow = this.rows - rows.length + 1;
    if (this.writer === null) {
      const names: string[] = [];
      const seen = new Set<string>();
      for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) (seen.add(k), names.push(k));
      this.columns = names.map((name) => ({ name, kind: ParquetRowWriter.kindOf(rows.map((r) => r[name])) }));
      const schema: SchemaElement[] = [{ name: 'root', num_children: this.columns.length }];
      for (const c of this.columns) {
        if (c.kind === 'STRING') schema.push({ name: c.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
        else if (c.kind === 'JSON') schema.push({ name: c.name, type: 'BYTE_ARRAY', converted_type: 'JSON', repetition_type: 'OPTIONAL' });
        else schema.push({ name: c.name, type: c.kind, repetition_type: 'OPTIONAL' });
      }
      this.writer = new ParquetWriter({ writer: this.bytes, schema, createdBy: 'alignkit data' });
    }
    if (rows.length === 0) return;
    const known = new Set(this.columns.map((c) => c.name));
    rows.forEach((r, i) => {
      for (const k of Object.keys(r)) if (!known.has(k)) throw new PrepError(this.path, { row: firstRow + i, field: k }, `field not in the Parquet schema fixed by the first row group (${[...known].join(', ')})`);
    });
    const columnData: ColumnSource[] = this.columns.map((c) => {
      const data = rows.map((r, i) => {
        const v = r[c.name];
        if (v === undefined || v === null) return null;
        if (c.kind === 'JSON') return v;
        const ok = c.kind === 'STRING' ? typeof v === 'string' : c.kind === 'DOUBLE' ? typeof v === 'number' : typeof v === 'boolean';
        if (!ok) throw new PrepError(this.path, { row: firstRow + i, field: c.name }, `value of type ${typeName(v)} in a ${c.kind} column (the type was fixed by the first row group)`);
        return v;
      });
      return { name: c.name, data };
    });
    void this.writer.write({ columnData, rowGroupSize: rows.length });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    try {
      this.flushBatch();
      await this.writer!.finish();
      this.file.publish();
      this.closed = true;
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  abort(): void {
    this.closed = true;
    this.file.abort();
  }
}

/**
 * Runs fn with a writer for `path`; closes it (renaming the file into place) when fn returns, removes the
 * temporary file when fn throws. The destination never holds a partial file.
 */
export async function withWriter<T>(path: string, options: WriteOptions, fn: (w: RowWriter) => Promise<T>): Promise<T> {
  const w = openWriter(path, options);
  try {
    const r = await fn(w);
    await w.close();
    return r;
  } catch (e) {
    w.abort();
    throw e;
  }
}
