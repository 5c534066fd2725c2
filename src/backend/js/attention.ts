// Reference scaled-dot-product attention with grouped-query heads: forward and backward.
//
// Plain per-row loops, generic over Float32Array / Float64Array storage (float64 is used for finite-difference
// gradient checks). Arithmetic is done in JS doubles and rounded only when stored.
//
//   q    [B, Hq,  T, D]     k, v [B, Hkv, S, D]     out [B, Hq, T, D]     lse [B, Hq, T]
//   query head h reads kv head floor(h / (Hq / Hkv)); query row i sits at absolute position i + (S - T).
//
// Forward, per (b, h, i):   s_j = scale * q_i . k_j   over visible j
//                           lse_i = log sum_j exp(s_j),  p_j = exp(s_j - lse_i),  out_i = sum_j p_j v_j
// Backward, per (b, h, i):  dp_j = dout_i . v_j,  D_i = dout_i . out_i,  ds_j = p_j (dp_j - D_i)
//                           dq_i = scale sum_j ds_j k_j,  dk_j += scale ds_j q_i,  dv_j += p_j dout_i
// (D_i = sum_j p_j dp_j because out_i = sum_j p_j v_j: that is the softmax backward without the [T, S] matrix.)
import type { AttentionBackwardParams, AttentionParams, FloatArray } from '../types.ts';

interface Shape {
  B: number;
  Hq: number;
  Hkv: number;
  T: number;
  S: number;
  D: number;
  group: number; // Hq / Hkv: query heads per kv head
  offset: number; // S - T: absolute position of query row 0
}

function fail(kernel: string, msg: string): never {
  throw new RangeError(`alignkit js ${kernel}: ${msg}`);
}

function checkInt(kernel: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) fail(kernel, `field '${name}' must be an integer >= ${min}, got ${v}`);
}

function checkArray(kernel: string, name: string, a: FloatArray | undefined | null, need: number): void {
  if (!(a instanceof Float32Array) && !(a instanceof Float64Array)) fail(kernel, `field '${name}' must be a Float32Array or Float64Array`);
  if (a.length < need) fail(kernel, `field '${name}' has ${a.length} elements but the shape needs ${need}`);
}

/** Validates dims, masks and the forward arrays; returns the shape. */
function validate(kernel: string, p: AttentionParams): Shape {
  checkInt(kernel, 'batch', p.batch, 0);
  checkInt(kernel, 'headsQ', p.headsQ, 1);
  checkInt(kernel, 'headsKV', p.headsKV, 1);
  checkInt(kernel, 'seqQ', p.seqQ, 0);
  checkInt(kernel, 'seqK', p.seqK, 0);
  checkInt(kernel, 'headDim', p.headDim, 1);
  if (p.headsQ % p.headsKV !== 0) fail(kernel, `headsQ (${p.headsQ}) must be a multiple of headsKV (${p.headsKV})`);
  if (typeof p.scale !== 'number' || !Number.isFinite(p.scale)) fail(kernel, `field 'scale' must be a finite number`);
  if (p.causal && p.seqK < p.seqQ) fail(kernel, `causal attention needs seqK >= seqQ (got seqK ${p.seqK} < seqQ ${p.seqQ})`);
  if (p.docIds && p.seqK < p.seqQ) fail(kernel, `docIds needs seqK >= seqQ (queries are the last seqQ of the seqK positions)`);
  const { batch: B, headsQ: Hq, headsKV: Hkv, seqQ: T, seqK: S, headDim: D } = p;
  checkArray(kernel, 'q', p.q, B * Hq * T * D);
  checkArray(kernel, 'k', p.k, B * Hkv * S * D);
  checkArray(kernel, 'v', p.v, B * Hkv * S * D);
  checkArray(kernel, 'out', p.out, B * Hq * T * D);
  checkArray(kernel, 'lse', p.lse, B * Hq * T);
  if (p.keyMask != null) {
    if (!(p.keyMask instanceof Uint8Array)) fail(kernel, `field 'keyMask' must be a Uint8Array`);
    if (p.keyMask.length < B * S) fail(kernel, `field 'keyMask' has ${p.keyMask.length} elements but the shape needs ${B * S}`);
  }
  if (p.docIds != null) {
    if (!(p.docIds instanceof Int32Array)) fail(kernel, `field 'docIds' must be an Int32Array`);
    if (p.docIds.length < B * S) fail(kernel, `field 'docIds' has ${p.docIds.length} elements but the shape needs ${B * S}`);
  }
  return { B, Hq, Hkv, T, S, D, group: Hq / Hkv, offset: S - T };
}

