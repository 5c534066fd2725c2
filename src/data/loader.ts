// Batch order and the train/eval split, both deterministic for a seed and resumable exactly.
//
// Randomness: xoshiro128** (Blackman & Vigna), a 32-bit generator with 128 bits of state, seeded from
// (domain, seed, epoch) through MurmurHash3's 32-bit finaliser (fmix32). Each epoch's order is an independent
// Fisher–Yates shuffle keyed by (seed, epoch) — it does not depend on how many batches earlier epochs drew — so
// a sampler restored to {epoch, cursor} yields exactly the batches the original would have yielded next.
import { AlignkitError } from '../tensor/errors.ts';

export interface LoaderState {
  /** Epoch of the next batch (0-based). */
  epoch: number;
  /** Batches already taken from that epoch. */
  cursor: number;
  seed: number;
}

/** Keeps the streams of different uses apart (same seed, unrelated numbers). */
const DOMAIN_EPOCH_ORDER = 0x5eed0001;
const DOMAIN_SPLIT = 0x5eed0002;

/** MurmurHash3's fmix32: a bijective 32-bit mixer. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function checkSeed(seed: number, who: string): void {
  if (!Number.isSafeInteger(seed)) throw new AlignkitError(`${who}: seed must be a safe integer, got ${seed}`);
}

/** xoshiro128**: next() gives uniform 32-bit unsigned integers. */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** A generator in the given raw state (four 32-bit words, not all zero). */
  constructor(state: readonly [number, number, number, number]) {
    if (state.every((x) => x >>> 0 === 0)) throw new RangeError('Xoshiro128: the all-zero state is not allowed');
    [this.s0, this.s1, this.s2, this.s3] = state.map((x) => x >>> 0);
  }

  /** Seeds from a list of safe integers (each split into its low and high 32 bits), mixed by fmix32. */
  static fromSeed(words: readonly number[]): Xoshiro128 {
    const parts: number[] = [];
    for (const w of words) parts.push(w >>> 0, Math.floor(w / 4294967296) >>> 0);
    const state = [0, 1, 2, 3].map((k) => {
      let h = fmix32(Math.imul(0x9e3779b9, k + 1) >>> 0);
      for (const p of parts) h = fmix32((h ^ p) >>> 0) ^ fmix32((p + 0x7f4a7c15 + k) >>> 0);
      return h >>> 0;
    });
    if (!state.some((x) => x !== 0)) state[0] = 1; // the all-zero state is the generator's one fixed point
    return new Xoshiro128(state as [number, number, number, number]);
  }

  next(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform integer in [0, n), n <= 2^32, without modulo bias (rejection of the incomplete last block). */
  below(n: number): number {
    if (!(n >= 1 && n <= 4294967296) || !Number.isInteger(n)) throw new RangeError(`below: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const r = this.next();
      if (r < limit) return r % n;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A uniformly random permutation of 0..n-1 (Fisher–Yates), determined by the generator's seed words. */
export function permutation(n: number, rng: Xoshiro128): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}

export interface BatchSamplerOptions {
  batchSize: number;
  seed: number;
  /** Shuffle every epoch (default true); false gives 0..size-1 in order. */
  shuffle?: boolean;
  /** Drop the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
}

/** Hands out batches of indices into a dataset of `size` examples, epoch after epoch. */
export class BatchSampler {
  readonly batchesPerEpoch: number;
  private readonly batchSize: number;
  private readonly shuffle: boolean;
  private seed: number;
  private epoch = 0;
  private cursor = 0;
  private order: Int32Array | null = null;
  private orderEpoch = -1;

  constructor(
    readonly size: number,
    opts: BatchSamplerOptions,
  ) {
    if (!Number.isInteger(size) || size < 1) throw new AlignkitError(`BatchSampler: size must be a positive integer, got ${size}`);
    if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw new AlignkitError(`BatchSampler: batchSize must be a positive integer, got ${opts.batchSize}`);
    checkSeed(opts.seed, 'BatchSampler');
    this.batchSize = opts.batchSize;
    this.seed = opts.seed;
    this.shuffle = opts.shuffle ?? true;
    this.batchesPerEpoch = opts.dropLast ? Math.floor(size / opts.batchSize) : Math.ceil(size / opts.batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new AlignkitError(`BatchSampler: ${size} examples make no full batch of ${opts.batchSize} with dropLast; lower batchSize or disable dropLast`);
    }
  }

  /** The order of epoch e: a permutation keyed by (seed, e), or the identity without shuffling. */
  epochOrder(e: number): Int32Array {
    if (this.orderEpoch !== e || this.order === null) {
      this.order = this.shuffle ? permutation(this.size, Xoshiro128.fromSeed([DOMAIN_EPOCH_ORDER, this.seed, e])) : Int32Array.from({ length: this.size }, (_, i) => i);
      this.orderEpoch = e;
    }
    return this.order;
  }

  next(): { indices: number[]; epoch: number } {
    if (this.cursor >= this.batchesPerEpoch) {
      this.epoch++;
      this.cursor = 0;
    }
    const order = this.epochOrder(this.epoch);
    const start = this.cursor * this.batchSize;
    const end = Math.min(this.size, start + this.batchSize);
    this.cursor++;
    return { indices: Array.from(order.subarray(start, end)), epoch: this.epoch };
  }

  state(): LoaderState {
    return { epoch: this.epoch, cursor: this.cursor, seed: this.seed };
  }

  /** Continues from a saved state (its seed included: a restored run keeps the order it started with). */
  restore(s: LoaderState): void {
    if (!Number.isInteger(s.epoch) || s.epoch < 0) throw new AlignkitError(`BatchSampler.restore: epoch must be a non-negative integer, got ${s.epoch}`);
    if (!Number.isInteger(s.cursor) || s.cursor < 0 || s.cursor > this.batchesPerEpoch) {
      throw new AlignkitError(`BatchSampler.restore: cursor ${s.cursor} out of range [0, ${this.batchesPerEpoch}] (was the dataset or batch size changed?)`);
    }
    checkSeed(s.seed, 'BatchSampler.restore');
    if (s.seed !== this.seed) this.orderEpoch = -1;
    this.seed = s.seed;
    this.epoch = s.epoch;
    this.cursor = s.cursor;
  }
}

export interface SplitOptions {
  /** Fraction of examples held out, in [0, 1); the count is rounded up (as Hugging Face's train_test_split). */
  evalFraction?: number;
  /** Number of examples held out (instead of evalFraction). */
  evalSize?: number;
  seed: number;
}

/**
 * A seeded random split of 0..size-1 into train and eval indices, each sorted ascending (so reading them
 * walks the file forward). Without evalFraction / evalSize everything is train.
 */
export function splitTrainEval(size: number, opts: SplitOptions): { train: number[]; eval: number[] } {
  if (!Number.isInteger(size) || size < 0) throw new AlignkitError(`splitTrainEval: size must be a non-negative integer, got ${size}`);
  checkSeed(opts.seed, 'splitTrainEval');
  if (opts.evalFraction !== undefined && opts.evalSize !== undefined) throw new AlignkitError('splitTrainEval: give evalFraction or evalSize, not both');
  let k = 0;
  if (opts.evalFraction !== undefined) {
    const f = opts.evalFraction;
    if (!(f >= 0 && f < 1)) throw new AlignkitError(`splitTrainEval: evalFraction must be in [0, 1), got ${f}`);
    k = Math.ceil(f * size);
  } else if (opts.evalSize !== undefined) {
    k = opts.evalSize;
    if (!Number.isInteger(k) || k < 0) throw new AlignkitError(`splitTrainEval: evalSize must be a non-negative integer, got ${k}`);
  }
  if (k > 0 && k >= size) throw new AlignkitError(`splitTrainEval: holding out ${k} of ${size} examples leaves none to train on`);
  const p = permutation(size, Xoshiro128.fromSeed([DOMAIN_SPLIT, opts.seed]));
  const evalIdx = Array.from(p.subarray(0, k)).sort((a, b) => a - b);
  const train = Array.from(p.subarray(k)).sort((a, b) => a - b);
  return { train, eval: evalIdx };
}
