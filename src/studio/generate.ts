// Candidates generated on the spot: one or two local models answer each prompt (sampleResponses of
// src/trainers/compare.ts: a batch of n samples, row r seeded seed + r), and the answers are imported into a
// project like a JSONL import (same validation, one transaction), each response tagged with its model's name.
// With one model every prompt gets `perModel` (>= 2) samples; with two, `perModel` from each.
import fs from 'node:fs';
import path from 'node:path';
import { loadModel } from '../models/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import { sampleResponses, type SamplingFlags } from '../trainers/compare.ts';
import type { ImportResult, StudioStore } from './store.ts';

export interface PromptRow {
  id?: string;
  prompt: string;
}

/** Prompts from a .txt file (one per line) or JSON Lines with a `prompt` string (and optional `id`). */
export function readPromptFile(file: string): PromptRow[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new AlignkitError(`${file}: cannot read: ${e instanceof Error ? e.message : String(e)}`);
  }
  const lines = text.split('\n');
  if (path.extname(file).toLowerCase() === '.txt') return lines.filter((l) => l.trim() !== '').map((prompt) => ({ prompt }));
  const out: PromptRow[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new AlignkitError(`${file}:${i + 1}: not valid JSON`);
    }
    const r = row as { prompt?: unknown; id?: unknown };
    if (typeof r?.prompt !== 'string' || r.prompt.trim() === '') throw new AlignkitError(`${file}:${i + 1}: field 'prompt': expected a non-empty string`);
    out.push({ prompt: r.prompt, id: r.id === undefined ? undefined : String(r.id) });
  });
  return out;
}

export interface GenerateOptions {
  /** One or two model folders; the name recorded with each response is the folder's base name. */
  models: string[];
  perModel: number;
  sampling: SamplingFlags;
}

/** Generates candidates for every prompt and imports them into the project (all or nothing). */
export function generateCandidates(store: StudioStore, projectId: number, prompts: readonly PromptRow[], o: GenerateOptions): ImportResult {
  if (o.models.length < 1 || o.models.length > 2) throw new AlignkitError(`generate: give one or two models, got ${o.models.length}`);
  const total = o.perModel * o.models.length;
  const project = store.project(projectId);
  if (project.taskType === 'pairwise' && total < 2) throw new AlignkitError('generate: a pairwise project needs at least 2 responses per prompt (raise --n or add a second model)');
  const responses: { text: string; model: string }[][] = prompts.map(() => []);
  for (const dir of o.models) {
    const model = loadModel(dir, { trainable: false });
    const tok = loadTokenizer(dir);
    try {
      prompts.forEach((p, i) => {
        for (const text of sampleResponses(model, tok, p.prompt, o.perModel, o.sampling)) responses[i].push({ text, model: path.basename(path.resolve(dir)) });
      });
    } finally {
      model.dispose();
    }
  }
  const rows = prompts.map((p, i) => JSON.stringify({ ...(p.id !== undefined ? { id: p.id } : {}), prompt: p.prompt, responses: responses[i] }));
  return store.importJsonl(projectId, rows.join('\n'), 'reject');
}
