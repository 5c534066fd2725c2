// The kernel interface every backend implements.
//
// Two implementations exist:
//   - `js`     (src/backend/js/): plain TypeScript loops, the obviously-correct reference. It is generic
//              over Float32Array and Float64Array so gradient checks can run in float64.
//   - `native` (native/src/*.cc via src/backend/native.ts): the fast C++ addon, Float32Array only.
// The native addon exposes functions with the *same names* taking the *same parameter objects*, so the
// native wrapper is a thin pass-through. Every kernel is tested for native-vs-js agreement.
//
// Conventions (all kernels):
//   - Row-major, contiguous unless a leading dimension / stride is given.
//   - Outputs are OVERWRITTEN unless the field doc says "accumulates".
//   - Every array must be at least as long as the extent the dims imply; kernels validate this and throw
//     a RangeError naming the kernel and the field (never read or write out of bounds).
//   - Results must not depend on the number of threads (reductions use a fixed order).

export type FloatArray = Float32Array | Float64Array;

/** C_b = alpha * op(A_b) @ op(B_b) + beta * C_b for b in [0, batch). op(A) is [M,K], op(B) is [K,N]. */
export interface GemmParams {
  transA: boolean; // if true, A_b is stored [K, M] (element (i,k) at a[k*lda + i]); else [M, K] at a[i*lda + k]
  transB: boolean; // if true, B_b is stored [N, K] (element (k,j) at b[j*ldb + k]); else [K, N] at b[k*ldb + j]
  m: number;
  n: number;
  k: number;
  alpha: number;
  a: FloatArray;
  lda: number;
  strideA: number; // elements between consecutive batch matrices of A (0 = broadcast the same A)
  b: FloatArray;
  ldb: number;
  strideB: number;
  beta: number; // beta == 0 means C is write-only (NaNs in C are ignored, as in BLAS)
  c: FloatArray;
  ldc: number;
  strideC: number;
  batch: number;
}

/**
 * Fused scaled-dot-product attention with grouped-query heads.
 *   q   [B, Hq,  T, D]      k, v [B, Hkv, S, D]      out [B, Hq, T, D]      lse [B, Hq, T]
 * Hq must be a multiple of Hkv; query head h reads kv head floor(h / (Hq / Hkv)).
 * Query row i sits at absolute position i + (S - T) (so a KV cache of S keys with T new queries works).
 * Key j is visible to query i iff all hold:
 *   - !causal || j <= i + (S - T)
 *   - !keyMask || keyMask[b*S + j] != 0          (padding mask, 1 = keep)
 *   - !docIds  || docIds[b*S + i + (S-T)] == docIds[b*S + j]   (packed documents; docIds covers all S)
 * A query with no visible key gets out = 0 and lse = -Infinity (and zero gradients).
 * lse is the natural-log log-sum-exp of the scaled scores (saved for the backward pass).
 * Implementations never materialise more than one [T, S] score block per (batch, head) at a time.
 */
export interface AttentionParams {
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  out: FloatArray;
  lse: FloatArray;
  batch: number;
  headsQ: number;
  headsKV: number;
  seqQ: number; // T
  seqK: number; // S >= T when causal
  headDim: number; // D
  scale: number; // usually 1/sqrt(D)
  causal: boolean;
  keyMask?: Uint8Array | null;
  docIds?: Int32Array | null;
}

/** Backward of attentionForward. dq, dk, dv are overwritten. out and lse are the forward's outputs. */
export interface AttentionBackwardParams extends AttentionParams {
  dout: FloatArray; // [B, Hq, T, D]
  dq: FloatArray; // [B, Hq, T, D]
  dk: FloatArray; // [B, Hkv, S, D]
  dv: FloatArray; // [B, Hkv, S, D]
}

/** y = x / sqrt(mean(x^2) + eps) * weight.   x, y [rows, dim]; weight [dim]; rstd [rows] (saved). */
export interface RmsNormParams {
  x: FloatArray;
  weight: FloatArray;
  y: FloatArray;
  rstd: FloatArray;
  rows: number;
  dim: number;
  eps: number;
}
/** dx overwritten [rows, dim]; dweight ACCUMULATES [dim]. */
export interface RmsNormBackwardParams {
  x: FloatArray;
  weight: FloatArray;
  rstd: FloatArray;
  dy: FloatArray;
  dx: FloatArray;
  dweight: FloatArray;
  rows: number;
  dim: number;
}

/** y = (x - mean) * rstd * weight + bias.  mean, rstd [rows] saved. bias may be null. */
export interface LayerNormParams {
  x: FloatArray;
  weight: FloatArray;
  bias: FloatArray | null;
  y: FloatArray;
  mean: FloatArray;
  rstd: FloatArray;
  rows: number;
  dim: number;
  eps: number;
}
/** dx overwritten; dweight and dbias ACCUMULATE (dbias may be null). */
export interface LayerNormBackwardParams {
  x: FloatArray;
  weight: FloatArray;
  mean: FloatArray;
  rstd: FloatArray;
  dy: FloatArray;
  dx: FloatArray;
  dweight: FloatArray;
  dbias: FloatArray | null;
  rows: number;
  dim: number;
}

