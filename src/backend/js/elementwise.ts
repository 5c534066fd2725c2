// Elementwise reference kernels: rotary embeddings, unary ops (forward/backward), AdamW and SGD steps,
// sumSquares / scaleInPlace, Philox4x32-10 random fills and inverted dropout.
//
// Generic over Float32Array / Float64Array. JS arithmetic is float64; storing into a Float32Array rounds
// once. Where the native kernel works in float32 step by step (the optimizers), this code rounds with
// Math.fround after every operation when the data is float32, so the two agree bit for bit: for + - * /
// and sqrt of float32 inputs, computing in double and rounding to float32 gives the float32 result.
// With Float64Array data nothing is rounded (the float64 reference used by gradient checks).
import type * as K from '../types.ts';
import type { FloatArray, UnaryOp } from '../types.ts';

// ---------------------------------------------------------------------------------------------------
// argument checks (mirroring the native Params parser: RangeError naming the kernel and the field)
function fail(kernel: string, msg: string): never {
  throw new RangeError(`alignkit js ${kernel}: ${msg}`);
}

function int(kernel: string, field: string, v: unknown, min = 0): number {
  if (typeof v !== 'number') fail(kernel, `field '${field}' must be a number`);
  if (!Number.isInteger(v)) fail(kernel, `field '${field}' must be an integer`);
  if (v < min) fail(kernel, `field '${field}' must be >= ${min}, got ${v}`);
  return v;
}

function num(kernel: string, field: string, v: unknown): number {
  if (typeof v !== 'number') fail(kernel, `field '${field}' must be a number`);
  return v;
}

function floats(kernel: string, field: string, a: unknown, need: number): FloatArray {
  if (!(a instanceof Float32Array || a instanceof Float64Array)) fail(kernel, `field '${field}' must be a Float32Array or Float64Array`);
  if (a.length < need) fail(kernel, `field '${field}' has ${a.length} elements but the shape needs ${need}`);
  return a;
}

/** Rounds to float32 when `a` stores float32, else the identity (the arithmetic of the storage type). */
function rounder(a: FloatArray): (v: number) => number {
  return a instanceof Float32Array ? Math.fround : (v: number) => v;
}

// ===================================================================================================
// RoPE.  x, out [B, H, T, D]; cos, sin [maxPos, rotaryDim/2]; positions [B, T].
// pair (a, b) -> (a c - b s, a s + b c); inverse rotates by -angle (s -> -s), which is the backward.
// ===================================================================================================
export function rope(p: K.RopeParams): void {
  const k = 'rope';
  const B = int(k, 'batch', p.batch), H = int(k, 'heads', p.heads), T = int(k, 'seq', p.seq);
  const D = int(k, 'headDim', p.headDim), R = int(k, 'rotaryDim', p.rotaryDim), maxPos = int(k, 'maxPos', p.maxPos);
  if (R % 2 !== 0) fail(k, `rotaryDim must be even, got ${R}`);
  if (R > D) fail(k, `rotaryDim (${R}) must be <= headDim (${D})`);
  const half = R / 2;
  const x = floats(k, 'x', p.x, B * H * T * D);
  const out = floats(k, 'out', p.out, B * H * T * D);
  const cos = floats(k, 'cos', p.cos, maxPos * half);
  const sin = floats(k, 'sin', p.sin, maxPos * half);
  if (!(p.positions instanceof Int32Array)) fail(k, `field 'positions' must be an Int32Array`);
  if (p.positions.length < B * T) fail(k, `field 'positions' has ${p.positions.length} elements but the shape needs ${B * T}`);
  const pos = p.positions;
  for (let i = 0; i < B * T; i++) {
    if (pos[i] < 0 || pos[i] >= maxPos) fail(k, `positions[${i}] = ${pos[i]} is outside [0, maxPos=${maxPos})`);
  }
  const sign = p.inverse ? -1 : 1;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < T; t++) {
        const base = ((b * H + h) * T + t) * D;
        const tab = pos[b * T + t] * half;
        for (let q = 0; q < half; q++) {
          // non-interleaved (GPT-NeoX / HF rotate_half): (x[q], x[q+half]); interleaved (GPT-J): (x[2q], x[2q+1])
          const ia = base + (p.interleaved ? 2 * q : q);
          const ib = base + (p.interleaved ? 2 * q + 1 : q + half);
          const a = x[ia], bb = x[ib], c = cos[tab + q], s = sign * sin[tab + q];
          out[ia] = a * c - bb * s;
          out[ib] = a * s + bb * c;
        }
        if (out !== x) for (let j = R; j < D; j++) out[base + j] = x[base + j];
      }
    }
  }
}

