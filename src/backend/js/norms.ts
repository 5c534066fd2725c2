// Reference RMSNorm, LayerNorm and (log-)softmax over the last dimension, forward and backward.
// Plain loops, generic over Float32Array / Float64Array. Sums are accumulated in JS numbers (float64)
// and rounded once when stored, so this is at least as accurate as the native float32 kernels.
import type * as K from '../types.ts';
import type { FloatArray } from '../types.ts';

function fail(kernel: string, msg: string): never {
  throw new RangeError(`alignkit js ${kernel}: ${msg}`);
}

function dims(kernel: string, rows: number, dim: number): void {
  if (!Number.isInteger(rows) || rows < 0) fail(kernel, `rows must be a non-negative integer, got ${rows}`);
  if (!Number.isInteger(dim) || dim < 1) fail(kernel, `dim must be a positive integer, got ${dim}`);
}

function need(kernel: string, field: string, a: FloatArray | null | undefined, n: number): void {
  if (!(a instanceof Float32Array || a instanceof Float64Array)) fail(kernel, `field '${field}' must be a Float32Array or Float64Array`);
  if (a.length < n) fail(kernel, `field '${field}' has ${a.length} elements but the shape needs ${n}`);
}

// ------------------------------------------------------------------------------------------------ RMSNorm
// y[r, j] = x[r, j] * rstd[r] * w[j],   rstd[r] = 1 / sqrt(mean_j(x[r, j]^2) + eps)

export function rmsnormForward(p: K.RmsNormParams): void {
  const { x, weight, y, rstd, rows, dim, eps } = p;
  const k = 'rmsnormForward';
  dims(k, rows, dim);
  need(k, 'x', x, rows * dim);
  need(k, 'weight', weight, dim);
  need(k, 'y', y, rows * dim);
  need(k, 'rstd', rstd, rows);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += x[o + j] * x[o + j];
    const s = 1 / Math.sqrt(ss / dim + eps);
    rstd[r] = s;
    const sr = rstd[r]; // use the stored (possibly float32-rounded) value, as the backward will
    for (let j = 0; j < dim; j++) y[o + j] = x[o + j] * sr * weight[j];
  }
}

// With xhat = x * rstd (rstd depends on x):
//   dx[j] = rstd * (dy[j] w[j]) - rstd^3 / dim * x[j] * sum_i(dy[i] w[i] x[i])
//   dweight[j] += sum_r dy[r, j] * xhat[r, j]
export function rmsnormBackward(p: K.RmsNormBackwardParams): void {
  const { x, weight, rstd, dy, dx, dweight, rows, dim } = p;
  const k = 'rmsnormBackward';
  dims(k, rows, dim);
  need(k, 'x', x, rows * dim);
  need(k, 'weight', weight, dim);
  need(k, 'rstd', rstd, rows);
  need(k, 'dy', dy, rows * dim);
  need(k, 'dx', dx, rows * dim);
  need(k, 'dweight', dweight, dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const s = rstd[r];
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += dy[o + j] * weight[j] * x[o + j];
    const c = (s * s * s * dot) / dim;
    for (let j = 0; j < dim; j++) {
      const g = dy[o + j];
      dweight[j] += g * x[o + j] * s;
      dx[o + j] = s * g * weight[j] - c * x[o + j];
    }
  }
}

// ------------------------------------------------------------------------------------------------ LayerNorm
// y[r, j] = (x[r, j] - mean[r]) * rstd[r] * w[j] + b[j],  rstd = 1 / sqrt(biased variance + eps)

