// Benchmark files in their native formats (and the Hugging Face dataset layouts lm-evaluation-harness reads),
// parsed into typed documents. Every problem is reported as one line naming the file, the 1-based line (or row)
// and the field — `ARC-Easy-Dev.jsonl line 3, field 'answerKey': 'E' is not one of the choice labels A, B, C, D`;
// with `skipInvalid` bad records are counted and skipped instead.
//
// Formats (the file extension picks JSONL / JSON array / CSV / Parquet; the fields pick the layout):
//   mmlu        hendrycks CSV without a header (question, A, B, C, D, answer letter; the subject is the file name
//               minus _test/_dev/_val.csv), or cais/mmlu rows {question, subject, choices[4], answer 0-3 | 'A'-'D'}
//   arc         AI2 rows {id, question: {stem, choices: [{text, label}]}, answerKey} or allenai/ai2_arc rows
//               {id, question, choices: {text[], label[]}, answerKey}
//   hellaswag   Rowan/hellaswag rows {activity_label, ctx_a, ctx_b, endings[4], label}; llama.cpp's text format
//               (.txt: context line, label line, four ending lines per task) or its JSONL {context, label,
//               endings}. llama.cpp stores "activity_label: ctx" already joined, so ctx_b's capitalisation (which
//               the harness applies) cannot be redone: such prompts differ from the harness's where ctx_b starts
//               with a lower-case letter (see docs/eval-harness.md).
//   truthfulqa  truthful_qa 'multiple_choice' rows {question, mc1_targets: {choices, labels}, mc2_targets}, the
//               original mc_task.json ({question, mc1_targets: {answer: 0|1}, ...}), or TruthfulQA.csv (mc1 = best
//               answer + incorrect answers, mc2 = correct + incorrect answers, ';'-separated, de-duplicated the
//               way mc_task.json's dicts are: first position, last label)
//   bbq         nyu-mll/BBQ rows {example_id, context, question, ans0..2, label, context_condition,
//               question_polarity, category, answer_info, additional_metadata.stereotyped_groups}
//   mc-jsonl    a user's own {question, choices[], answer} (answer: 0-based index or the text of a choice)
import fs from 'node:fs';
import nodePath from 'node:path';
import { TextDecoder } from 'node:util';
import { CsvParser, readRows, type Row } from '../../data/prep/stream.ts';
import { PrepError, type PrepLocation } from '../../data/prep/errors.ts';
import { firstInvalidUtf8 } from '../../data/prep/utf8.ts';

export interface LoadOptions {
  /** Count and skip bad records instead of stopping at the first. */
  skipInvalid?: boolean;
}

/** A document with where it came from. `key` identifies equal documents (the harness compares docs by value). */
export interface Located<D> {
  doc: D;
  file: string;
  /** 1-based line (JSONL, CSV, text) or row (JSON array, Parquet). */
  line: number;
  key: string;
}

export interface Loaded<D> {
  docs: Located<D>[];
  skipped: number;
  /** The first few skip messages. */
  samples: string[];
}

export interface MmluDoc {
  question: string;
  subject: string;
  choices: string[];
  /** 0-3. */
  answer: number;
}

export interface ArcDoc {
  id: string;
  question: string;
  texts: string[];
  labels: string[];
  answerKey: string;
}

export interface HellaswagDoc {
  activityLabel: string;
  ctxA: string;
  ctxB: string;
  endings: string[];
  label: number;
}

export interface Targets {
  choices: string[];
  /** 1 = true answer, 0 = false. */
  labels: number[];
}

export interface TruthfulqaDoc {
  question: string;
  mc1: Targets;
  mc2: Targets;
}

export interface BbqDoc {
  exampleId: number;
  context: string;
  question: string;
  /** ans0, ans1, ans2. */
  answers: [string, string, string];
  /** Index into answers. */
  label: number;
  contextCondition: 'ambig' | 'disambig';
  questionPolarity: 'neg' | 'nonneg';
  category: string;
  /** answer_info.ans0..2: [name, group] pairs as in the file. */
  answerInfo: [string[], string[], string[]];
  stereotypedGroups: string[];
}