// ===================================================================================================
// Unary ops, computed in float64 (then rounded once by the storage).
// ===================================================================================================
const UNARY_OPS: readonly UnaryOp[] = ['exp', 'log', 'tanh', 'sigmoid', 'silu', 'gelu_tanh', 'gelu_erf', 'relu', 'sqrt', 'rsqrt', 'neg', 'abs'];
const GELU_BETA = Math.sqrt(2 / Math.PI);
const GELU_KAPPA = 0.044715;
const INV_SQRT2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);
const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
const INV_SQRT_PI = 1 / Math.sqrt(Math.PI);

/** Power series erf(x) = 2/sqrt(pi) e^{-x^2} sum_n 2^n x^{2n+1} / (1*3*...*(2n+1)): every term is
 * positive (no cancellation), used for |x| < 2.5 where it converges in < 70 terms to double precision. */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (Math.abs(term) <= 1e-17 * Math.abs(sum)) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
}

/** erfc(x) for x >= 2.5 from its continued fraction
 *  erfc(x) = e^{-x^2}/sqrt(pi) * 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + ...))))), evaluated bottom-up
 *  with a fixed depth (80 levels give double precision at x = 2.5; it converges faster for larger x). */
function erfcFraction(x: number): number {
  let f = x;
  for (let k = 80; k >= 1; k--) f = x + k / 2 / f;
  return (INV_SQRT_PI * Math.exp(-x * x)) / f;
}

/** Error function, relative error ~1e-15 (float64). */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const ax = Math.abs(x);
  if (ax < 2.5) return erfSeries(x);
  const r = 1 - erfcFraction(ax);
  return x < 0 ? -r : r;
}

/** Complementary error function 1 - erf(x), accurate in relative terms also deep in the right tail. */
export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 2 - erfc(-x);
  if (x < 2.5) return 1 - erfSeries(x);
  return erfcFraction(x);
}

function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  const s = 1 / (1 + e);
  return x >= 0 ? s : e * s;
}

/** y = op(x) in float64. */
export function unaryScalar(op: UnaryOp, x: number): number {
  switch (op) {
    case 'exp': return Math.exp(x);
    case 'log': return Math.log(x);
    case 'tanh': return Math.tanh(x);
    case 'sigmoid': return sigmoid(x);
    case 'silu': return x * sigmoid(x);
    // 0.5 x (1 + tanh(u)) == x sigmoid(2u): same function, no cancellation for negative x
    case 'gelu_tanh': return x * sigmoid(2 * GELU_BETA * (x + GELU_KAPPA * x * x * x));
    // 0.5 x (1 + erf(x/sqrt2)) == 0.5 x erfc(-x/sqrt2)
    case 'gelu_erf': return 0.5 * x * erfc(-x * INV_SQRT2);
    case 'relu': return x > 0 || Number.isNaN(x) ? x : 0;
    case 'sqrt': return Math.sqrt(x);
    case 'rsqrt': return 1 / Math.sqrt(x);
    case 'neg': return -x;
    case 'abs': return Math.abs(x);
  }
}