export function layernormForward(p: K.LayerNormParams): void {
  const { x, weight, bias, y, mean, rstd, rows, dim, eps } = p;
  const k = 'layernormForward';
  dims(k, rows, dim);
  need(k, 'x', x, rows * dim);
  need(k, 'weight', weight, dim);
  if (bias !== null && bias !== undefined) need(k, 'bias', bias, dim);
  need(k, 'y', y, rows * dim);
  need(k, 'mean', mean, rows);
  need(k, 'rstd', rstd, rows);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += x[o + j];
    const m = sum / dim;
    let v = 0; // two-pass variance: no cancellation
    for (let j = 0; j < dim; j++) v += (x[o + j] - m) * (x[o + j] - m);
    mean[r] = m;
    rstd[r] = 1 / Math.sqrt(v / dim + eps);
    const ms = mean[r];
    const s = rstd[r];
    for (let j = 0; j < dim; j++) y[o + j] = (x[o + j] - ms) * s * weight[j] + (bias ? bias[j] : 0);
  }
}

// With xhat = (x - mean) * rstd and g = dy * w:
//   dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat))
//   dweight += sum_r dy * xhat,   dbias += sum_r dy
export function layernormBackward(p: K.LayerNormBackwardParams): void {
  const { x, weight, mean, rstd, dy, dx, dweight, dbias, rows, dim } = p;
  const k = 'layernormBackward';
  dims(k, rows, dim);
  need(k, 'x', x, rows * dim);
  need(k, 'weight', weight, dim);
  need(k, 'mean', mean, rows);
  need(k, 'rstd', rstd, rows);
  need(k, 'dy', dy, rows * dim);
  need(k, 'dx', dx, rows * dim);
  need(k, 'dweight', dweight, dim);
  if (dbias !== null && dbias !== undefined) need(k, 'dbias', dbias, dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const m = mean[r];
    const s = rstd[r];
    let gsum = 0;
    let gxsum = 0;
    for (let j = 0; j < dim; j++) {
      const g = dy[o + j] * weight[j];
      gsum += g;
      gxsum += g * (x[o + j] - m) * s;
    }
    const a = gsum / dim;
    const b = gxsum / dim;
    for (let j = 0; j < dim; j++) {
      const xhat = (x[o + j] - m) * s;
      const d = dy[o + j];
      dweight[j] += d * xhat;
      if (dbias) dbias[j] += d;
      dx[o + j] = s * (d * weight[j] - a - xhat * b);
    }
  }
}

// ------------------------------------------------------------------------------------------------ softmax
// softmax: y = exp(x - max) / sum(exp(x - max));  log-softmax: y = x - max - log(sum(exp(x - max))).
// Subtracting the row max keeps exp() from overflowing.

export function softmaxForward(p: K.SoftmaxParams): void {
  const { x, y, rows, dim, log } = p;
  const k = 'softmaxForward';
  dims(k, rows, dim);
  need(k, 'x', x, rows * dim);
  need(k, 'y', y, rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let m = -Infinity;
    for (let j = 0; j < dim; j++) m = Math.max(m, x[o + j]);
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += Math.exp(x[o + j] - m);
    if (log) {
      const l = m + Math.log(sum);
      for (let j = 0; j < dim; j++) y[o + j] = x[o + j] - l;
    } else {
      for (let j = 0; j < dim; j++) y[o + j] = Math.exp(x[o + j] - m) / sum;
    }
  }
}

// softmax: dx = y * (dy - sum(dy * y));  log-softmax: dx = dy - exp(y) * sum(dy).
export function softmaxBackward(p: K.SoftmaxBackwardParams): void {
  const { y, dy, dx, rows, dim, log } = p;
  const k = 'softmaxBackward';
  dims(k, rows, dim);
  need(k, 'y', y, rows * dim);
  need(k, 'dy', dy, rows * dim);
  need(k, 'dx', dx, rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    if (log) {
      for (let j = 0; j < dim; j++) s += dy[o + j];
      for (let j = 0; j < dim; j++) dx[o + j] = dy[o + j] - Math.exp(y[o + j]) * s;
    } else {
      for (let j = 0; j < dim; j++) s += dy[o + j] * y[o + j];
      for (let j = 0; j < dim; j++) dx[o + j] = y[o + j] * (dy[o + j] - s);
    }
  }
}
