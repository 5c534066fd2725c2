// Reading evaluation inputs: one-segment-per-line text files, JSONL files with a named field, and rating
// tables (CSV / TSV / JSONL). Every problem is reported as one line naming the file, the 1-based line and,
// where there is one, the field: "refs.jsonl:7: field 'answer' is missing".
import { readFileSync } from 'node:fs';
import { AlignkitError } from '../tensor/errors.ts';

export class EvalInputError extends AlignkitError {
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly problem: string,
  ) {
    super(`${file}${line === null ? '' : `:${line}`}: ${problem.replace(/[\r\n]+/g, ' ')}`);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function readBytes(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new EvalInputError(file, null, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a file' : code === 'EACCES' ? 'permission denied' : (e as Error).message);
  }
}

/**
 * The lines of a UTF-8 text file (a final newline does not start another line; a CR before LF is dropped).
 * Invalid UTF-8 is an error naming the first bad line.
 */
export function readLines(file: string): string[] {
  const bytes = readBytes(file);
  const lines: string[] = [];
  let start = 0;
  // Skip a UTF-8 byte order mark.
  if (bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  let lineNo = 0;
  while (start <= bytes.length) {
    let end = bytes.indexOf(10, start);
    const last = end < 0;
    if (last) end = bytes.length;
    if (last && start === bytes.length) break; // trailing newline (or empty file)
    lineNo++;
    let stop = end;
    if (stop > start && bytes[stop - 1] === 13) stop--;
    try {
      lines.push(decoder.decode(bytes.subarray(start, stop)));
    } catch {
      throw new EvalInputError(file, lineNo, 'invalid UTF-8');
    }
    start = end + 1;
  }
  return lines;
}

/** Describes a JSON value's type for messages. */
function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Parsed JSONL objects with their line numbers; blank lines are skipped. */
export function readJsonl(file: string): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  readLines(file).forEach((text, i) => {
    if (text.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new EvalInputError(file, i + 1, `invalid JSON (${(e as Error).message})`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new EvalInputError(file, i + 1, `expected a JSON object, got ${typeName(v)}`);
    out.push({ line: i + 1, value: v as Record<string, unknown> });
  });
  return out;
}

export function isJsonl(file: string): boolean {
  return /\.jsonl$/i.test(file);
}

/** A field of a JSONL row that must be a string. */
export function stringField(file: string, line: number, row: Record<string, unknown>, field: string): string {
  if (!(field in row)) throw new EvalInputError(file, line, `field '${field}' is missing`);
  const v = row[field];
  if (typeof v !== 'string') throw new EvalInputError(file, line, `field '${field}' must be a string, got ${typeName(v)}`);
  return v;
}

/** A field that is a string or a non-empty array of strings (several references / gold answers). */
export function stringListField(file: string, line: number, row: Record<string, unknown>, field: string): string[] {
  if (!(field in row)) throw new EvalInputError(file, line, `field '${field}' is missing`);
  const v = row[field];
  // Numbers and booleans (class labels) are taken as their text.
  const scalar = (x: unknown): x is string | number | boolean => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';
  if (scalar(v)) return [String(v)];
  if (Array.isArray(v) && v.length > 0 && v.every(scalar)) return v.map(String);
  throw new EvalInputError(file, line, `field '${field}' must be a string or a non-empty array of strings, got ${typeName(v)}`);
}

/** Segments of a text file (one per line) or of a JSONL file's field (string or array of strings). */
export interface Segments {
  file: string;
  /** Per segment, one or more strings. */
  items: string[][];
  /** 1-based source line of each segment. */
  lines: number[];
}

export function readSegments(file: string, field: string | undefined): Segments {
  if (isJsonl(file)) {
    if (!field) throw new EvalInputError(file, null, 'a JSONL file needs a field name (--field / --prediction-field / --reference-field)');
    const rows = readJsonl(file);
    return { file, items: rows.map((r) => stringListField(file, r.line, r.value, field)), lines: rows.map((r) => r.line) };
  }
  const lines = readLines(file);
  return { file, items: lines.map((l) => [l]), lines: lines.map((_, i) => i + 1) };
}

/** Checks that two inputs have the same number of segments. */
export function checkSameLength(a: Segments, b: Segments): void {
  if (a.items.length !== b.items.length) {
    const short = a.items.length < b.items.length ? a : b;
    const long = short === a ? b : a;
    const at = long.lines[short.items.length];
    throw new EvalInputError(long.file, at ?? null, `has ${long.items.length} segments but ${short.file} has ${short.items.length}`);
  }
}

/** Rejects empty references (a blank line in a reference file is almost always an alignment mistake). */
export function checkNonEmpty(s: Segments, what: string): void {
  s.items.forEach((strings, i) => {
    strings.forEach((x) => {
      if (x.trim() === '') throw new EvalInputError(s.file, s.lines[i], `empty ${what} (pass --allow-empty-references to score it anyway)`);
    });
  });
}

// --- rating tables ----------------------------------------------------------------------------------------

/** Splits one CSV line with RFC 4180 quoting. */
export function splitCsvLine(line: string, sep: string, file: string, lineNo: number): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  let quoted = false;
  while (i < line.length) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i += 2;
        continue;
      }
      if (ch === '"') {
        quoted = false;
        i++;
        continue;
      }
      cur += ch;
      i++;
      continue;
    }
    if (ch === '"' && cur === '') {
      quoted = true;
      i++;
      continue;
    }
    if (ch === sep) {
      out.push(cur);
      cur = '';
      i++;
      continue;
    }
    cur += ch;
    i++;
  }
  if (quoted) throw new EvalInputError(file, lineNo, 'unterminated quoted field');
  out.push(cur);
  return out;
}

