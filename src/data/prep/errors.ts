// Errors raised while reading, cleaning or writing data sets. Every message is one line that names the file,
// the place in it (1-based physical line for JSONL, record number plus starting line for CSV, row for Parquet)
// and, when one is involved, the field:
//   data/train.jsonl line 17, field 'messages[2].content': lone surrogate \ud800 (use --lone-surrogates replace)
import { AlignkitError } from '../../tensor/errors.ts';

/** Where in a file a problem is. `line` is a 1-based physical line; `row` a 1-based record / row number. */
export interface PrepLocation {
  line?: number;
  row?: number;
  field?: string;
}

export class PrepError extends AlignkitError {
  readonly file: string;
  readonly line: number | null;
  readonly row: number | null;
  readonly field: string | null;
  /** The problem, without the location. */
  readonly problem: string;

  constructor(file: string, where: PrepLocation, problem: string) {
    super(`${file}${describeLocation(where)}: ${oneLine(problem)}`);
    this.file = file;
    this.line = where.line ?? null;
    this.row = where.row ?? null;
    this.field = where.field ?? null;
    this.problem = problem;
  }
}

function describeLocation(w: PrepLocation): string {
  const parts: string[] = [];
  if (w.row !== undefined) parts.push(`row ${w.row}`);
  if (w.line !== undefined) parts.push(w.row !== undefined ? `(line ${w.line})` : `line ${w.line}`);
  let s = parts.length ? ` ${parts.join(' ')}` : '';
  if (w.field !== undefined) s += `, field ${quoteName(w.field)}`;
  return s;
}

/** Messages stay on one line even when they quote file content. */
export function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** Quotes a name found in a file (JSON-escaped so control characters and lone surrogates stay visible). */
export function quoteName(name: string): string {
  const s = JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}...` : name);
  return `'${s.slice(1, -1)}'`;
}

/** A bad command-line value or recipe entry (no file involved). */
export class PrepConfigError extends AlignkitError {}
