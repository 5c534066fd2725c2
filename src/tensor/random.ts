// Seeded randomness. A Generator is a (seed, counter) pair over the backend's counter-based Philox RNG:
// every draw reserves a range of counters, so the numbers depend only on the seed and the order of draws —
// never on thread count or chunking — and a generator's state (two integers) checkpoints exactly.

import type { Backend, FloatArray } from '../backend/index.ts';
import { Tensor, empty } from './tensor.ts';

export interface GeneratorState {
  seed: number;
  offset: number;
}

export class Generator {
  private seed: number;
  private seedHi: number;
  private offset = 0;

  constructor(seed = 0) {
    this.seed = 0;
    this.seedHi = 0;
    this.manualSeed(seed);
  }

  /** Seeds with any safe integer (split into the two 32-bit Philox key words). */
  manualSeed(seed: number): this {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`Generator.manualSeed: seed must be a safe integer, got ${seed}`);
    const s = seed < 0 ? -seed : seed;
    this.seed = s >>> 0;
    this.seedHi = Math.floor(s / 4294967296) >>> 0;
    if (seed < 0) this.seedHi = (this.seedHi ^ 0x80000000) >>> 0;
    this.offset = 0;
    return this;
  }

  /** Reserves n counters; returns the key words and the first counter. */
  reserve(n: number): { seed: number; seedHi: number; offset: number } {
    const r = { seed: this.seed, seedHi: this.seedHi, offset: this.offset };
    // Round up to a multiple of 4 so each draw starts at a fresh Philox block (4 outputs per counter block).
    this.offset += Math.ceil(n / 4) * 4;
    return r;
  }

  getState(): GeneratorState & { seedHi: number } {
    return { seed: this.seed, seedHi: this.seedHi, offset: this.offset };
  }
  setState(s: GeneratorState & { seedHi?: number }): void {
    this.seed = s.seed >>> 0;
    this.seedHi = (s.seedHi ?? 0) >>> 0;
    this.offset = s.offset;
  }
}

/** The default generator used when none is passed. */
export const defaultGenerator = new Generator(0);

/** Seeds the default generator (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  defaultGenerator.manualSeed(seed);
}

function fill(kind: 'uniform' | 'normal', shape: readonly number[], a: number, b: number, gen: Generator, on?: Backend): Tensor {
  const t = empty(shape, 'float', on);
  const n = t.size;
  const r = gen.reserve(n);
  t.backend.randomFill({ out: t.storage.data as FloatArray, n, seed: r.seed, seedHi: r.seedHi, offset: r.offset, kind, a, b });
  return t;
}

/** Uniform [low, high). */
export function rand(shape: readonly number[], opts: { low?: number; high?: number; generator?: Generator; backend?: Backend } = {}): Tensor {
  return fill('uniform', shape, opts.low ?? 0, opts.high ?? 1, opts.generator ?? defaultGenerator, opts.backend);
}

/** Normal(mean, std). */
export function randn(shape: readonly number[], opts: { mean?: number; std?: number; generator?: Generator; backend?: Backend } = {}): Tensor {
  return fill('normal', shape, opts.mean ?? 0, opts.std ?? 1, opts.generator ?? defaultGenerator, opts.backend);
}
