// Reference SGEMM: C_b = alpha * op(A_b) @ op(B_b) + beta * C_b (see GemmParams in ../types.ts).
// Plain loops, generic over Float32Array / Float64Array. Each output row is accumulated in a float64
// scratch row, so the float32 result is the correctly rounded value of a float64 sum: a good reference.
import type { FloatArray, GemmParams } from '../types.ts';

function fail(msg: string): never {
  throw new RangeError(`alignkit js sgemm: ${msg}`);
}

function checkInt(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) fail(`field '${name}' must be an integer >= 0, got ${v}`);
}

/** One past the last element an operand's batch touches (0 when it touches none). */
function span(batch: number, stride: number, rows: number, cols: number, ld: number): number {
  if (batch === 0 || rows === 0 || cols === 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

function checkArray(name: string, arr: FloatArray, need: number): void {
  if (!(arr instanceof Float32Array || arr instanceof Float64Array)) fail(`field '${name}' must be a Float32Array or Float64Array`);
  if (arr.length < need) fail(`field '${name}' has ${arr.length} elements but the shape needs ${need}`);
}

/** Validates p exactly as the native kernel does (same limits, same field names in the messages). */
export function validateGemm(p: GemmParams): void {
  for (const f of ['m', 'n', 'k', 'lda', 'ldb', 'ldc', 'strideA', 'strideB', 'strideC', 'batch'] as const) checkInt(f, p[f]);
  if (typeof p.alpha !== 'number') fail("field 'alpha' must be a number");
  if (typeof p.beta !== 'number') fail("field 'beta' must be a number");
  const { m, n, k, transA, transB } = p;
  // Storage shapes: A is [m, k] or [k, m] (transA), B is [k, n] or [n, k] (transB), C is [m, n].
  const aRows = transA ? k : m, aCols = transA ? m : k;
  const bRows = transB ? n : k, bCols = transB ? k : n;
  if (p.lda < aCols) fail(`lda (${p.lda}) must be >= ${aCols}`);
  if (p.ldb < bCols) fail(`ldb (${p.ldb}) must be >= ${bCols}`);
  if (p.ldc < n) fail(`ldc (${p.ldc}) must be >= n (${n})`);
  // Distinct batch entries must not write the same C elements.
  if (p.batch > 1 && m > 0 && n > 0 && p.strideC < (m - 1) * p.ldc + n) {
    fail(`strideC (${p.strideC}) makes the batch's C matrices overlap; need >= ${(m - 1) * p.ldc + n}`);
  }
  checkArray('a', p.a, span(p.batch, p.strideA, aRows, aCols, p.lda));
  checkArray('b', p.b, span(p.batch, p.strideB, bRows, bCols, p.ldb));
  checkArray('c', p.c, span(p.batch, p.strideC, m, n, p.ldc));
}

export function sgemm(p: GemmParams): void {
  validateGemm(p);
  const { m, n, k, alpha, beta, a, b, c, lda, ldb, ldc, transA, transB } = p;
  if (p.batch === 0 || m === 0 || n === 0) return;
  const acc = new Float64Array(n);
  for (let e = 0; e < p.batch; e++) {
    const oa = e * p.strideA, ob = e * p.strideB, oc = e * p.strideC;
    for (let i = 0; i < m; i++) {
      const crow = oc + i * ldc;
      // alpha == 0 or k == 0: C = beta * C without reading A or B (BLAS semantics); beta == 0 writes zeros.
      if (alpha === 0 || k === 0) {
        for (let j = 0; j < n; j++) c[crow + j] = beta === 0 ? 0 : beta * c[crow + j];
        continue;
      }
      acc.fill(0);
      if (!transB) {
        // i-k-j: stream row p of B into the accumulator row.
        for (let q = 0; q < k; q++) {
          const aiq = transA ? a[oa + q * lda + i] : a[oa + i * lda + q];
          const brow = ob + q * ldb;
          for (let j = 0; j < n; j++) acc[j] += aiq * b[brow + j];
        }
      } else {
        // B stored [N, K]: each element is a dot product of two rows.
        for (let j = 0; j < n; j++) {
          const brow = ob + j * ldb;
          let s = 0;
          if (transA) for (let q = 0; q < k; q++) s += a[oa + q * lda + i] * b[brow + q];
          else for (let q = 0; q < k; q++) s += a[oa + i * lda + q] * b[brow + q];
          acc[j] = s;
        }
      }
      // beta == 0: C is write-only (NaNs already in C are ignored).
      for (let j = 0; j < n; j++) c[crow + j] = beta === 0 ? alpha * acc[j] : alpha * acc[j] + beta * c[crow + j];
    }
  }
}
