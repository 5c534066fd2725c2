// Position ids and the padding mask of a forward call, derived the way transformers' generate() does it.

import { DTypeError, ShapeError, fmtShape, intTensor, type Tensor } from '../tensor/index.ts';

export interface PreparedInputs {
  batch: number;
  /** New positions in this call. */
  seq: number;
  /** Positions already in the cache. */
  past: number;
  /** [B, T] int32 position ids. */
  positions: Tensor;
  /** Largest position id (sizes rope tables). */
  maxPosition: number;
  /** [B, past + T] key mask, or null when nothing is padded. */
  keyMask: Tensor | null;
  /** [B, T] int32 document ids of packed rows, or null. */
  docIds: Tensor | null;
}

function values(t: Tensor): ArrayLike<number> {
  const d = t.data;
  if (d instanceof BigInt64Array) return Array.from(d, (x) => Number(x));
  return d as ArrayLike<number>;
}

/**
 * Validates ids / attentionMask / positionIds and fills in the defaults: without positionIds, positions are
 * cumsum(mask) - 1 over [past + T] (0 on padding), keeping the last T columns — so a left-padded row gets the
 * same positions as the unpadded sequence, as HF generate() computes them. Without a mask: past .. past+T-1.
 */
export function prepareInputs(
  op: string,
  ids: Tensor,
  past: number,
  attentionMask: Tensor | null | undefined,
  positionIds: Tensor | null | undefined,
  documentIds: Tensor | null = null,
): PreparedInputs {
  ids.live(op);
  if (ids.rank !== 2) throw new ShapeError(`${op}: ids must be [batch, seq], got ${fmtShape(ids.shape)}`);
  if (ids.dtype !== 'int32' && ids.dtype !== 'int64') throw new DTypeError(`${op}: ids must be int32, got ${ids.dtype}`);
  const [B, T] = ids.shape;
  if (T === 0) throw new ShapeError(`${op}: ids ${fmtShape(ids.shape)} has no positions`);
  const S = past + T;
  let mask: ArrayLike<number> | null = null;
  let keyMask: Tensor | null = null;
  if (attentionMask) {
    attentionMask.live(op);
    if (attentionMask.rank !== 2 || attentionMask.shape[0] !== B || attentionMask.shape[1] !== S)
      throw new ShapeError(`${op}: attentionMask ${fmtShape(attentionMask.shape)} must be [${B}, ${S}] (batch, cached + new positions)`);
    mask = values(attentionMask);
    for (let i = 0; i < mask.length; i++)
      if (!mask[i]) {
        keyMask = attentionMask;
        break;
      }
  }
  const pos = new Int32Array(B * T);
  let maxPosition = 0;
  if (positionIds) {
    positionIds.live(op);
    if (positionIds.size !== B * T || (positionIds.rank !== 2 && positionIds.rank !== 1))
      throw new ShapeError(`${op}: positionIds ${fmtShape(positionIds.shape)} must be [${B}, ${T}]`);
    if (positionIds.dtype !== 'int32' && positionIds.dtype !== 'int64') throw new DTypeError(`${op}: positionIds must be int32, got ${positionIds.dtype}`);
    const p = values(positionIds);
    for (let i = 0; i < pos.length; i++) {
      if (!(p[i] >= 0) || !Number.isSafeInteger(p[i])) throw new ShapeError(`${op}: positionIds has ${p[i]} at ${i} (must be >= 0)`);
      pos[i] = p[i];
    }
  } else if (mask) {
    for (let b = 0; b < B; b++) {
      let c = 0;
      for (let s = 0; s < S; s++) {
        const m = mask[b * S + s] ? 1 : 0;
        c += m;
        if (s >= past) pos[b * T + s - past] = m ? c - 1 : 0;
      }
    }
  } else for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = past + t;
  for (let i = 0; i < pos.length; i++) if (pos[i] > maxPosition) maxPosition = pos[i];
  if (documentIds) {
    documentIds.live(op);
    if (past > 0) throw new ShapeError(`${op}: documentIds (packed rows) cannot be combined with a KV cache`);
    if (documentIds.dtype !== 'int32') throw new DTypeError(`${op}: documentIds must be int32, got ${documentIds.dtype}`);
    if (documentIds.size !== B * T) throw new ShapeError(`${op}: documentIds ${fmtShape(documentIds.shape)} must be [${B}, ${T}]`);
  }
  return { batch: B, seq: T, past, positions: intTensor(pos, [B, T]), maxPosition, keyMask, docIds: documentIds };
}