/** dx = dy * op'(x), in float64; y = op(x) where the formula uses it (exp, tanh, sigmoid, sqrt, rsqrt). */
export function unaryBackwardScalar(op: UnaryOp, x: number, y: number, dy: number): number {
  switch (op) {
    case 'exp': return dy * y;
    case 'log': return dy / x;
    case 'tanh': return dy * (1 - y * y);
    case 'sigmoid': return dy * (1 - y) * y;
    case 'silu': {
      const s = sigmoid(x);
      return dy * s * (1 + x * (1 - s));
    }
    case 'gelu_tanh': {
      // d/dx [x sigma(2u)] = sigma(2u) + 2 x sigma(2u) sigma(-2u) u'(x)
      const u2 = 2 * GELU_BETA * (x + GELU_KAPPA * x * x * x);
      const s = sigmoid(u2), sm = sigmoid(-u2);
      const ssm = s * sm; // 0 far out in the tails (skip the term there: it would be inf * 0 for x = +-inf)
      return dy * (s + (ssm === 0 ? 0 : 2 * x * ssm * GELU_BETA * (1 + 3 * GELU_KAPPA * x * x)));
    }
    case 'gelu_erf': {
      const pdf = Math.abs(x) < 40 ? x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI : 0; // x phi(x), no inf * 0
      return dy * (0.5 * erfc(-x * INV_SQRT2) + pdf);
    }
    case 'relu': return x > 0 ? dy : 0;
    case 'sqrt': return dy / (2 * y);
    case 'rsqrt': return -0.5 * dy * y * y * y;
    case 'neg': return -dy;
    case 'abs': return x > 0 ? dy : x < 0 ? -dy : 0;
  }
}

function checkOp(kernel: string, op: unknown): UnaryOp {
  if (typeof op !== 'string' || !(UNARY_OPS as readonly string[]).includes(op)) fail(kernel, `unknown op '${String(op)}' (${UNARY_OPS.join(', ')})`);
  return op as UnaryOp;
}

export function unary(p: K.UnaryParams): void {
  const k = 'unary';
  const op = checkOp(k, p.op);
  const n = int(k, 'n', p.n);
  const x = floats(k, 'x', p.x, n), y = floats(k, 'y', p.y, n);
  for (let i = 0; i < n; i++) y[i] = unaryScalar(op, x[i]);
}

export function unaryBackward(p: K.UnaryBackwardParams): void {
  const k = 'unaryBackward';
  const op = checkOp(k, p.op);
  const n = int(k, 'n', p.n);
  const x = floats(k, 'x', p.x, n), y = floats(k, 'y', p.y, n);
  const dy = floats(k, 'dy', p.dy, n), dx = floats(k, 'dx', p.dx, n);
  for (let i = 0; i < n; i++) dx[i] = unaryBackwardScalar(op, x[i], y[i], dy[i]);
}

