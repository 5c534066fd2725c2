// Tokenised pairs / labelled completions -> padded batches for the preference trainers.
//
// Every row is prompt + completion, right-padded. Labels are aligned with the inputs and NOT shifted (the loss
// predicts labels[t + 1] from position t): -100 on the prompt and on padding, the completion's ids (EOS included)
// elsewhere, so a trainer sums log-probabilities over exactly the completion. Padding is marked by the attention
// mask (0) and -100 labels, never by the pad id, so a pad id equal to EOS is harmless.
import { AlignkitError } from '../tensor/errors.ts';
import type { TokenizedPair, TokenizedUnpaired } from './preference.ts';
import { IGNORE_INDEX } from './sft_tokenize.ts';

export interface PairBatch {
  /** Number of pairs (N); the batch has 2N rows. */
  pairs: number;
  /** Padded row length (T). */
  seq: number;
  /** [2N*T] rows 0..N-1 = prompt + chosen, rows N..2N-1 = prompt + rejected (same pair order), right-padded. */
  inputIds: Int32Array;
  /** [2N*T] 1 = real token, 0 = padding. */
  attentionMask: Int32Array;
  /** [2N*T] -100 on prompt and padding; completion tokens (EOS included) labelled; not shifted. */
  labels: Int32Array;
  /** [N] per-pair margins, or null when the pairs have none. */
  margins: Float32Array | null;
}

export interface UnpairedBatch {
  rows: number;
  seq: number;
  /** [B*T] prompt + completion, right-padded. */
  inputIds: Int32Array;
  /** [B*T] 1 = real token, 0 = padding. */
  attentionMask: Int32Array;
  /** [B*T] -100 on prompt and padding; completion tokens labelled; not shifted. */
  labels: Int32Array;
  /** [B] 1 = desirable, 0 = undesirable. */
  desirable: Uint8Array;
}

export interface PairCollateOptions {
  padTokenId: number;
  /** Round the row length up to a multiple of this. Default 1. */
  padToMultipleOf?: number;
}

function checkPad(who: string, padTokenId: number, multiple: number): void {
  if (!Number.isInteger(padTokenId) || padTokenId < 0) throw new AlignkitError(`${who}: padTokenId must be a non-negative integer, got ${padTokenId}`);
  if (!Number.isInteger(multiple) || multiple < 1) throw new AlignkitError(`${who}: padToMultipleOf must be a positive integer, got ${multiple}`);
}

/** Lays out (prompt, completion) rows, right-padded to a common length. */
function padRows(who: string, rows: readonly { prompt: Int32Array; completion: Int32Array }[], padTokenId: number, multiple: number): { seq: number; inputIds: Int32Array; attentionMask: Int32Array; labels: Int32Array } {
  let longest = 0;
  rows.forEach((r, b) => {
    if (r.prompt.length === 0) throw new AlignkitError(`${who}: row ${b} has an empty prompt`);
    longest = Math.max(longest, r.prompt.length + r.completion.length);
  });
  const T = Math.ceil(longest / multiple) * multiple;
  const inputIds = new Int32Array(rows.length * T).fill(padTokenId);
  const labels = new Int32Array(rows.length * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(rows.length * T);
  rows.forEach((r, b) => {
    const at = b * T;
    const P = r.prompt.length;
    const n = P + r.completion.length;
    inputIds.set(r.prompt, at);
    inputIds.set(r.completion, at + P);
    labels.set(r.completion, at + P);
    attentionMask.fill(1, at, at + n);
  });
  return { seq: T, inputIds, attentionMask, labels };
}

/** Pairs -> one batch of 2N rows: all prompt + chosen rows, then all prompt + rejected rows (TRL's concatenated
 *  forward pass: one model call scores both sides). */
export function collatePairs(pairs: readonly TokenizedPair[], o: PairCollateOptions): PairBatch {
  const who = 'collatePairs';
  if (pairs.length === 0) throw new AlignkitError(`${who}: no pairs`);
  checkPad(who, o.padTokenId, o.padToMultipleOf ?? 1);
  const withMargin = pairs.filter((p) => p.margin !== null).length;
  if (withMargin !== 0 && withMargin !== pairs.length) {
    throw new AlignkitError(`${who}: ${withMargin} of ${pairs.length} pairs have a margin; every pair needs one, or none`);
  }
  const rows = [...pairs.map((p) => ({ prompt: p.promptIds, completion: p.chosenIds })), ...pairs.map((p) => ({ prompt: p.promptIds, completion: p.rejectedIds }))];
  const laid = padRows(who, rows, o.padTokenId, o.padToMultipleOf ?? 1);
  const margins = withMargin === 0 ? null : Float32Array.from(pairs, (p) => p.margin as number);
  return { pairs: pairs.length, ...laid, margins };
}

/** Labelled completions -> one batch (KTO). */
export function collateUnpaired(rows: readonly TokenizedUnpaired[], o: PairCollateOptions): UnpairedBatch {
  const who = 'collateUnpaired';
  if (rows.length === 0) throw new AlignkitError(`${who}: no rows`);
  checkPad(who, o.padTokenId, o.padToMultipleOf ?? 1);
  const laid = padRows(who, rows.map((r) => ({ prompt: r.promptIds, completion: r.completionIds })), o.padTokenId, o.padToMultipleOf ?? 1);
  return { rows: rows.length, ...laid, desirable: Uint8Array.from(rows, (r) => (r.label ? 1 : 0)) };
}

/**
 * KTO's KL reference point: the batch's completions paired with mismatched prompts. Row i is prompt i with the
 * completion of row (i - 1) mod n — TRL's KTOTrainer builds its KL dataset by rotating each batch's completions
 * one place to the right ([c_n-1, c_0, c_1, ...], "a +1 offset to the order of completions"), so the mismatched
 * completions are the same set as the matched ones, each under another prompt. A batch of one row is paired with
 * itself, as in TRL. `desirable` keeps row i's label. Prompt + completion may exceed the maxLength the examples
 * were cut to (the two were cut separately).
 */
export function collateKtoMismatched(rows: readonly TokenizedUnpaired[], o: PairCollateOptions): UnpairedBatch {
  const who = 'collateKtoMismatched';
  if (rows.length === 0) throw new AlignkitError(`${who}: no rows`);
  checkPad(who, o.padTokenId, o.padToMultipleOf ?? 1);
  const n = rows.length;
  const laid = padRows(who, rows.map((r, i) => ({ prompt: r.promptIds, completion: rows[(i - 1 + n) % n].completionIds })), o.padTokenId, o.padToMultipleOf ?? 1);
  return { rows: n, ...laid, desirable: Uint8Array.from(rows, (r) => (r.label ? 1 : 0)) };
}
