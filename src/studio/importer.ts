// Parsing an import file: JSON Lines, one prompt per line with its candidate responses,
//   {"id": "p1", "prompt": "...", "responses": ["...", {"text": "...", "model": "sft-v2"}], "gold": {...}}
// `id` is optional (default: the line number), unique within the project. Pairwise projects need two or more
// responses per prompt (every pair becomes an item); Likert and edit projects one or more (every response is an
// item). `gold` marks an audit item with a known answer: pairwise {"choice": "a" | "b" | "tie"} (a = the first
// response; only for exactly two responses), Likert {"ratings": [{criterion: score}, ...]} (one per response).
//
// Every problem is reported with its line and field; nothing is written here (store.ts applies the valid rows
// in one transaction, or none of them when the user asked to reject a file with errors).
import { z } from 'zod';

export type TaskType = 'pairwise' | 'likert' | 'edit';

export interface ImportIssue {
  line: number;
  field: string | null;
  message: string;
}

export interface ImportRow {
  line: number;
  externalId: string;
  prompt: string;
  responses: { text: string; model: string | null }[];
  gold: { choice: 'a' | 'b' | 'tie' } | { ratings: Record<string, number>[] } | null;
}

export interface ParsedImport {
  rows: ImportRow[];
  issues: ImportIssue[];
  /** Non-blank lines read. */
  lines: number;
}

const responseSchema = z.union([z.string(), z.object({ text: z.string(), model: z.string().optional() }).strict()]);

const rowSchema = z
  .object({
    id: z.union([z.string().min(1).max(200), z.number().int()]).optional(),
    prompt: z.string().refine((s) => s.trim() !== '', 'empty prompt'),
    responses: z.array(responseSchema).min(1, 'at least one response is needed'),
    gold: z
      .union([
        z.object({ choice: z.enum(['a', 'b', 'tie']) }).strict(),
        z.object({ ratings: z.array(z.record(z.string(), z.number().int())) }).strict(),
      ])
      .optional(),
  })
  .strict();

function fieldOf(path: readonly PropertyKey[]): string | null {
  if (path.length === 0) return null;
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');
}

export interface ImportContext {
  taskType: TaskType;
  criteria: readonly string[];
  likertMax: number;
  /** External ids the project already has. */
  existingIds: ReadonlySet<string>;
}

/** Parses and validates an import file's text; never throws for bad content. */
export function parseImport(text: string, ctx: ImportContext): ParsedImport {
  const rows: ImportRow[] = [];
  const issues: ImportIssue[] = [];
  const seen = new Map<string, number>();
  let count = 0;
  const lines = text.split('\n');
  lines.forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    count++;
    const issue = (field: string | null, message: string) => issues.push({ line, field, message });
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      return issue(null, `not valid JSON (${e instanceof Error ? e.message : String(e)})`);
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return issue(null, 'expected a JSON object');
    const parsed = rowSchema.safeParse(value);
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      return issue(fieldOf(first.path), first.message);
    }
    const r = parsed.data;
    const minResponses = ctx.taskType === 'pairwise' ? 2 : 1;
    if (r.responses.length < minResponses) return issue('responses', `a pairwise project needs at least 2 responses per prompt, got ${r.responses.length}`);
    const externalId = r.id === undefined ? `line-${line}` : String(r.id);
    const earlier = seen.get(externalId);
    if (earlier !== undefined) return issue('id', `duplicate id '${externalId}' (first on line ${earlier})`);
    if (ctx.existingIds.has(externalId)) return issue('id', `the project already has a prompt with id '${externalId}'`);
    let gold: ImportRow['gold'] = null;
    if (r.gold) {
      if (ctx.taskType === 'edit') return issue('gold', 'edit projects have no gold answers');
      if ('choice' in r.gold) {
        if (ctx.taskType !== 'pairwise') return issue('gold.choice', 'a gold choice belongs to a pairwise project; Likert gold is {"ratings": [...]}');
        if (r.responses.length !== 2) return issue('gold.choice', `a gold choice needs exactly 2 responses, got ${r.responses.length}`);
        gold = { choice: r.gold.choice };
      } else {
        if (ctx.taskType !== 'likert') return issue('gold.ratings', 'gold ratings belong to a Likert project; pairwise gold is {"choice": "a" | "b" | "tie"}');
        if (r.gold.ratings.length !== r.responses.length) return issue('gold.ratings', `expected one ratings object per response (${r.responses.length}), got ${r.gold.ratings.length}`);
        for (let k = 0; k < r.gold.ratings.length; k++) {
          const problem = checkRatings(r.gold.ratings[k], ctx.criteria, ctx.likertMax);
          if (problem) return issue(`gold.ratings[${k}]${problem.field ? `.${problem.field}` : ''}`, problem.message);
        }
        gold = { ratings: r.gold.ratings };
      }
    }
    seen.set(externalId, line);
    rows.push({
      line,
      externalId,
      prompt: r.prompt,
      responses: r.responses.map((x) => (typeof x === 'string' ? { text: x, model: null } : { text: x.text, model: x.model ?? null })),
      gold,
    });
  });
  return { rows, issues, lines: count };
}

/** Checks one set of Likert ratings: every criterion, each an integer in 1..max, nothing else. */
export function checkRatings(ratings: Record<string, number>, criteria: readonly string[], max: number): { field: string | null; message: string } | null {
  for (const c of criteria) {
    if (!(c in ratings)) return { field: c, message: `missing rating for criterion '${c}'` };
    const v = ratings[c];
    if (!Number.isInteger(v) || v < 1 || v > max) return { field: c, message: `expected an integer from 1 to ${max}, got ${v}` };
  }
  for (const k of Object.keys(ratings)) if (!criteria.includes(k)) return { field: k, message: `unknown criterion '${k}' (the project rates ${criteria.join(', ')})` };
  return null;
}
