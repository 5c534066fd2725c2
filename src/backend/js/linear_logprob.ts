// Reference "linear + log-softmax + gather": per-token log-probabilities of target ids.
//   hidden [N, H], weight [V, H], bias [V] | null, targets [N] (negative = ignored)
//   z[n, v] = (hidden[n] . weight[v] + bias[v]) / temperature
//   lse[n] = logsumexp_v z[n, v];  logprob[n] = z[n, target[n]] - lse[n];  entropy[n] = -sum_v p log p
// The reference works one row at a time (a [V] scratch row), which trivially respects the "never
// materialise [N, V]" rule, so `chunk` only gets validated here. Sums run in JS numbers (float64).
import type * as K from '../types.ts';
import type { FloatArray } from '../types.ts';

function fail(kernel: string, msg: string): never {
  throw new RangeError(`alignkit js ${kernel}: ${msg}`);
}

function need(kernel: string, field: string, a: FloatArray | null | undefined, n: number): void {
  if (!(a instanceof Float32Array || a instanceof Float64Array)) fail(kernel, `field '${field}' must be a Float32Array or Float64Array`);
  if (a.length < n) fail(kernel, `field '${field}' has ${a.length} elements but the shape needs ${n}`);
}

interface Shape {
  n: number;
  hiddenDim: number;
  vocab: number;
  temperature: number;
  chunk: number;
  targets: Int32Array;
}

// Checks the scalar fields and the targets, which are shared by forward and backward.
function checkShape(k: string, p: Shape): void {
  const int = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min) fail(k, `field '${name}' must be an integer >= ${min}, got ${v}`);
  };
  int('n', p.n, 0);
  int('hiddenDim', p.hiddenDim, 1);
  int('vocab', p.vocab, 1);
  int('chunk', p.chunk, 0);
  if (!(Number.isFinite(p.temperature) && p.temperature > 0)) fail(k, `temperature must be a finite number > 0, got ${p.temperature}`);
  if (!(p.targets instanceof Int32Array)) fail(k, `field 'targets' must be an Int32Array`);
  if (p.targets.length < p.n) fail(k, `field 'targets' has ${p.targets.length} elements but the shape needs ${p.n}`);
  for (let i = 0; i < p.n; i++) {
    if (p.targets[i] >= p.vocab) fail(k, `targets[${i}] = ${p.targets[i]} is out of range for vocab ${p.vocab}`);
  }
}

// z[v] for one row, as float64.
function rowLogits(p: K.LinearLogprobParams | K.LinearLogprobBackwardParams, row: number, z: Float64Array): void {
  const { hidden, weight, bias, hiddenDim: H, vocab: V, temperature } = p;
  const ho = row * H;
  for (let v = 0; v < V; v++) {
    const wo = v * H;
    let s = 0;
    for (let h = 0; h < H; h++) s += hidden[ho + h] * weight[wo + h];
    if (bias) s += bias[v];
    z[v] = s / temperature;
  }
}

// Length checks, shared by forward / fused and backward / fused.
function checkForward(k: string, p: K.LinearLogprobParams): void {
  const { n: N, hiddenDim: H, vocab: V, bias, entropy } = p;
  need(k, 'hidden', p.hidden, N * H);
  need(k, 'weight', p.weight, V * H);
  if (bias !== null && bias !== undefined) need(k, 'bias', bias, V);
  need(k, 'logprob', p.logprob, N);
  need(k, 'lse', p.lse, N);
  if (entropy !== null && entropy !== undefined) need(k, 'entropy', entropy, N);
}

function checkBackward(k: string, p: K.LinearLogprobBackwardParams): void {
  const { n: N, hiddenDim: H, vocab: V, bias, dweight, dbias } = p;
  need(k, 'hidden', p.hidden, N * H);
  need(k, 'weight', p.weight, V * H);
  if (bias !== null && bias !== undefined) need(k, 'bias', bias, V);
  need(k, 'lse', p.lse, N);
  need(k, 'dlogprob', p.dlogprob, N);
  need(k, 'dhidden', p.dhidden, N * H);
  if (dweight !== null && dweight !== undefined) need(k, 'dweight', dweight, V * H);
  if (dbias !== null && dbias !== undefined) need(k, 'dbias', dbias, V);
}