export interface McDoc {
  question: string;
  choices: string[];
  answer: number;
}

// ------------------------------------------------------------------------------------------- field helpers

/** Reads typed fields of one record, throwing PrepErrors that name file, line and field. */
class Fields {
  constructor(
    readonly file: string,
    readonly where: PrepLocation,
    readonly row: Row,
  ) {}

  fail(field: string | undefined, problem: string): PrepError {
    return new PrepError(this.file, field === undefined ? this.where : { ...this.where, field }, problem);
  }

  has(field: string): boolean {
    return this.row[field] !== undefined && this.row[field] !== null;
  }

  raw(field: string): unknown {
    const v = this.row[field];
    if (v === undefined) throw this.fail(field, `missing field (the record has: ${Object.keys(this.row).join(', ') || 'no fields'})`);
    return v;
  }

  str(field: string): string {
    const v = this.raw(field);
    if (typeof v !== 'string') throw this.fail(field, `expected a string, got ${typeName(v)}`);
    return v;
  }

  strList(field: string, v: unknown = this.raw(field), minLength = 1): string[] {
    if (!Array.isArray(v)) throw this.fail(field, `expected a list of strings, got ${typeName(v)}`);
    v.forEach((x, i) => {
      if (typeof x !== 'string') throw this.fail(`${field}[${i}]`, `expected a string, got ${typeName(x)}`);
    });
    if (v.length < minLength) throw this.fail(field, `expected at least ${minLength} entr${minLength === 1 ? 'y' : 'ies'}, got ${v.length}`);
    return v as string[];
  }

  obj(field: string, v: unknown = this.raw(field)): Row {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw this.fail(field, `expected an object, got ${typeName(v)}`);
    return v as Row;
  }

  /** An integer, also accepted as a string of digits (Hugging Face stores some labels as strings). */
  int(field: string, v: unknown = this.raw(field)): number {
    const n = typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw this.fail(field, `expected an integer, got ${typeName(v)}${typeof v === 'string' ? ` '${v}'` : ''}`);
    return n;
  }
}

function typeName(v: unknown): string {
  if (v === undefined) return 'nothing (the field is missing)';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}

/** A stable identity for equal records (keys sorted, so field order does not matter — like Python dict ==). */
export function recordKey(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x === null || typeof x !== 'object' || Array.isArray(x)) return x;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(x).sort()) out[k] = (x as Record<string, unknown>)[k];
    return out;
  });
}

/** Rows of a JSONL / JSON-array / CSV (with header) / Parquet file, validated one by one with `parse`. */
async function loadRows<D>(file: string, opts: LoadOptions, parse: (f: Fields) => D): Promise<Loaded<D>> {
  const reader = readRows(file, { skipInvalid: opts.skipInvalid });
  const docs: Located<D>[] = [];
  const rowBased = reader.format === 'json' || reader.format === 'parquet';
  for await (const { row, line } of reader) {
    const where: PrepLocation = rowBased ? { row: line } : { line };
    try {
      docs.push({ doc: parse(new Fields(file, where, row)), file, line, key: recordKey(row) });
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      reader.invalid(e);
    }
  }
  return { docs, skipped: reader.stats.skipped, samples: reader.stats.samples };
}

/** The whole file as UTF-8 text; invalid UTF-8 is an error naming the line. */
function readUtf8(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new PrepError(file, {}, code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a file' : (e as Error).message);
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch {
    const at = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 10) line++;
    throw new PrepError(file, { line }, `invalid UTF-8: byte 0x${bytes[at].toString(16).padStart(2, '0')} (the file must be UTF-8)`);
  }
}

class Skipper {
  skipped = 0;
  samples: string[] = [];
  constructor(private readonly skipInvalid: boolean) {}
  invalid(e: PrepError): void {
    if (!this.skipInvalid) throw e;
    this.skipped++;
    if (this.samples.length < 10) this.samples.push(e.message);
  }
}

function isCsv(file: string): boolean {
  return /\.csv$/i.test(file);
}

// ------------------------------------------------------------------------------------------------- MMLU