/** Softmax / log-softmax over the last dim of x [rows, dim]. */
export interface SoftmaxParams {
  x: FloatArray;
  y: FloatArray;
  rows: number;
  dim: number;
  log: boolean;
}
/** dx = softmax: y*(dy - sum(dy*y)); log-softmax: dy - exp(y)*sum(dy). dx overwritten. */
export interface SoftmaxBackwardParams {
  y: FloatArray;
  dy: FloatArray;
  dx: FloatArray;
  rows: number;
  dim: number;
  log: boolean;
}

/**
 * Rotary position embedding, out-of-place.  x, out [B, H, T, D] (out may alias x).
 * Only the first `rotaryDim` features of each head rotate (rotaryDim even, <= D); the rest are copied.
 * cos, sin: tables [maxPos, rotaryDim/2]; pair p rotates by angle table[pos, p].
 * positions: Int32Array [B, T] (absolute position of each token; respects left padding).
 * Layouts:
 *   - interleaved = false (GPT-NeoX / HF Llama "rotate_half"): pair p = (x[p], x[p + rotaryDim/2])
 *   - interleaved = true  (GPT-J / Meta original):             pair p = (x[2p], x[2p+1])
 * For a pair (a, b): a' = a*cos - b*sin, b' = a*sin + b*cos.  inverse = true rotates by -angle
 * (that is the backward pass: dx = rope(dy, inverse)).
 */
export interface RopeParams {
  x: FloatArray;
  out: FloatArray;
  cos: FloatArray;
  sin: FloatArray;
  positions: Int32Array;
  maxPos: number;
  batch: number;
  heads: number;
  seq: number;
  headDim: number;
  rotaryDim: number;
  interleaved: boolean;
  inverse: boolean;
}

/**
 * Fused chunked "linear + log-softmax + gather": per-token log-probabilities of target ids without ever
 * materialising the full [N, V] logits (at most `chunk` rows of logits live at once).
 *   hidden [N, H], weight [V, H] (an nn.Linear / tied embedding layout), bias [V] or null,
 *   targets Int32Array [N]: an id in [0, V) or a negative value (ignored: logprob 0, lse still written,
 *   zero gradient).
 *   logprob [N] out: logits[t] - logsumexp(logits), where logits = hidden @ weight^T + bias, divided by
 *   `temperature` before the softmax (1 = none).
 *   lse [N] out (saved for backward), entropy [N] out or null (entropy of the softmax distribution).
 */
export interface LinearLogprobParams {
  hidden: FloatArray;
  weight: FloatArray;
  bias: FloatArray | null;
  targets: Int32Array;
  logprob: FloatArray;
  lse: FloatArray;
  entropy: FloatArray | null;
  n: number;
  hiddenDim: number;
  vocab: number;
  temperature: number;
  chunk: number; // rows per chunk; 0 = implementation default
}
/**
 * Backward: given dlogprob [N], dlogits = dlogprob * (onehot(target) - softmax) / temperature.
 * dhidden [N, H] OVERWRITTEN = dlogits @ weight; dweight [V, H] ACCUMULATES dlogits^T @ hidden;
 * dbias [V] ACCUMULATES (may be null). dentropy not supported (entropy is a metric).
 */
export interface LinearLogprobBackwardParams {
  hidden: FloatArray;
  weight: FloatArray;
  bias: FloatArray | null;
  targets: Int32Array;
  lse: FloatArray;
  dlogprob: FloatArray;
  dhidden: FloatArray;
  dweight: FloatArray | null;
  dbias: FloatArray | null;
  n: number;
  hiddenDim: number;
  vocab: number;
  temperature: number;
  chunk: number;
}

/**
 * Forward and backward in ONE pass over the logits, for losses whose upstream gradient is known before the
 * forward (cross-entropy: dlogprob = -1/count per counted token). Writes logprob/lse/entropy exactly as
 * linearLogprobForward and dhidden (overwritten) / dweight, dbias (ACCUMULATE) exactly as
 * linearLogprobBackward would with this dlogprob — but computes each chunk's logits once instead of twice.
 */
export interface LinearLogprobFusedParams extends LinearLogprobParams {
  dlogprob: FloatArray;
  dhidden: FloatArray;
  dweight: FloatArray | null;
  dbias: FloatArray | null;
}

/** PyTorch torch.optim.AdamW semantics (decoupled weight decay, bias correction), in place. */
export interface AdamWParams {
  param: FloatArray;
  grad: FloatArray;
  expAvg: FloatArray;
  expAvgSq: FloatArray;
  n: number;
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  step: number; // 1-based step count AFTER increment (as torch's state['step'])
}

