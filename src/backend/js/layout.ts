// Reference implementations of the same-shape binary ops and the head-layout permutation.
import type { BinaryParams, FloatArray, PermuteHeadsParams } from '../types.ts';

function need(kernel: string, field: string, a: FloatArray, n: number): void {
  if (a.length < n) throw new RangeError(`alignkit js ${kernel}: field '${field}' has ${a.length} elements but the shape needs ${n}`);
}

// out = a (op) b, elementwise
export function binary(p: BinaryParams): void {
  const { a, b, out, n } = p;
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`alignkit js binary: invalid n ${n}`);
  need('binary', 'a', a, n);
  need('binary', 'b', b, n);
  need('binary', 'out', out, n);
  if (p.op === 'add') for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
  else if (p.op === 'sub') for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
  else if (p.op === 'mul') for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
  else throw new RangeError(`alignkit js binary: unknown op '${String(p.op)}'`);
}

// [B, T, G, H, D] <-> [G, B, H, T, D], D floats at a time
export function permuteHeads(p: PermuteHeadsParams): void {
  const { src, dst, batch: B, seq: T, groups: G, heads: H, headDim: D, toHeadsFirst } = p;
  for (const [k, v] of Object.entries({ batch: B, seq: T, groups: G, heads: H, headDim: D }))
    if (!Number.isInteger(v) || v < 0) throw new RangeError(`alignkit js permuteHeads: invalid ${k} ${v}`);
  const n = B * T * G * H * D;
  need('permuteHeads', 'src', src, n);
  need('permuteHeads', 'dst', dst, n);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let g = 0; g < G; g++)
        for (let h = 0; h < H; h++) {
          const tokensFirst = (((b * T + t) * G + g) * H + h) * D;
          const headsFirst = (((g * B + b) * H + h) * T + t) * D;
          const from = toHeadsFirst ? tokensFirst : headsFirst;
          const to = toHeadsFirst ? headsFirst : tokensFirst;
          for (let d = 0; d < D; d++) dst[to + d] = src[from + d];
        }
}
