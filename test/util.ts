// Shared test helpers: a seeded generator for inputs and closeness assertions with useful messages.
import assert from 'node:assert/strict';

/** mulberry32: a tiny seeded PRNG for test inputs (not the library's RNG). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [-scale, scale). */
export function randArray(n: number, seed: number, scale = 1, ctor: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array): Float32Array | Float64Array {
  const r = rng(seed);
  const a = new ctor(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { max: number; index: number } {
  assert.equal(a.length, b.length, `length mismatch ${a.length} vs ${b.length}`);
  let max = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > max || Number.isNaN(d)) {
      max = Number.isNaN(d) ? Infinity : d;
      index = i;
    }
  }
  return { max, index };
}

/** Asserts |a - b| <= atol + rtol * |b| elementwise. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0, what = 'values'): void {
  assert.equal(a.length, b.length, `${what}: length ${a.length} vs ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= tol) && !(a[i] === b[i])) {
      const { max, index } = maxAbsDiff(a, b);
      assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]} (|diff| ${d} > tol ${tol}); max |diff| ${max} at ${index}`);
    }
  }
}
