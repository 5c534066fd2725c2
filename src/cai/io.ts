// Reading prompt files and writing JSONL outputs (atomically: a crash never leaves half a file behind).
import fs from 'node:fs';
import path from 'node:path';
import { openRowSource } from '../data/source.ts';
import { DataError, typeName } from '../data/errors.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { writeAtomically } from '../io/file.ts';

export interface PromptRow {
  prompt: string;
  /** 1-based line of the row in its file. */
  line: number;
  /** The whole row (other fields, e.g. responses). */
  row: Record<string, unknown>;
}

/** Rows of a .jsonl/.json/.parquet file, or the non-empty lines of a .txt file as {prompt}. */
export async function readRows(file: string, what = 'prompts'): Promise<PromptRow[]> {
  if (!fs.existsSync(file)) throw new AlignkitError(`${file}: no such ${what} file`);
  const out: PromptRow[] = [];
  if (/\.(txt|text)$/i.test(file)) {
    fs.readFileSync(file, 'utf8').split('\n').forEach((l, i) => {
      const p = l.replace(/\r$/, '');
      if (p.trim()) out.push({ prompt: p, line: i + 1, row: { prompt: p } });
    });
  } else {
    const src = await openRowSource(file);
    try {
      for (let i = 0; i < src.length; i++) {
        const row = await src.get(i);
        const line = src.lineOf(i);
        const p = row.prompt;
        if (typeof p !== 'string') throw new DataError(file, line, 'prompt', p === undefined ? 'missing: each row needs a prompt string' : `expected a string, got ${typeName(p)}`);
        if (!p.trim()) throw new DataError(file, line, 'prompt', 'the prompt is empty');
        out.push({ prompt: p, line, row });
      }
    } finally {
      await src.close();
    }
  }
  if (out.length === 0) throw new AlignkitError(`${file}: no ${what}`);
  return out;
}

/** Writes rows as JSONL atomically (folders created). */
export function writeJsonl(file: string, rows: readonly unknown[]): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const text = rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : '');
  writeAtomically('jsonl', file, (f) => f.write(new TextEncoder().encode(text)));
}

/** Writes a JSON file atomically. */
export function writeJson(file: string, value: unknown): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeAtomically('json', file, (f) => f.write(new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)));
}