export type Rating = string | number | null;

/** Ratings per item (one entry per rater, null when missing) and the rater names. */
export interface RatingTable {
  raters: string[];
  items: Rating[][];
}

function ratingValue(cell: string): Rating {
  const t = cell.trim();
  if (t === '' || t.toLowerCase() === 'na' || t.toLowerCase() === 'nan') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

/**
 * Ratings from CSV/TSV (a header naming the raters, then one row per item; an empty cell is a missing rating)
 * or JSONL (one object per item whose `field` is an array of ratings, null for missing).
 */
export function readRatings(file: string, field = 'ratings'): RatingTable {
  if (isJsonl(file)) {
    const rows = readJsonl(file);
    if (rows.length === 0) throw new EvalInputError(file, null, 'no ratings');
    let width = -1;
    const items = rows.map(({ line, value }) => {
      if (!(field in value)) throw new EvalInputError(file, line, `field '${field}' is missing`);
      const v = value[field];
      if (!Array.isArray(v) || v.some((x) => x !== null && typeof x !== 'string' && typeof x !== 'number'))
        throw new EvalInputError(file, line, `field '${field}' must be an array of strings, numbers or nulls, got ${typeName(v)}`);
      if (width === -1) width = v.length;
      else if (v.length !== width) throw new EvalInputError(file, line, `field '${field}' has ${v.length} ratings, the first row has ${width}`);
      return v as Rating[];
    });
    return { raters: Array.from({ length: width }, (_, i) => `rater${i + 1}`), items };
  }
  const sep = /\.tsv$/i.test(file) ? '\t' : ',';
  const lines = readLines(file);
  const nonBlank = lines.map((l, i) => [l, i + 1] as const).filter(([l]) => l.trim() !== '');
  if (nonBlank.length < 2) throw new EvalInputError(file, null, 'expected a header row naming the raters and at least one item row');
  const [headerLine, headerNo] = nonBlank[0];
  const raters = splitCsvLine(headerLine, sep, file, headerNo).map((s) => s.trim());
  const items = nonBlank.slice(1).map(([l, no]) => {
    const cells = splitCsvLine(l, sep, file, no);
    if (cells.length !== raters.length) throw new EvalInputError(file, no, `has ${cells.length} columns, the header has ${raters.length}`);
    return cells.map(ratingValue);
  });
  return { raters, items };
}
