// Output of evaluation commands: Markdown tables for people and a JSON + Markdown report pair written
// atomically (temporary file + rename, see src/io/file.ts).
import { writeAtomically } from '../io/file.ts';

export type Cell = string | number | null | undefined;

/** Formats a number for a table: fixed decimals, '-' for missing values. */
export function fmt(v: Cell, digits = 4): string {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return 'NaN';
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** A GitHub-flavoured Markdown table. */
export function markdownTable(headers: readonly string[], rows: readonly (readonly Cell[])[], digits = 4): string {
  const head = `| ${headers.map(escapeCell).join(' | ')} |`;
  const sep = `| ${headers.map(() => '---').join(' | ')} |`;
  const body = rows.map((r) => `| ${r.map((c) => escapeCell(fmt(c, digits))).join(' | ')} |`);
  return [head, sep, ...body].join('\n') + '\n';
}

const encoder = new TextEncoder();

/** Writes a text file atomically. */
export function writeTextAtomically(file: string, text: string): void {
  writeAtomically('report', file, (f) => f.write(encoder.encode(text)));
}

/**
 * Writes `<base>.json` and `<base>.md` for an --output path (a .json or .md extension on the path is
 * replaced). Each file is written atomically; the JSON is written last, so its presence means both are done.
 */
export function writeReport(output: string, json: unknown, markdown: string): { json: string; markdown: string } {
  const base = output.replace(/\.(json|md)$/i, '');
  const paths = { json: `${base}.json`, markdown: `${base}.md` };
  writeTextAtomically(paths.markdown, markdown);
  writeTextAtomically(paths.json, JSON.stringify(json, null, 2) + '\n');
  return paths;
}
