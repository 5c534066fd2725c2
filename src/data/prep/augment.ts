// `alignkit data augment`: new rows made from existing ones, each pointing back at its source.
//
// Which strings are augmented ("targets"):
//   - --fields a,b: every string in those top-level fields (strings, message lists, message objects, content
//     parts; see fields.ts for the shapes);
//   - default: the prompt side of the row's layout (convert.ts detectFormat): messages -> "messages",
//     sharegpt -> "conversations", alpaca -> "instruction" and "input", prompt_completion / preference /
//     kto -> "prompt" (kto without a prompt: "messages"); a row in none of these layouts (e.g. {text, label})
//     -> every string field except ids and labels (fields.ts AUTO_EXCLUDED). Targets — answers, chosen and
//     rejected completions — are left alone by default: rewriting them changes what the model is taught.
//   - inside message lists only the content of messages whose role is in --roles (default: user) is used;
//     roles are read from "role" or ShareGPT's "from" (human -> user, gpt -> assistant, ...).
//
// Every output row is a deep copy of its source with the augmented strings replaced and three fields set
// (added at the end, or overwritten when the row already has them, e.g. when augmenting augmented data):
//   source_line    the source row's line (JSONL, CSV) or row number (Parquet, JSON arrays)
//   source_id      the source row's id field (--id-field, default "id"), only when the row has one
//   augmentation   {method, params}: the method ("eda", "paraphrase", "back_translation", "contextual") and
//                  everything needed to reproduce it (operation, rates, seed, output index, fields, edits,
//                  model / endpoint and sampling options); null on the copied original rows
// Labels and every other field are kept as they are.
//
// Seeds: everything random about a source row derives from (--seed, its line): the EDA plan and operations
// draw from Rng(deriveSeed(seed, line)); a model prompt for output k and field j samples with
// deriveSeed(seed, line, k, j). A row's outputs therefore do not depend on the other rows, on skipped
// invalid rows or on the batch size.
import { detectFormat, ConvertError } from './convert.ts';
import { applyEda, edaPlan, edaRate, type EdaOperation, type EdaParams, type SynonymSource, type WordEdit } from './augment_text.ts';
import { backTranslateTexts, contextualReplace, deriveSeed, paraphraseTexts, type ContextualOptions, type GenResult, type LocalModelGenerator, type TextGenerator } from './augment_model.ts';
import { AUTO_EXCLUDED, textSlots, type TextSlot } from './fields.ts';
import { Rng } from './rng.ts';
import type { Row } from './stream.ts';

export const AUGMENT_METHODS = ['eda', 'paraphrase', 'back_translation', 'contextual'] as const;
export type AugmentMethod = (typeof AUGMENT_METHODS)[number];

/** Canonical roles, from the spellings of OpenAI/TRL ("role") and ShareGPT ("from"). */
const ROLE_NAMES: Record<string, string> = {
  user: 'user', human: 'user', prompter: 'user',
  assistant: 'assistant', gpt: 'assistant', model: 'assistant', bot: 'assistant', chatgpt: 'assistant',
  system: 'system',
  tool: 'tool', observation: 'tool', function: 'tool', ipython: 'tool',
};
export const ROLES = ['user', 'assistant', 'system', 'tool'] as const;

export interface AugmentTargets {
  /** Top-level fields, or null for the layout's default. */
  fields: readonly string[] | null;
  /** Roles whose message content is augmented; null = every role. */
  roles: ReadonlySet<string> | null;
  /** The id field, never augmented when fields are chosen automatically. */
  idField?: string;
}

