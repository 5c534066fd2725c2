// Rows -> one padded batch. Padding is marked by the attention mask (0) and by -100 labels, never by the pad
// token's id, so a pad token equal to EOS is harmless: a real EOS keeps attention 1 and its label.
import { AlignkitError } from '../tensor/errors.ts';
import type { PackedRow } from './packing.ts';
import { IGNORE_INDEX, type TokenizedExample } from './sft_tokenize.ts';

export interface Batch {
  batch: number;
  seq: number;
  /** [B*T] row-major token ids, padding = padTokenId. */
  inputIds: Int32Array;
  /** [B*T] labels (not shifted), padding = -100. */
  labels: Int32Array;
  /** [B*T] 1 = real token, 0 = padding. */
  attentionMask: Int32Array;
  /** [B*T] per-document positions when any row is packed, else null (the model derives them from the mask). */
  positionIds: Int32Array | null;
  /** [B*T] document ids when any row is packed, else null. */
  documentIds: Int32Array | null;
  /** Number of loss targets after the shift: count of (b, t) with labels[b][t + 1] != -100. */
  numLossTokens: number;
}

export interface CollateOptions {
  padTokenId: number;
  /** Where padding goes. Default 'right'. */
  padSide?: 'right' | 'left';
  /** Round the sequence length up to a multiple of this. Default 1. */
  padToMultipleOf?: number;
}

function isPacked(row: TokenizedExample | PackedRow): row is PackedRow {
  return 'documentIds' in row && row.documentIds instanceof Int32Array;
}

/**
 * Pads rows to a common length. Packed rows pass their position and document ids through; an unpacked row in a
 * batch with packed rows counts as one document. Padding gets positions 0, 1, ... and a document id of its own
 * (one more than the row's largest), so padded positions never share a document with real tokens.
 */
export function collate(rows: readonly (TokenizedExample | PackedRow)[], opts: CollateOptions): Batch {
  if (rows.length === 0) throw new AlignkitError('collate: no rows');
  if (!Number.isInteger(opts.padTokenId) || opts.padTokenId < 0) throw new AlignkitError(`collate: padTokenId must be a non-negative integer, got ${opts.padTokenId}`);
  const multiple = opts.padToMultipleOf ?? 1;
  if (!Number.isInteger(multiple) || multiple < 1) throw new AlignkitError(`collate: padToMultipleOf must be a positive integer, got ${multiple}`);
  const left = (opts.padSide ?? 'right') === 'left';
  let longest = 0;
  rows.forEach((r, b) => {
    if (r.inputIds.length !== r.labels.length) throw new AlignkitError(`collate: row ${b} has ${r.inputIds.length} ids but ${r.labels.length} labels`);
    if (r.inputIds.length === 0) throw new AlignkitError(`collate: row ${b} is empty`);
    longest = Math.max(longest, r.inputIds.length);
  });
  const B = rows.length;
  const T = Math.ceil(longest / multiple) * multiple;
  const anyPacked = rows.some(isPacked);
  const inputIds = new Int32Array(B * T).fill(opts.padTokenId);
  const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
  const attentionMask = new Int32Array(B * T);
  const positionIds = anyPacked ? new Int32Array(B * T) : null;
  const documentIds = anyPacked ? new Int32Array(B * T) : null;
  let numLossTokens = 0;
  rows.forEach((r, b) => {
    const n = r.inputIds.length;
    const pad = T - n;
    const at = b * T + (left ? pad : 0); // first real token
    inputIds.set(r.inputIds, at);
    labels.set(r.labels, at);
    attentionMask.fill(1, at, at + n);
    for (let t = 1; t < n; t++) if (r.labels[t] !== IGNORE_INDEX) numLossTokens++;
    if (positionIds && documentIds) {
      let padDoc = 1;
      if (isPacked(r)) {
        positionIds.set(r.positionIds, at);
        documentIds.set(r.documentIds, at);
        for (const d of r.documentIds) padDoc = Math.max(padDoc, d + 1);
      } else {
        for (let t = 0; t < n; t++) positionIds[at + t] = t;
      }
      const padAt = b * T + (left ? 0 : n);
      for (let t = 0; t < pad; t++) positionIds[padAt + t] = t;
      documentIds.fill(padDoc, padAt, padAt + pad);
    }
  });
  return { batch: B, seq: T, inputIds, labels, attentionMask, positionIds, documentIds, numLossTokens };
}
