// Streaming corpus reader for tokenizer training and statistics. Files are read in 1 MiB chunks and split into
// lines at the byte level, so memory does not grow with the file and every problem is reported with its file
// and 1-based line number (and, for JSONL, the field):
//   corpus.jsonl:17: field 'text': expected a string, got number
import fs from 'node:fs';
import nodePath from 'node:path';
import { AlignkitError } from '../../tensor/errors.ts';

/** A malformed corpus file; the message names the file, the 1-based line and (for JSONL) the field. */
export class CorpusError extends AlignkitError {
  constructor(
    readonly file: string,
    /** 1-based line number, or 0 when the problem is with the whole file. */
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}${line > 0 ? `:${line}` : ''}: ${problem.replace(/[\r\n]+/g, ' ')}`);
  }
}

export type CorpusFormat = 'auto' | 'text' | 'jsonl';

export interface CorpusOptions {
  /**
   * 'text': every line is one text. 'jsonl': every non-blank line is a JSON object whose `fields` hold the texts.
   * 'auto' (default): 'jsonl' for files ending in .jsonl / .ndjson / .json, 'text' otherwise.
   */
  format?: CorpusFormat;
  /** JSONL fields to read (default ['text']). Every listed field must be present in every record. */
  fields?: readonly string[];
  /** Text files: keep each line's '\n' / '\r\n' as part of the text (default true). The Hugging Face library
   *  trains on `lines_with_ending`, so a byte-level vocabulary learns 'Ċ' tokens; statistics pass false. */
  keepLineEndings?: boolean;
  /** Count and skip malformed records instead of throwing (default false). Invalid UTF-8 still throws. */
  skipInvalid?: boolean;
}

export interface CorpusSummary {
  files: number;
  /** Lines read, blank ones included. */
  lines: number;
  /** Texts handed to the callback. */
  texts: number;
  /** UTF-8 bytes of those texts. */
  bytes: number;
  /** Records skipped with `skipInvalid`. */
  skipped: number;
  /** The first few skip reasons (file:line: problem), for a warning. */
  skippedExamples: string[];
}

const CHUNK = 1 << 20;

/** The format a file is read in. */
export function corpusFormatOf(file: string, format: CorpusFormat = 'auto'): 'text' | 'jsonl' {
  if (format !== 'auto') return format;
  return /\.(jsonl|ndjson|json)$/i.test(file) ? 'jsonl' : 'text';
}

/**
 * Calls `fn(lineBytes, lineNumber, endingLength)` for every line of `file`, in order. `lineBytes` excludes the
 * '\n' (endingLength is 1, or 2 for '\r\n', or 0 for a last line without one) and is only valid during the call.
 */
export function forEachLineBytes(file: string, fn: (line: Uint8Array, lineNumber: number, endingLength: number) => void): number {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CorpusError(file, 0, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot open (${code ?? String(e)})`);
  }
  let lineNumber = 0;
  try {
    if (fs.fstatSync(fd).isDirectory()) throw new CorpusError(file, 0, 'is a directory, not a file');
    const buf = Buffer.allocUnsafe(CHUNK);
    let carry: Buffer = Buffer.alloc(0);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      // Bytes of an unfinished line from the previous chunk come first.
      const data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
      let start = 0;
      for (let nl = data.indexOf(0x0a, start); nl >= 0; nl = data.indexOf(0x0a, start)) {
        const cr = nl > start && data[nl - 1] === 0x0d ? 1 : 0;
        fn(data.subarray(start, nl - cr), ++lineNumber, 1 + cr);
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
    if (carry.length > 0) fn(carry, ++lineNumber, 0);
  } finally {
    fs.closeSync(fd);
  }
  return lineNumber;
}

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
const LF = '\n';
const CRLF = '\r\n';

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/**
 * Streams the texts of every file: `fn(text, field)` is called once per line (text files; field 'text') or once
 * per listed field of every JSONL record. Throws {@link CorpusError} on missing files, invalid UTF-8, malformed
 * JSON, missing or non-string fields (the last three are counted and skipped with `skipInvalid`).
 */
export function forEachCorpusText(files: readonly string[], options: CorpusOptions, fn: (text: string, field: string) => void): CorpusSummary {
  const fields = options.fields && options.fields.length > 0 ? options.fields : ['text'];
  const keepEndings = options.keepLineEndings ?? true;
  const summary: CorpusSummary = { files: files.length, lines: 0, texts: 0, bytes: 0, skipped: 0, skippedExamples: [] };
  const skip = (file: string, line: number, problem: string): void => {
    if (!options.skipInvalid) throw new CorpusError(file, line, problem);
    summary.skipped++;
    if (summary.skippedExamples.length < 5) summary.skippedExamples.push(`${file}:${line}: ${problem}`);
  };
  for (const file of files) {
    const format = corpusFormatOf(file, options.format);
    const shown = nodePath.normalize(file);
    summary.lines += forEachLineBytes(file, (bytes, lineNumber, ending) => {
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        throw new CorpusError(shown, lineNumber, `invalid UTF-8 at byte ${firstInvalidUtf8(bytes)} of the line`);
      }
      if (lineNumber === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (format === 'text') {
        if (keepEndings && ending > 0) text += ending === 2 ? CRLF : LF;
        if (text.length === 0) return;
        summary.texts++;
        summary.bytes += bytes.length + (keepEndings ? ending : 0);
        fn(text, 'text');
        return;
      }
      if (text.trim().length === 0) return;
      let record: unknown;
      try {
        record = JSON.parse(text);
      } catch (e) {
        skip(shown, lineNumber, `invalid JSON (${(e as Error).message})`);
        return;
      }
      if (typeof record !== 'object' || record === null || Array.isArray(record)) {
        skip(shown, lineNumber, `expected a JSON object, got ${describe(record)}`);
        return;
      }
      const obj = record as Record<string, unknown>;
      for (const field of fields) {
        if (!(field in obj)) return skip(shown, lineNumber, `field '${field}' is missing (keys: ${Object.keys(obj).slice(0, 8).join(', ') || 'none'})`);
        if (typeof obj[field] !== 'string') return skip(shown, lineNumber, `field '${field}': expected a string, got ${describe(obj[field])}`);
      }
      for (const field of fields) {
        const value = obj[field] as string;
        summary.texts++;
        summary.bytes += Buffer.byteLength(value, 'utf8');
        fn(value, field);
      }
    });
  }
  return summary;
}

/** Offset of the first byte that does not start a valid UTF-8 sequence (for error messages). */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n === 0 || i + n > b.length) return i;
    for (let k = 1; k < n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    try {
      decoder.decode(b.subarray(i, i + n));
    } catch {
      return i; // overlong form or surrogate
    }
    i += n;
  }
  return i;
}