/** The default fields of a row's layout (see the file comment); null when the layout is not recognised. */
export function layoutFields(row: Row): string[] | null {
  let layout: string;
  try {
    layout = detectFormat(row);
  } catch (e) {
    if (e instanceof ConvertError) return null;
    throw e;
  }
  switch (layout) {
    case 'messages':
      return ['messages'];
    case 'sharegpt':
      return ['conversations'];
    case 'alpaca':
      return ['instruction', 'input'].filter((k) => k in row);
    case 'kto':
      return 'prompt' in row ? ['prompt'] : ['messages'];
    default:
      return 'prompt' in row ? ['prompt'] : [];
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function roleOf(m: Record<string, unknown>): string | null {
  const r = typeof m.role === 'string' ? m.role : typeof m.from === 'string' ? m.from : null;
  if (r === null) return null;
  return ROLE_NAMES[r.toLowerCase()] ?? r.toLowerCase();
}

/** Whether a message object's content is a target (messages without a role always are). */
function roleAllowed(m: Record<string, unknown>, roles: ReadonlySet<string> | null): boolean {
  if (roles === null) return true;
  const r = roleOf(m);
  return r === null || roles.has(r);
}

/** Keeps the slots of a field whose enclosing message has an allowed role. */
function filterByRole(row: Row, field: string, slots: TextSlot[], roles: ReadonlySet<string> | null): TextSlot[] {
  if (roles === null) return slots;
  const v = row[field];
  return slots.filter((s) => {
    // Paths: field, field.content (one message), field[i].content..., field[i][j] (lists of strings).
    const rest = s.path.slice(field.length);
    if (isObject(v)) return roleAllowed(v, roles);
    const m = /^\[(\d+)\]\./.exec(rest);
    if (m && Array.isArray(v)) {
      const msg = v[Number(m[1])];
      return !isObject(msg) || roleAllowed(msg, roles);
    }
    return true;
  });
}

/** The strings of a row that are augmented, in a fixed order. */
export function augmentSlots(row: Row, t: AugmentTargets): TextSlot[] {
  const fields = t.fields ?? layoutFields(row) ?? Object.keys(row).filter((k) => !AUTO_EXCLUDED.has(k) && !PROVENANCE_FIELDS.has(k) && k !== t.idField);
  return fields.flatMap((f) => filterByRole(row, f, textSlots(row, [f]), t.roles));
}

export const PROVENANCE_FIELDS: ReadonlySet<string> = new Set(['source_line', 'source_id', 'augmentation']);

export interface Augmentation {
  method: AugmentMethod;
  params: Record<string, unknown>;
}

/** A copy of `row` with the provenance fields set (see the file comment). */
export function withProvenance(row: Row, line: number, idField: string, augmentation: Augmentation | null): Row {
  const out: Row = { ...row, source_line: line };
  if (idField in row && row[idField] !== undefined && row[idField] !== null) out.source_id = row[idField];
  else delete out.source_id;
  out.augmentation = augmentation;
  return out;
}

export interface AugmentOutput {
  row: Row;
  /** Whether any augmented string differs from the source. */
  changed: boolean;
  /** 'eda/random_swap', 'paraphrase', ... (for the summary). */
  kind: string;
}

export interface AugmentFailure {
  /** The field path, or null for a failure of the whole row. */
  field: string | null;
  error: string;
}

export interface RowAugmentation {
  outputs: AugmentOutput[];
  failures: AugmentFailure[];
  /** Number of target strings found in the source row. */
  slots: number;
}

export interface CommonAugmentOptions {
  targets: AugmentTargets;
  /** Outputs per source row. */
  numAug: number;
  seed: number;
  idField: string;
}

// -------------------------------------------------------------------------------------------------- EDA

export interface EdaAugmentOptions extends CommonAugmentOptions {
  eda: EdaParams;
  synonyms: SynonymSource;
  stopWords: ReadonlySet<string>;
}

/** EDA on one row: edaPlan picks each output's operation, applied to every target string of the row. */
export function edaRow(row: Row, line: number, o: EdaAugmentOptions): RowAugmentation {
  const rng = new Rng(deriveSeed(o.seed, line));
  const plan = edaPlan({ ...o.eda, numAug: o.numAug }, rng);
  const sourceSlots = augmentSlots(row, o.targets);
  const texts = sourceSlots.map((s) => s.get());
  const outputs: AugmentOutput[] = plan.map((op: EdaOperation, k) => {
    const copy = structuredClone(row);
    const slots = augmentSlots(copy, o.targets);
    const changes: { field: string; n: number | null; edits: WordEdit[] }[] = [];
    let changed = false;
    slots.forEach((s, j) => {
      const r = applyEda(op, texts[j], o.eda, o.synonyms, o.stopWords, rng);
      if (r.text !== texts[j]) {
        s.set(r.text);
        changed = true;
      }
      changes.push({ field: s.path, n: r.n, edits: r.edits });
    });
    const rateName = op === 'random_deletion' ? 'p' : 'alpha';
    const params = { operation: op, [rateName]: edaRate(op, o.eda), seed: o.seed, index: k, changes };
    return { row: withProvenance(copy, line, o.idField, { method: 'eda', params }), changed, kind: `eda/${op}` };
  });
  return { outputs, failures: [], slots: sourceSlots.length };
}

// ---------------------------------------------------------------------------------------- model methods

export interface ModelAugmentOptions extends CommonAugmentOptions {
  method: 'paraphrase' | 'back_translation' | 'contextual';
  generator: TextGenerator;
  /** Paraphrase / translation prompt, with {text}. */
  template: string;
  /** Back-translation prompt, with {text}. */
  backTemplate: string;
  contextual: ContextualOptions;
}

interface Job {
  item: number;
  k: number;
  j: number;
  path: string;
  text: string;
  seed: number;
}

/** Augments a batch of rows with a model; the prompts of the whole batch go to the generator together. */
export async function modelRows(items: readonly { row: Row; line: number }[], o: ModelAugmentOptions): Promise<RowAugmentation[]> {
  const perItem = items.map(({ row }) => augmentSlots(row, o.targets));
  const jobs: Job[] = [];
  items.forEach(({ line }, item) => {
    for (let k = 0; k < o.numAug; k++) {
      perItem[item].forEach((s, j) => {
        const text = s.get();
        // Nothing to rewrite in an empty or blank string: it is copied as it is.
        if (text.trim() !== '') jobs.push({ item, k, j, path: s.path, text, seed: deriveSeed(o.seed, line, k, j) });
      });
    }
  });
  const results: { result: GenResult; extra: Record<string, unknown> }[] = await runJobs(jobs, o);
  const byOutput = new Map<string, { job: Job; result: GenResult; extra: Record<string, unknown> }[]>();
  jobs.forEach((job, i) => {
    const key = `${job.item}:${job.k}`;
    const list = byOutput.get(key) ?? [];
    list.push({ job, ...results[i] });
    byOutput.set(key, list);
  });
  const base = { ...o.generator.describe(), seed: o.seed };
  const methodParams: Record<string, unknown> =
    o.method === 'paraphrase' ? { template: o.template } :
    o.method === 'back_translation' ? { template: o.template, back_template: o.backTemplate } :
    { alpha: o.contextual.alpha, candidates: o.contextual.candidates, max_word_tokens: o.contextual.maxWordTokens };
  return items.map(({ row, line }, item) => {
    const out: RowAugmentation = { outputs: [], failures: [], slots: perItem[item].length };
    for (let k = 0; k < o.numAug; k++) {
      const done = byOutput.get(`${item}:${k}`) ?? [];
      const failed = done.filter((d) => !d.result.ok || d.result.text.trim() === '');
      if (failed.length) {
        for (const f of failed) out.failures.push({ field: f.job.path, error: f.result.ok ? 'the model returned an empty text' : f.result.error });
        continue;
      }
      const copy = structuredClone(row);
      const slots = augmentSlots(copy, o.targets);
      let changed = false;
      const fields: Record<string, unknown>[] = [];
      for (const d of done) {
        const text = (d.result as { ok: true; text: string }).text;
        if (text !== d.job.text) changed = true;
        slots[d.job.j].set(text);
        fields.push({ field: d.job.path, ...d.extra });
      }
      const params = { ...methodParams, ...base, index: k, fields };
      out.outputs.push({ row: withProvenance(copy, line, o.idField, { method: o.method, params }), changed, kind: o.method });
    }
    return out;
  });
}

async function runJobs(jobs: readonly Job[], o: ModelAugmentOptions): Promise<{ result: GenResult; extra: Record<string, unknown> }[]> {
  const items = jobs.map((j) => ({ text: j.text, seed: j.seed }));
  if (o.method === 'paraphrase') return (await paraphraseTexts(o.generator, o.template, items)).map((result) => ({ result, extra: {} }));
  if (o.method === 'back_translation') return (await backTranslateTexts(o.generator, o.template, o.backTemplate, items)).map((r) => ({ result: r.result, extra: { pivot: r.pivot } }));
  const out: { result: GenResult; extra: Record<string, unknown> }[] = [];
  for (const j of jobs) {
    const r = await contextualReplace(o.generator as LocalModelGenerator, j.text, o.contextual, j.seed);
    out.push({ result: { ok: true, text: r.text }, extra: { edits: r.edits } });
  }
  return out;
}

// ------------------------------------------------------------------------------------------------ stats

/** Counts for the summary. */
export class AugmentStats {
  rowsIn = 0;
  originals = 0;
  augmented = 0;
  unchanged = 0;
  droppedUnchanged = 0;
  rowsWithoutText = 0;
  failed = 0;
  failureSamples: string[] = [];
  readonly byKind = new Map<string, number>();

  add(r: RowAugmentation, dropUnchanged: boolean, describe: (f: AugmentFailure) => string): AugmentOutput[] {
    this.rowsIn++;
    if (r.slots === 0) this.rowsWithoutText++;
    for (const f of r.failures) {
      this.failed++;
      if (this.failureSamples.length < 10) this.failureSamples.push(describe(f));
    }
    const kept: AugmentOutput[] = [];
    for (const out of r.outputs) {
      if (!out.changed) {
        this.unchanged++;
        if (dropUnchanged) {
          this.droppedUnchanged++;
          continue;
        }
      }
      this.augmented++;
      this.byKind.set(out.kind, (this.byKind.get(out.kind) ?? 0) + 1);
      kept.push(out);
    }
    return kept;
  }
}