const MMLU_SPLIT_SUFFIX = /_(test|dev|val|validation|train)\.csv$/i;

/** The subject of a hendrycks CSV from its file name (abstract_algebra_test.csv -> abstract_algebra). */
export function mmluSubjectOfFile(file: string): string {
  const base = nodePath.basename(file);
  return base.replace(MMLU_SPLIT_SUFFIX, '').replace(/\.csv$/i, '');
}

/** A hendrycks MMLU CSV: no header; question, A, B, C, D, answer letter. */
export function loadMmluCsv(file: string, opts: LoadOptions = {}): Loaded<MmluDoc> {
  const text = readUtf8(file);
  const subject = mmluSubjectOfFile(file);
  const skip = new Skipper(opts.skipInvalid ?? false);
  const docs: Located<MmluDoc>[] = [];
  const parser = new CsvParser(',');
  const onRecord = (fields: string[], line: number, problem: string | null): void => {
    try {
      if (problem) throw new PrepError(file, { line }, problem);
      if (fields.length !== 6) throw new PrepError(file, { line }, `ragged row: ${fields.length} field${fields.length === 1 ? '' : 's'}, expected 6 (question, A, B, C, D, answer)`);
      const letter = fields[5].trim();
      const answer = 'ABCD'.indexOf(letter);
      if (letter.length !== 1 || answer < 0) throw new PrepError(file, { line, field: 'answer' }, `expected A, B, C or D, got '${fields[5]}'`);
      const doc: MmluDoc = { question: fields[0], subject, choices: fields.slice(1, 5), answer };
      docs.push({ doc, file, line, key: recordKey(doc) });
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      skip.invalid(e);
    }
  };
  parser.push(text, onRecord);
  parser.end(onRecord);
  return { docs, skipped: skip.skipped, samples: skip.samples };
}

/** cais/mmlu rows (JSONL / JSON / Parquet), or a hendrycks CSV. */
export async function loadMmlu(file: string, opts: LoadOptions = {}): Promise<Loaded<MmluDoc>> {
  if (isCsv(file)) return loadMmluCsv(file, opts);
  return loadRows(file, opts, (f) => {
    const choices = f.strList('choices');
    if (choices.length !== 4) throw f.fail('choices', `expected 4 choices, got ${choices.length}`);
    const a = f.raw('answer');
    const answer = typeof a === 'string' && /^[A-D]$/.test(a.trim()) ? 'ABCD'.indexOf(a.trim()) : f.int('answer');
    if (answer < 0 || answer > 3) throw f.fail('answer', `expected 0-3 or A-D, got ${JSON.stringify(a)}`);
    return { question: f.str('question'), subject: f.str('subject'), choices, answer };
  });
}

// -------------------------------------------------------------------------------------------------- ARC

export async function loadArc(file: string, opts: LoadOptions = {}): Promise<Loaded<ArcDoc>> {
  return loadRows(file, opts, (f) => {
    const q = f.raw('question');
    let question: string;
    let texts: string[];
    let labels: string[];
    if (typeof q === 'string') {
      // allenai/ai2_arc layout
      question = q;
      const ch = f.obj('choices');
      texts = f.strList('choices.text', ch.text);
      labels = f.strList('choices.label', ch.label);
      if (texts.length !== labels.length) throw f.fail('choices', `${texts.length} texts but ${labels.length} labels`);
    } else {
      // AI2's own layout
      const qo = f.obj('question', q);
      if (typeof qo.stem !== 'string') throw f.fail('question.stem', `expected a string, got ${typeName(qo.stem)}`);
      question = qo.stem;
      if (!Array.isArray(qo.choices) || qo.choices.length === 0) throw f.fail('question.choices', `expected a list of {text, label}, got ${typeName(qo.choices)}`);
      texts = [];
      labels = [];
      qo.choices.forEach((c: unknown, i: number) => {
        const co = f.obj(`question.choices[${i}]`, c);
        if (typeof co.text !== 'string') throw f.fail(`question.choices[${i}].text`, `expected a string, got ${typeName(co.text)}`);
        if (typeof co.label !== 'string') throw f.fail(`question.choices[${i}].label`, `expected a string, got ${typeName(co.label)}`);
        texts.push(co.text);
        labels.push(co.label);
      });
    }
    const answerKey = f.str('answerKey');
    if (!labels.includes(answerKey)) throw f.fail('answerKey', `'${answerKey}' is not one of the choice labels ${labels.join(', ')}`);
    return { id: f.has('id') ? String(f.raw('id')) : '', question, texts, labels, answerKey };
  });
}

