// Which strings of a row the text tools work on ("text slots").
//
// A field may hold: a string; a list of messages ({role, content} as in OpenAI / TRL "messages", or
// {from, value} as in ShareGPT "conversations"); one message object (LLaMA-Factory's DPO "chosen": {from, value});
// a message whose content is a list of parts ([{type: "text", text | value}]); or a list of strings / of lists of
// strings (Alpaca "history": [[query, answer], ...]). In messages only the content strings (content, value or
// text) are slots: roles, names and tool metadata are never touched.
//
// With explicit fields (--fields text,messages) exactly those top-level fields are used. With auto (no
// --fields), every top-level field is used except the ones named in AUTO_EXCLUDED — identifiers and labels that
// cleaning must not rewrite.
import type { Row } from './stream.ts';

export interface TextSlot {
  /** Where the string is, e.g. "messages[2].content". */
  readonly path: string;
  get(): string;
  set(value: string): void;
}

export const AUTO_EXCLUDED: ReadonlySet<string> = new Set(['id', '_id', 'uuid', 'idx', 'index', 'label', 'labels', 'split', 'source', 'lang', 'language', 'role', 'weight', 'score', 'url', 'hash']);
const CONTENT_KEYS = ['content', 'value', 'text'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function stringSlot(holder: Record<string, unknown> | unknown[], key: string | number, path: string): TextSlot {
  return {
    path,
    get: () => (holder as Record<string | number, unknown>)[key] as string,
    set: (v) => {
      (holder as Record<string | number, unknown>)[key] = v;
    },
  };
}

function visitMessage(m: Record<string, unknown>, path: string, out: TextSlot[]): void {
  for (const k of CONTENT_KEYS) {
    const v = m[k];
    if (typeof v === 'string') out.push(stringSlot(m, k, `${path}.${k}`));
    else if (Array.isArray(v)) {
      // content parts: [{type: 'text', text: '...'}] (OpenAI) or [{type: 'text', value: '...'}] (LLaMA-Factory v1)
      v.forEach((part, i) => {
        if (isObject(part) && (part.type === undefined || part.type === 'text')) {
          for (const pk of ['text', 'value'] as const) if (typeof part[pk] === 'string') out.push(stringSlot(part, pk, `${path}.${k}[${i}].${pk}`));
        } else if (typeof part === 'string') out.push(stringSlot(v, i, `${path}.${k}[${i}]`));
      });
    }
  }
}

function visit(holder: Record<string, unknown> | unknown[], key: string | number, path: string, out: TextSlot[], depth: number): void {
  const v = (holder as Record<string | number, unknown>)[key];
  if (typeof v === 'string') out.push(stringSlot(holder, key, path));
  else if (Array.isArray(v) && depth < 3) v.forEach((_x, i) => visit(v, i, `${path}[${i}]`, out, depth + 1));
  else if (isObject(v)) visitMessage(v, path, out);
}

/** The text slots of a row: of the named top-level fields, or (fields === null) of every non-excluded field. */
export function textSlots(row: Row, fields: readonly string[] | null): TextSlot[] {
  const out: TextSlot[] = [];
  const keys = fields ?? Object.keys(row).filter((k) => !AUTO_EXCLUDED.has(k));
  for (const k of keys) if (k in row) visit(row, k, k, out, 0);
  return out;
}

/** The row's text as one string (slots joined by newlines): what filters, dedup and statistics look at. */
export function rowText(row: Row, fields: readonly string[] | null): string {
  return textSlots(row, fields).map((s) => s.get()).join('\n');
}

/** "a,b, c" -> ['a', 'b', 'c']; empty or undefined -> null (auto). */
export function parseFieldList(s: string | undefined): string[] | null {
  if (s === undefined) return null;
  const list = s.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  return list.length ? list : null;
}