// Forward outputs of row i from its logits z: lse, logprob, entropy.
function forwardRow(p: K.LinearLogprobParams, i: number, z: Float64Array): void {
  const { vocab: V, targets, logprob, lse, entropy } = p;
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, z[v]);
  // With d = z - m, e = exp(d), S = sum e:  lse = m + log S,  entropy = log S - sum(e d) / S.
  // (e == 0 terms are skipped so a -Infinity logit contributes 0, not 0 * -Infinity.)
  let S = 0;
  let ed = 0;
  for (let v = 0; v < V; v++) {
    const d = z[v] - m;
    const e = Math.exp(d);
    S += e;
    if (e > 0) ed += e * d;
  }
  const l = m + Math.log(S);
  lse[i] = l;
  const t = targets[i];
  logprob[i] = t >= 0 ? z[t] - l : 0;
  if (entropy) entropy[i] = Math.log(S) - ed / S;
}

// Gradients of row i from its logits z and the saved lse[i] (as stored, so float32 storage rounds it
// the same way for the backward and the fused kernel). dh is a [H] scratch row.
function backwardRow(p: K.LinearLogprobBackwardParams, i: number, z: Float64Array, dh: Float64Array): void {
  const { hiddenDim: H, vocab: V, targets, lse, dlogprob, dhidden, dweight, dbias, hidden, weight, temperature } = p;
  const ho = i * H;
  const t = targets[i];
  if (t < 0) {
    for (let h = 0; h < H; h++) dhidden[ho + h] = 0; // ignored token: zero gradient
    return;
  }
  const c = dlogprob[i] / temperature;
  dh.fill(0);
  for (let v = 0; v < V; v++) {
    const g = c * ((v === t ? 1 : 0) - Math.exp(z[v] - lse[i])); // dlogits[i, v]
    if (g === 0) continue;
    const wo = v * H;
    for (let h = 0; h < H; h++) dh[h] += g * weight[wo + h];
    if (dweight) for (let h = 0; h < H; h++) dweight[wo + h] += g * hidden[ho + h];
    if (dbias) dbias[v] += g;
  }
  for (let h = 0; h < H; h++) dhidden[ho + h] = dh[h];
}

export function linearLogprobForward(p: K.LinearLogprobParams): void {
  const k = 'linearLogprobForward';
  checkShape(k, p);
  checkForward(k, p);
  const z = new Float64Array(p.vocab);
  for (let i = 0; i < p.n; i++) {
    rowLogits(p, i, z);
    forwardRow(p, i, z);
  }
}

// dlogits[v] = dlogprob * (onehot(target)[v] - softmax(z)[v]) / temperature, with softmax from the saved lse.
// dhidden = dlogits @ weight (overwritten), dweight += dlogits^T @ hidden, dbias += dlogits.
export function linearLogprobBackward(p: K.LinearLogprobBackwardParams): void {
  const k = 'linearLogprobBackward';
  checkShape(k, p);
  checkBackward(k, p);
  const z = new Float64Array(p.vocab);
  const dh = new Float64Array(p.hiddenDim);
  for (let i = 0; i < p.n; i++) {
    if (p.targets[i] >= 0) rowLogits(p, i, z); // (ignored rows need no logits)
    backwardRow(p, i, z, dh);
  }
}

// One pass: each row's logits are computed once, then used for its forward outputs and (with the lse
// just written) its gradients. Same rows in the same order as forward-then-backward, so the results are
// identical to that composition.
export function linearLogprobFused(p: K.LinearLogprobFusedParams): void {
  const k = 'linearLogprobFused';
  checkShape(k, p);
  checkForward(k, p);
  checkBackward(k, p);
  const z = new Float64Array(p.vocab);
  const dh = new Float64Array(p.hiddenDim);
  for (let i = 0; i < p.n; i++) {
    rowLogits(p, i, z);
    forwardRow(p, i, z);
    backwardRow(p, i, z, dh);
  }
}
