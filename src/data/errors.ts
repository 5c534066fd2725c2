// Errors about dataset content. Every message is one line that says where the problem is, so a user can open
// the file at that line and fix it:
//   data/train.jsonl:17: field 'messages[2].role': unknown role 'bot' (valid: system, user, assistant, tool)
import { AlignkitError } from '../tensor/errors.ts';

/** Messages stay on one line even when they quote file content. */
function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** A row of a dataset file that cannot be used: malformed, missing or mistyped fields, too long, ... */
export class DataError extends AlignkitError {
  constructor(
    /** The dataset file (as given by the user). */
    readonly file: string,
    /** 1-based: the line of a JSONL file, the element of a top-level JSON array, the row of a Parquet file. */
    readonly line: number,
    /** Path of the offending field inside the row (`messages[2].role`), or null when the row as a whole is bad. */
    readonly field: string | null,
    /** What is wrong, without the location. */
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${field === null ? '' : `field '${field}': `}${oneLine(reason)}`);
  }
}

/** Where a row came from, for error messages. */
export interface RowLocation {
  file: string;
  line: number;
}

/** Quotes a value found in a file for a message: a string JSON-escaped, anything else as JSON; shortened. */
export function quote(value: unknown): string {
  const short = (s: string): string => (s.length > 60 ? `${s.slice(0, 60)}...` : s);
  if (typeof value === 'string') return `'${JSON.stringify(short(value)).slice(1, -1)}'`;
  let s: string;
  try {
    s = JSON.stringify(value) ?? String(value);
  } catch {
    s = String(value);
  }
  return `'${short(s)}'`;
}

/** A JSON-ish description of a value's type for "expected X, got Y" messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'bigint') return 'a number';
  return `a ${typeof value}`;
}