/** PyTorch torch.optim.SGD semantics (momentum, dampening, nesterov, L2 weight decay), in place. */
export interface SgdParams {
  param: FloatArray;
  grad: FloatArray;
  momentumBuffer: FloatArray | null; // required when momentum != 0
  n: number;
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  firstStep: boolean; // torch initialises the buffer to the (decayed) grad on the first step
}

/** Counter-based RNG (Philox4x32-10). Element i of a fill uses counter (offset + i), so results do not
 * depend on threads or chunking, and (seed, offset) pairs can be reserved by the caller. */
export interface RandomFillParams {
  out: FloatArray;
  n: number;
  seed: number; // uint32 seed (key = [seed, seedHi])
  seedHi: number;
  offset: number; // counter start (a non-negative integer < 2^53)
  kind: 'uniform' | 'normal';
  a: number; // uniform: low,  normal: mean
  b: number; // uniform: high, normal: std
}

/** Inverted dropout: out = keep ? x / (1-p) : 0; mask[i] = keep (1) or 0. Keep iff uniform(i) >= p. */
export interface DropoutParams {
  x: FloatArray;
  out: FloatArray;
  mask: Uint8Array;
  n: number;
  p: number;
  seed: number;
  seedHi: number;
  offset: number;
}

export type UnaryOp = 'exp' | 'log' | 'tanh' | 'sigmoid' | 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu' | 'sqrt' | 'rsqrt' | 'neg' | 'abs';
/** y = op(x), n elements. */
export interface UnaryParams {
  op: UnaryOp;
  x: FloatArray;
  y: FloatArray;
  n: number;
}
/** dx = dy * op'(x) (x is the forward INPUT; y the forward output, used where cheaper). dx overwritten. */
export interface UnaryBackwardParams {
  op: UnaryOp;
  x: FloatArray;
  y: FloatArray;
  dy: FloatArray;
  dx: FloatArray;
  n: number;
}

export type BinaryOp = 'add' | 'sub' | 'mul';
/** out[i] = a[i] (op) b[i] for n elements (same shapes, contiguous). out may alias a or b. */
export interface BinaryParams {
  op: BinaryOp;
  a: FloatArray;
  b: FloatArray;
  out: FloatArray;
  n: number;
}

/**
 * Moves rows of `headDim` floats between the projection layout [B, T, G, H, D] ("tokens first") and the
 * attention layout [G, B, H, T, D] ("heads first"). toHeadsFirst: src is tokens-first, dst heads-first;
 * otherwise the reverse. dst is overwritten; src and dst must not overlap.
 */
export interface PermuteHeadsParams {
  src: FloatArray;
  dst: FloatArray;
  batch: number;
  seq: number;
  groups: number;
  heads: number;
  headDim: number;
  toHeadsFirst: boolean;
}

export interface BackendInfo {
  name: 'native' | 'js';
  isa: string; // 'avx512' | 'avx2' | 'portable' | 'js'
  threads: number;
}

export interface Backend {
  readonly name: 'native' | 'js';
  info(): BackendInfo;
  /** A zero-filled float buffer of n elements (native: 64-byte aligned, natively owned). */
  alloc(n: number): FloatArray;
  /** Like alloc, but the contents are unspecified (native skips zero-filling): for outputs a kernel overwrites. */
  allocUninit(n: number): FloatArray;
  /** Releases a buffer from alloc() deterministically. The array must not be used afterwards. */
  free(a: FloatArray): void;

  sgemm(p: GemmParams): void;
  attentionForward(p: AttentionParams): void;
  attentionBackward(p: AttentionBackwardParams): void;
  rmsnormForward(p: RmsNormParams): void;
  rmsnormBackward(p: RmsNormBackwardParams): void;
  layernormForward(p: LayerNormParams): void;
  layernormBackward(p: LayerNormBackwardParams): void;
  softmaxForward(p: SoftmaxParams): void;
  softmaxBackward(p: SoftmaxBackwardParams): void;
  rope(p: RopeParams): void;
  linearLogprobForward(p: LinearLogprobParams): void;
  linearLogprobBackward(p: LinearLogprobBackwardParams): void;
  linearLogprobFused(p: LinearLogprobFusedParams): void;
  adamw(p: AdamWParams): void;
  sgd(p: SgdParams): void;
  /** sum of x[i]^2 over n elements, accumulated in float64 in a thread-count-independent order. */
  sumSquares(x: FloatArray, n: number): number;
  /** x[i] *= s, in place. */
  scaleInPlace(x: FloatArray, n: number, s: number): void;
  randomFill(p: RandomFillParams): void;
  dropout(p: DropoutParams): void;
  unary(p: UnaryParams): void;
  unaryBackward(p: UnaryBackwardParams): void;
  binary(p: BinaryParams): void;
  permuteHeads(p: PermuteHeadsParams): void;
}
