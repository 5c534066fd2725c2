// BERTScore's baseline rescaling (Zhang et al. 2020, bert_score's rescale_with_baseline): a raw score x becomes
// (x - b) / (1 - b), where b is the expected score of unrelated sentence pairs for the model and layer, read
// from bert_score's rescale_baseline/<lang>/<model>.tsv files (header LAYER,P,R,F; comma-separated despite the
// extension). Computing BERTScore itself needs the model's hidden states (roberta-large by default) and is not
// part of this module.
import { readLines, EvalInputError } from './io.ts';

export interface Baseline {
  P: number;
  R: number;
  F: number;
}

/** The baseline row for `layer` of a bert_score rescale-baseline file. */
export function readRescaleBaseline(file: string, layer: number): Baseline {
  const lines = readLines(file);
  const header = (lines[0] ?? '').split(',').map((s) => s.trim());
  if (header.join(',') !== 'LAYER,P,R,F') throw new EvalInputError(file, 1, `expected the header LAYER,P,R,F, got '${lines[0] ?? ''}'`);
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].trim() === '') continue;
    const cells = lines[i].split(',').map(Number);
    if (cells.length !== 4 || cells.some((x) => !Number.isFinite(x))) throw new EvalInputError(file, i + 1, 'expected 4 numbers: LAYER,P,R,F');
    if (cells[0] === layer) return { P: cells[1], R: cells[2], F: cells[3] };
  }
  throw new EvalInputError(file, null, `no baseline for layer ${layer}`);
}

/** (x - b) / (1 - b). */
export function rescaleWithBaseline(x: number, b: number): number {
  return (x - b) / (1 - b);
}