/** Whether key j is visible to query row i of batch b (the contract's three conditions). */
function visible(p: AttentionParams, sh: Shape, b: number, i: number, j: number): boolean {
  const pos = i + sh.offset;
  if (p.causal && j > pos) return false;
  if (p.keyMask && p.keyMask[b * sh.S + j] === 0) return false;
  if (p.docIds && p.docIds[b * sh.S + pos] !== p.docIds[b * sh.S + j]) return false;
  return true;
}

export function attentionForward(p: AttentionParams): void {
  const sh = validate('attentionForward', p);
  const { B, Hq, Hkv, T, S, D, group } = sh;
  const { q, k, v, out, lse, scale } = p;
  const s = new Float64Array(S); // one row of scores at a time
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * S * D;
      for (let i = 0; i < T; i++) {
        const row = (b * Hq + h) * T + i;
        const qo = row * D;
        // scores of the visible keys; the max keeps exp() in range
        let m = -Infinity;
        for (let j = 0; j < S; j++) {
          if (!visible(p, sh, b, i, j)) {
            s[j] = -Infinity;
            continue;
          }
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[kvBase + j * D + d];
          s[j] = dot * scale;
          if (s[j] > m) m = s[j];
        }
        if (m === -Infinity) {
          // no visible key: defined as out = 0, lse = -Infinity
          for (let d = 0; d < D; d++) out[qo + d] = 0;
          lse[row] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < S; j++) sum += s[j] === -Infinity ? 0 : Math.exp(s[j] - m);
        const rowLse = m + Math.log(sum);
        const acc = new Float64Array(D);
        for (let j = 0; j < S; j++) {
          if (s[j] === -Infinity) continue;
          const pj = Math.exp(s[j] - rowLse);
          for (let d = 0; d < D; d++) acc[d] += pj * v[kvBase + j * D + d];
        }
        for (let d = 0; d < D; d++) out[qo + d] = acc[d];
        lse[row] = rowLse;
      }
    }
  }
}

export function attentionBackward(p: AttentionBackwardParams): void {
  const kernel = 'attentionBackward';
  const sh = validate(kernel, p);
  const { B, Hq, Hkv, T, S, D, group } = sh;
  checkArray(kernel, 'dout', p.dout, B * Hq * T * D);
  checkArray(kernel, 'dq', p.dq, B * Hq * T * D);
  checkArray(kernel, 'dk', p.dk, B * Hkv * S * D);
  checkArray(kernel, 'dv', p.dv, B * Hkv * S * D);
  const { q, k, v, out, lse, dout, dq, dk, dv, scale } = p;
  // dk / dv collect contributions from every query of the group: accumulate in float64, store once
  const dkAcc = new Float64Array(B * Hkv * S * D);
  const dvAcc = new Float64Array(B * Hkv * S * D);
  const pr = new Float64Array(S);
  const ds = new Float64Array(S);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < Hq; h++) {
      const kvBase = (b * Hkv + Math.floor(h / group)) * S * D;
      for (let i = 0; i < T; i++) {
        const row = (b * Hq + h) * T + i;
        const qo = row * D;
        const rowLse = lse[row];
        if (rowLse === -Infinity) {
          // a query that saw nothing contributes nothing (and its own gradient is zero)
          for (let d = 0; d < D; d++) dq[qo + d] = 0;
          continue;
        }
        let Di = 0;
        for (let d = 0; d < D; d++) Di += dout[qo + d] * out[qo + d];
        for (let j = 0; j < S; j++) {
          if (!visible(p, sh, b, i, j)) {
            pr[j] = 0;
            ds[j] = 0;
            continue;
          }
          let dot = 0;
          let dp = 0;
          for (let d = 0; d < D; d++) {
            dot += q[qo + d] * k[kvBase + j * D + d];
            dp += dout[qo + d] * v[kvBase + j * D + d];
          }
          pr[j] = Math.exp(dot * scale - rowLse); // the softmax probability, from the saved lse
          ds[j] = pr[j] * (dp - Di);
        }
        for (let d = 0; d < D; d++) {
          let acc = 0;
          for (let j = 0; j < S; j++) acc += ds[j] * k[kvBase + j * D + d];
          dq[qo + d] = acc * scale;
        }
        for (let j = 0; j < S; j++) {
          if (pr[j] === 0 && ds[j] === 0) continue;
          const ko = kvBase + j * D;
          for (let d = 0; d < D; d++) {
            dkAcc[ko + d] += scale * ds[j] * q[qo + d];
            dvAcc[ko + d] += pr[j] * dout[qo + d];
          }
        }
      }
    }
  }
  const n = B * Hkv * S * D;
  for (let x = 0; x < n; x++) {
    dk[x] = dkAcc[x];
    dv[x] = dvAcc[x];
  }
}