// -------------------------------------------------------------------------------------------- HellaSwag

/** llama.cpp's joined "activity_label: ctx" split back at the first ': ' (ctx_b empty; see the file comment). */
function hellaswagFromLlamacpp(context: string, endings: string[], label: number): HellaswagDoc {
  const at = context.indexOf(': ');
  const activityLabel = at < 0 ? context : context.slice(0, at);
  const ctxA = at < 0 ? '' : context.slice(at + 2);
  return { activityLabel, ctxA, ctxB: '', endings, label };
}

function checkLabel(f: Fields, label: number, n: number, field = 'label'): number {
  if (label < 0 || label >= n) throw f.fail(field, `${label} is not a valid index into ${n} endings`);
  return label;
}

/** llama.cpp's --hellaswag text: per task a context line, the label line, then four ending lines. */
export function loadHellaswagLlamacppText(file: string, opts: LoadOptions = {}): Loaded<HellaswagDoc> {
  if (/\.(bz2|xz|zst)$/i.test(file)) throw new PrepError(file, {}, 'compressed file: decompress it first (e.g. bunzip2 -k), then pass the .txt');
  const text = readUtf8(file);
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  const skip = new Skipper(opts.skipInvalid ?? false);
  const docs: Located<HellaswagDoc>[] = [];
  if (lines.length % 6 !== 0)
    skip.invalid(new PrepError(file, { line: lines.length - (lines.length % 6) + 1 }, `the file has ${lines.length} lines, not a multiple of 6 (context, label, 4 endings per task): the last task is incomplete`));
  for (let i = 0; i + 6 <= lines.length; i += 6) {
    const line = i + 1;
    try {
      const label = lines[i + 1].trim();
      if (!/^[0-3]$/.test(label)) throw new PrepError(file, { line: line + 1, field: 'label' }, `expected 0-3, got '${label}'`);
      const doc = hellaswagFromLlamacpp(lines[i], lines.slice(i + 2, i + 6), Number(label));
      docs.push({ doc, file, line, key: recordKey({ context: lines[i], label: Number(label), endings: doc.endings }) });
    } catch (e) {
      if (!(e instanceof PrepError)) throw e;
      skip.invalid(e);
    }
  }
  return { docs, skipped: skip.skipped, samples: skip.samples };
}

export async function loadHellaswag(file: string, opts: LoadOptions = {}): Promise<Loaded<HellaswagDoc>> {
  if (/\.txt(\.bz2)?$/i.test(file)) return loadHellaswagLlamacppText(file, opts);
  return loadRows(file, opts, (f) => {
    const endings = f.strList('endings');
    const label = checkLabel(f, f.int('label'), endings.length);
    if (f.has('ctx_a') || f.has('activity_label')) return { activityLabel: f.str('activity_label'), ctxA: f.str('ctx_a'), ctxB: f.str('ctx_b'), endings, label };
    return hellaswagFromLlamacpp(f.str('context'), endings, label);
  });
}

// ------------------------------------------------------------------------------------------- TruthfulQA

function targetsFrom(f: Fields, field: string): Targets {
  const v = f.obj(field);
  if (Array.isArray(v.choices)) {
    const choices = f.strList(`${field}.choices`, v.choices);
    if (!Array.isArray(v.labels)) throw f.fail(`${field}.labels`, `expected a list of 0/1, got ${typeName(v.labels)}`);
    const labels = v.labels.map((x: unknown, i: number) => {
      if (x !== 0 && x !== 1) throw f.fail(`${field}.labels[${i}]`, `expected 0 or 1, got ${JSON.stringify(x)}`);
      return x;
    });
    if (labels.length !== choices.length) throw f.fail(field, `${choices.length} choices but ${labels.length} labels`);
    return { choices, labels };
  }
  // mc_task.json: {answer text: 0 | 1} in order
  const choices: string[] = [];
  const labels: number[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (x !== 0 && x !== 1) throw f.fail(`${field}.${k}`, `expected 0 or 1, got ${JSON.stringify(x)}`);
    choices.push(k);
    labels.push(x);
  }
  if (choices.length === 0) throw f.fail(field, 'no answers');
  return { choices, labels };
}