// ===================================================================================================
// Optimizers: torch.optim single-tensor semantics, op by op. Hyper-parameters that torch passes as
// Python floats to a float32 kernel are rounded to float32 (R) first; bias corrections are float64.
// ===================================================================================================
export function adamw(p: K.AdamWParams): void {
  const k = 'adamw';
  const n = int(k, 'n', p.n);
  const param = floats(k, 'param', p.param, n), grad = floats(k, 'grad', p.grad, n);
  const m = floats(k, 'expAvg', p.expAvg, n), v = floats(k, 'expAvgSq', p.expAvgSq, n);
  const lr = num(k, 'lr', p.lr), beta1 = num(k, 'beta1', p.beta1), beta2 = num(k, 'beta2', p.beta2);
  const eps = num(k, 'eps', p.eps), wd = num(k, 'weightDecay', p.weightDecay);
  const step = int(k, 'step', p.step, 1);
  if (!(beta1 >= 0 && beta1 < 1)) fail(k, `beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 < 1)) fail(k, `beta2 must be in [0, 1), got ${beta2}`);
  const R = rounder(param);
  const decay = R(1 - lr * wd); // param.mul_(1 - lr*wd)
  const w = R(1 - beta1); // exp_avg.lerp_(grad, 1 - beta1)
  const smallW = Math.abs(w) < 0.5;
  const omw = R(1 - w);
  const b2 = R(beta2), omb2 = R(1 - beta2); // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1-beta2)
  const bc1 = 1 - Math.pow(beta1, step);
  const bc2 = 1 - Math.pow(beta2, step);
  const negStep = R(-(lr / bc1));
  const bc2s = R(Math.sqrt(bc2));
  const epsR = R(eps);
  for (let i = 0; i < n; i++) {
    const g = grad[i];
    const pd = R(param[i] * decay);
    const mi = m[i];
    // torch's lerp: self + w (end - self) if |w| < 0.5, else end - (end - self)(1 - w)
    const mn = smallW ? R(mi + R(w * R(g - mi))) : R(g - R(R(g - mi) * omw));
    const vn = R(R(v[i] * b2) + R(R(omb2 * g) * g));
    const denom = R(R(R(Math.sqrt(vn)) / bc2s) + epsR); // (exp_avg_sq.sqrt() / sqrt(bc2)).add_(eps)
    m[i] = mn;
    v[i] = vn;
    param[i] = R(pd + R(R(negStep * mn) / denom)); // param.addcdiv_(exp_avg, denom, value=-lr/bc1)
  }
}

export function sgd(p: K.SgdParams): void {
  const k = 'sgd';
  const n = int(k, 'n', p.n);
  const param = floats(k, 'param', p.param, n), grad = floats(k, 'grad', p.grad, n);
  const lr = num(k, 'lr', p.lr), momentum = num(k, 'momentum', p.momentum), dampening = num(k, 'dampening', p.dampening);
  const wd = num(k, 'weightDecay', p.weightDecay);
  const nesterov = !!p.nesterov, firstStep = !!p.firstStep;
  if (nesterov && (momentum <= 0 || dampening !== 0)) fail(k, 'nesterov requires momentum > 0 and dampening == 0 (as torch.optim.SGD)');
  const useMomentum = momentum !== 0;
  let buf: FloatArray | null = null;
  if (useMomentum) {
    if (p.momentumBuffer == null && n > 0) fail(k, 'momentumBuffer is required when momentum != 0');
    if (n > 0) buf = floats(k, 'momentumBuffer', p.momentumBuffer, n);
  }
  const R = rounder(param);
  const useWd = wd !== 0;
  const wdR = R(wd), mom = R(momentum), omd = R(1 - dampening), negLr = R(-lr);
  for (let i = 0; i < n; i++) {
    const pi = param[i];
    let g = grad[i];
    if (useWd) g = R(g + R(wdR * pi)); // grad.add(param, alpha=wd)
    if (buf) {
      // first step: buf = clone(g); then buf.mul_(momentum).add_(g, alpha=1-dampening)
      const bn = firstStep ? g : R(R(buf[i] * mom) + R(omd * g));
      buf[i] = bn;
      g = nesterov ? R(g + R(mom * bn)) : bn;
    }
    param[i] = R(pi + R(negLr * g)); // param.add_(g, alpha=-lr)
  }
}

// ===================================================================================================
// sumSquares / scaleInPlace. The summation order is the native one (see elementwise.cc): chunks of
// 8192; in a chunk element k accumulates into lane k % 8; lanes are added in order; chunks in order.
// ===================================================================================================
const SUM_CHUNK = 8192;

export function sumSquares(x: FloatArray, n: number): number {
  const k = 'sumSquares';
  int(k, 'n', n);
  floats(k, 'x', x, n);
  const acc = new Float64Array(8);
  let total = 0;
  for (let c = 0; c < n; c += SUM_CHUNK) {
    const e = Math.min(n, c + SUM_CHUNK);
    acc.fill(0);
    for (let i = c; i < e; i++) acc[(i - c) & 7] += x[i] * x[i];
    let s = acc[0];
    for (let j = 1; j < 8; j++) s += acc[j];
    total += s;
  }
  return total;
}

/** x[i] *= s: product in float64, rounded once by the storage. */
export function scaleInPlace(x: FloatArray, n: number, s: number): void {
  const k = 'scaleInPlace';
  int(k, 'n', n);
  floats(k, 'x', x, n);
  num(k, 's', s);
  for (let i = 0; i < n; i++) x[i] = x[i] * s;
}

// ===================================================================================================
// Philox4x32-10 (Salmon et al., SC 2011). Bit-identical to the native implementation.
// Element i of a fill: counter [lo32(offset+i), hi32(offset+i), 0, 0], key [seed, seedHi]; words w0, w1.
//   uniform u = (w0 >>> 8) 2^-24 in [0, 1); out = a + (b - a) u (float64, rounded once by the storage)
//   normal: u1 = (w0 + 1) 2^-32 in (0, 1], theta = 2 pi w1 2^-32, z = sqrt(-2 ln u1) cos theta, out = a + b z,
//           with ln and cos computed by lnUnit / cos2pi below (the same operations as native)
//   dropout: keep iff u >= p
// ===================================================================================================
const PHILOX_M0 = 0xd2511f53, PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9, PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32 values, from exact 16-bit partial products. */
function mulhi32(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl; // each < 2^32, exact
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff); // carries into bit 32 live in mid >>> 16
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** The raw Philox4x32-10 block function: 4 uint32 counter words and 2 key words -> 4 uint32 words. */
export function philox4x32_10(ctr: ArrayLike<number>, key: ArrayLike<number>, out: Uint32Array = new Uint32Array(4)): Uint32Array {
  let c0 = ctr[0] >>> 0, c1 = ctr[1] >>> 0, c2 = ctr[2] >>> 0, c3 = ctr[3] >>> 0;
  let k0 = key[0] >>> 0, k1 = key[1] >>> 0;
  for (let r = 0; r < 10; r++) {
    if (r > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0), lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2), lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    const n0 = (hi1 ^ c1 ^ k0) >>> 0;
    const n2 = (hi0 ^ c3 ^ k1) >>> 0;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_NEG_24 = 1 / 16777216;
const PI_OVER_2P31 = Math.PI / 2147483648;
/** POW2_NEG[e] = 2^-e, exact. */
const POW2_NEG = (() => {
  const t = new Float64Array(33);
  t[0] = 1;
  for (let e = 1; e <= 32; e++) t[e] = t[e - 1] * 0.5;
  return t;
})();

/** ln((w + 1) / 2^32) for a uint32 w: the Box–Muller radius input, never ln(0). Same operations as native. */
export function lnUnit(w: number): number {
  if (w === 0xffffffff) return 0;
  const k = w + 1;
  let e = 31 - Math.clz32(k);
  let m = k * POW2_NEG[e]; // [1, 2), exact
  if (m > Math.SQRT2) {
    m *= 0.5;
    e += 1;
  }
  const s = (m - 1) / (m + 1);
  const z = s * s;
  let q = 1 / 23;
  q = q * z + 1 / 21;
  q = q * z + 1 / 19;
  q = q * z + 1 / 17;
  q = q * z + 1 / 15;
  q = q * z + 1 / 13;
  q = q * z + 1 / 11;
  q = q * z + 1 / 9;
  q = q * z + 1 / 7;
  q = q * z + 1 / 5;
  q = q * z + 1 / 3;
  const t = 2 * s;
  const lnm = t + t * (z * q);
  return (e - 32) * Math.LN2 + lnm;
}

/** cos(2 pi w / 2^32) for a uint32 w. Same operations as native. */
export function cos2pi(w: number): number {
  const q = w >>> 30, r = w & 0x3fffffff;
  const comp = r > 0x20000000;
  const rr = comp ? 0x40000000 - r : r;
  const x = rr * PI_OVER_2P31; // [0, pi/4]
  const z = x * x;
  let c = -1 / 6402373705728000;
  c = c * z + 1 / 20922789888000;
  c = c * z - 1 / 87178291200;
  c = c * z + 1 / 479001600;
  c = c * z - 1 / 3628800;
  c = c * z + 1 / 40320;
  c = c * z - 1 / 720;
  c = c * z + 1 / 24;
  c = c * z - 0.5;
  c = c * z + 1;
  let s = 1 / 355687428096000;
  s = s * z - 1 / 1307674368000;
  s = s * z + 1 / 6227020800;
  s = s * z - 1 / 39916800;
  s = s * z + 1 / 362880;
  s = s * z - 1 / 5040;
  s = s * z + 1 / 120;
  s = s * z - 1 / 6;
  s = s * z + 1;
  s = x * s;
  const cphi = comp ? s : c;
  const sphi = comp ? c : s;
  return q === 0 ? cphi : q === 1 ? -sphi : q === 2 ? -cphi : sphi;
}

function rngArgs(kernel: string, p: { seed: number; seedHi: number; offset: number }, n: number): { seed: number; seedHi: number; offset: number } {
  const seed = int(kernel, 'seed', p.seed), seedHi = int(kernel, 'seedHi', p.seedHi), offset = int(kernel, 'offset', p.offset);
  if (seed > 0xffffffff) fail(kernel, 'seed must be a uint32 (< 2^32)');
  if (seedHi > 0xffffffff) fail(kernel, 'seedHi must be a uint32 (< 2^32)');
  if (n > 2 ** 53 - offset) fail(kernel, 'offset + n must be <= 2^53'); // (offset + n could round)
  return { seed, seedHi, offset };
}

/** Calls fn(i, w0, w1) for i in [0, n) with the Philox words of counter offset + i. */
function forEachPhilox(n: number, offset: number, seed: number, seedHi: number, fn: (i: number, w0: number, w1: number) => void): void {
  const ctr = [0, 0, 0, 0];
  const key = [seed, seedHi];
  const words = new Uint32Array(4);
  let hi = Math.floor(offset / TWO_POW_32);
  let lo = offset - hi * TWO_POW_32;
  for (let i = 0; i < n; i++) {
    ctr[0] = lo;
    ctr[1] = hi;
    philox4x32_10(ctr, key, words);
    fn(i, words[0], words[1]);
    if (++lo === TWO_POW_32) {
      lo = 0;
      hi++;
    }
  }
}

export function randomFill(p: K.RandomFillParams): void {
  const k = 'randomFill';
  const n = int(k, 'n', p.n);
  const out = floats(k, 'out', p.out, n);
  const { seed, seedHi, offset } = rngArgs(k, p, n);
  if (p.kind !== 'uniform' && p.kind !== 'normal') fail(k, `kind must be 'uniform' or 'normal', got '${String(p.kind)}'`);
  const a = num(k, 'a', p.a), b = num(k, 'b', p.b);
  if (p.kind === 'uniform') {
    const width = b - a;
    forEachPhilox(n, offset, seed, seedHi, (i, w0) => {
      out[i] = a + width * ((w0 >>> 8) * TWO_POW_NEG_24);
    });
  } else {
    forEachPhilox(n, offset, seed, seedHi, (i, w0, w1) => {
      out[i] = a + b * (Math.sqrt(-2 * lnUnit(w0)) * cos2pi(w1));
    });
  }
}

/** Inverted dropout: keep iff u >= p; out = x * scale (scale = 1/(1-p), rounded to float32 for float32
 * data, as torch and the native kernel multiply by a float scale) or 0; mask = 1 / 0. */
export function dropout(p: K.DropoutParams): void {
  const k = 'dropout';
  const n = int(k, 'n', p.n);
  const x = floats(k, 'x', p.x, n), out = floats(k, 'out', p.out, n);
  if (!(p.mask instanceof Uint8Array)) fail(k, `field 'mask' must be a Uint8Array`);
  if (p.mask.length < n) fail(k, `field 'mask' has ${p.mask.length} elements but the shape needs ${n}`);
  const mask = p.mask;
  const prob = num(k, 'p', p.p);
  if (!(prob >= 0 && prob <= 1)) fail(k, `p must be in [0, 1], got ${prob}`);
  const { seed, seedHi, offset } = rngArgs(k, p, n);
  const scale = prob < 1 ? rounder(out)(1 / (1 - prob)) : 0;
  forEachPhilox(n, offset, seed, seedHi, (i, w0) => {
    const keep = (w0 >>> 8) * TWO_POW_NEG_24 >= prob;
    out[i] = keep ? x[i] * scale : 0;
    mask[i] = keep ? 1 : 0;
  });
}
