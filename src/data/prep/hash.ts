// Non-cryptographic hashing for deduplication, and a compact set of 64-bit hashes.
//
// hash64 runs two independent 32-bit multiply-xorshift lanes over the UTF-16 code units of a string (no UTF-8
// encoding step: the same string always gives the same code units) and finishes each lane with MurmurHash3's
// fmix32 avalanche; the two lanes use different odd multipliers and seeds, so together they behave like one
// 64-bit hash. With n distinct texts the chance of any false "duplicate" is about n^2 / 2^65: 3e-8 for a million
// rows, 3e-4 for a hundred million.

/** MurmurHash3's 32-bit finaliser: a bijection on 32-bit integers with full avalanche. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit hash of s[start, end) with a seed. */
export function hash32(s: string, seed = 0, start = 0, end = s.length): number {
  let h = (seed ^ 0x2f8f1c43) | 0;
  for (let i = start; i < end; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 15;
  }
  return fmix32(h ^ (end - start));
}

/** A 64-bit hash as two 32-bit halves. */
export interface Hash64 {
  hi: number;
  lo: number;
}

export function hash64(s: string): Hash64 {
  let a = 0x9747b28c | 0;
  let b = 0x1b873593 | 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x5bd1e995);
    a ^= a >>> 15;
    b = Math.imul(b ^ c, 0xcc9e2d51);
    b ^= b >>> 13;
  }
  // Cross the lanes before finishing so neither half depends on one lane alone.
  const hi = fmix32(a ^ Math.imul(b, 0x27d4eb2f) ^ s.length);
  const lo = fmix32(b ^ Math.imul(a, 0x165667b1) ^ Math.imul(s.length, 0x9e3779b1));
  return { hi, lo };
}

/**
 * A map from 64-bit hashes to a 32-bit value (the line where the text was first seen), in one open-addressing
 * table (linear probing) over a Uint32Array of [hi, lo, value] triples. Memory: 12 bytes per slot, and the table
 * is kept between 35% and 70% full, so 17-34 bytes per distinct hash; while doubling, the old and new tables
 * exist together for a moment. The all-zero (hi, lo) pair marks an empty slot, so a hash that is genuinely (0, 0)
 * is stored as (0, 1) (one more, negligible, chance of a collision).
 */
export class HashMap64 {
  private table: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(initialCapacity = 1024) {
    let cap = 16;
    while (cap < initialCapacity * 2) cap *= 2;
    this.table = new Uint32Array(cap * 3);
    this.mask = cap - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get bytes(): number {
    return this.table.byteLength;
  }

  get(h: Hash64): number | undefined {
    const hi = h.hi >>> 0;
    const lo = (h.hi === 0 && h.lo === 0 ? 1 : h.lo) >>> 0;
    const t = this.table;
    for (let i = lo & this.mask; ; i = (i + 1) & this.mask) {
      const a = t[3 * i], b = t[3 * i + 1];
      if (a === 0 && b === 0) return undefined;
      if (a === hi && b === lo) return t[3 * i + 2];
    }
  }

  /** Stores value under h unless h is present; returns the value already there, or undefined when added. */
  setIfAbsent(h: Hash64, value: number): number | undefined {
    if ((this.count + 1) * 10 > (this.mask + 1) * 7) this.grow();
    const hi = h.hi >>> 0;
    const lo = (h.hi === 0 && h.lo === 0 ? 1 : h.lo) >>> 0;
    const t = this.table;
    for (let i = lo & this.mask; ; i = (i + 1) & this.mask) {
      const a = t[3 * i], b = t[3 * i + 1];
      if (a === 0 && b === 0) {
        t[3 * i] = hi;
        t[3 * i + 1] = lo;
        t[3 * i + 2] = value >>> 0;
        this.count++;
        return undefined;
      }
      if (a === hi && b === lo) return t[3 * i + 2];
    }
  }

  private grow(): void {
    const old = this.table;
    const cap = (this.mask + 1) * 2;
    this.table = new Uint32Array(cap * 3);
    this.mask = cap - 1;
    const t = this.table;
    for (let j = 0; j < old.length; j += 3) {
      const hi = old[j], lo = old[j + 1];
      if (hi === 0 && lo === 0) continue;
      let i = lo & this.mask;
      while (t[3 * i] !== 0 || t[3 * i + 1] !== 0) i = (i + 1) & this.mask;
      t[3 * i] = hi;
      t[3 * i + 1] = lo;
      t[3 * i + 2] = old[j + 2];
    }
  }
}