/** Answers in order of first appearance, each with the label of its last appearance (Python dict semantics). */
function dictTargets(groups: [string[], number][]): Targets {
  const order: string[] = [];
  const label = new Map<string, number>();
  for (const [answers, l] of groups)
    for (const a of answers) {
      if (!label.has(a)) order.push(a);
      label.set(a, l);
    }
  return { choices: order, labels: order.map((a) => label.get(a) as number) };
}

export async function loadTruthfulqa(file: string, opts: LoadOptions = {}): Promise<Loaded<TruthfulqaDoc>> {
  if (isCsv(file)) {
    return loadRows(file, opts, (f) => {
      const split = (field: string): string[] => f.str(field).split(';').map((s) => s.trim());
      const incorrect = split('Incorrect Answers');
      return {
        question: f.str('Question'),
        mc1: dictTargets([[[f.str('Best Answer')], 1], [incorrect, 0]]),
        mc2: dictTargets([[split('Correct Answers'), 1], [incorrect, 0]]),
      };
    });
  }
  return loadRows(file, opts, (f) => {
    const mc1 = targetsFrom(f, 'mc1_targets');
    const mc2 = targetsFrom(f, 'mc2_targets');
    return { question: f.str('question'), mc1, mc2 };
  });
}

// -------------------------------------------------------------------------------------------------- BBQ

export async function loadBbq(file: string, opts: LoadOptions = {}): Promise<Loaded<BbqDoc>> {
  return loadRows(file, opts, (f) => {
    const answers: [string, string, string] = [f.str('ans0'), f.str('ans1'), f.str('ans2')];
    const label = f.int('label');
    if (label < 0 || label > 2) throw f.fail('label', `expected 0, 1 or 2, got ${label}`);
    const cc = f.str('context_condition');
    if (cc !== 'ambig' && cc !== 'disambig') throw f.fail('context_condition', `expected 'ambig' or 'disambig', got '${cc}'`);
    const qp = f.str('question_polarity');
    if (qp !== 'neg' && qp !== 'nonneg') throw f.fail('question_polarity', `expected 'neg' or 'nonneg', got '${qp}'`);
    const info = f.obj('answer_info');
    const answerInfo = [0, 1, 2].map((i) => f.strList(`answer_info.ans${i}`, info[`ans${i}`], 0)) as [string[], string[], string[]];
    const meta = f.obj('additional_metadata');
    const stereotypedGroups = f.strList('additional_metadata.stereotyped_groups', meta.stereotyped_groups, 0);
    return {
      exampleId: f.has('example_id') ? f.int('example_id') : -1,
      context: f.str('context'),
      question: f.str('question'),
      answers,
      label,
      contextCondition: cc,
      questionPolarity: qp,
      category: f.str('category'),
      answerInfo,
      stereotypedGroups,
    };
  });
}

// ---------------------------------------------------------------------------------------------- generic

export async function loadMcJsonl(file: string, opts: LoadOptions = {}): Promise<Loaded<McDoc>> {
  return loadRows(file, opts, (f) => {
    const choices = f.strList('choices', f.raw('choices'), 2);
    const a = f.raw('answer');
    let answer: number;
    if (typeof a === 'string' && !/^\s*\d+\s*$/.test(a)) {
      answer = choices.indexOf(a);
      if (answer < 0) throw f.fail('answer', `'${a}' is not one of the choices`);
    } else {
      answer = f.int('answer');
      if (answer < 0 || answer >= choices.length) throw f.fail('answer', `${answer} is not a valid index into ${choices.length} choices`);
    }
    return { question: f.str('question'), choices, answer };
  });
}
