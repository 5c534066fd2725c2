// NumPy's default random generator, bit for bit: `np.random.default_rng(seed)` = PCG64 (XSL-RR 128/64) seeded
// through SeedSequence, with Generator.integers' Lemire bounded draws and the buffered bit draws used for
// booleans. sacreBLEU's bootstrap and paired significance tests draw their resamples this way with seed 12345,
// so implementing the same stream lets alignkit print the same confidence intervals and p-values.
// The 128-bit state lives in BigInts (a draw costs well under a microsecond, enough for 1000 x 100k draws).

const MASK32 = 0xffffffffn;
const MASK64 = (1n << 64n) - 1n;
const MASK128 = (1n << 128n) - 1n;
/** PCG's default 128-bit multiplier. */
const PCG_MULT = (0x2360ed051fc65da4n << 64n) | 0x4385df649fccf645n;

// SeedSequence constants (NumPy bit_generator.pyx, after Melissa O'Neill's seed_seq_fe).
const INIT_A = 0x43b0d7e5;
const MULT_A = 0x931e8875;
const INIT_B = 0x8b51f9dd;
const MULT_B = 0x58f38ded;
const MIX_MULT_L = 0xca01f9dd;
const MIX_MULT_R = 0x4973f715;
const XSHIFT = 16;
const POOL_SIZE = 4;

/** The uint32 words NumPy makes of a non-negative integer seed (least significant word first). */
function seedWords(seed: bigint): number[] {
  if (seed < 0n) throw new RangeError('seed must be non-negative');
  const words: number[] = [];
  do {
    words.push(Number(seed & MASK32));
    seed >>= 32n;
  } while (seed > 0n);
  return words;
}

/** SeedSequence(entropy).generate_state(nWords64, uint64) as BigInts. */
export function seedSequenceState(entropy: number | bigint, nWords64: number): bigint[] {
  const ent = seedWords(BigInt(entropy));
  let hashConst = INIT_A;
  const hashmix = (value: number): number => {
    value = (value ^ hashConst) >>> 0;
    hashConst = Math.imul(hashConst, MULT_A) >>> 0;
    value = Math.imul(value, hashConst) >>> 0;
    return (value ^ (value >>> XSHIFT)) >>> 0;
  };
  const mix = (x: number, y: number): number => {
    let r = (Math.imul(MIX_MULT_L, x) - Math.imul(MIX_MULT_R, y)) >>> 0;
    r = (r ^ (r >>> XSHIFT)) >>> 0;
    return r;
  };
  const pool = new Array<number>(POOL_SIZE);
  for (let i = 0; i < POOL_SIZE; i++) pool[i] = hashmix(i < ent.length ? ent[i] : 0);
  for (let src = 0; src < POOL_SIZE; src++)
    for (let dst = 0; dst < POOL_SIZE; dst++) if (src !== dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
  for (let src = POOL_SIZE; src < ent.length; src++) for (let dst = 0; dst < POOL_SIZE; dst++) pool[dst] = mix(pool[dst], hashmix(ent[src]));

  let hc = INIT_B;
  const words32: number[] = [];
  for (let i = 0; i < nWords64 * 2; i++) {
    let v = (pool[i % POOL_SIZE] ^ hc) >>> 0;
    hc = Math.imul(hc, MULT_B) >>> 0;
    v = Math.imul(v, hc) >>> 0;
    v = (v ^ (v >>> XSHIFT)) >>> 0;
    words32.push(v);
  }
  const out: bigint[] = [];
  for (let i = 0; i < nWords64; i++) out.push((BigInt(words32[2 * i + 1]) << 32n) | BigInt(words32[2 * i]));
  return out;
}

/** `np.random.default_rng(seed)`: PCG64 plus the Generator methods the metrics need. */
export class NumpyGenerator {
  private state = 0n;
  private inc = 0n;
  private hasUint32 = false;
  private uinteger = 0;

  constructor(seed: number | bigint) {
    const [s0, s1, i0, i1] = seedSequenceState(seed, 4);
    const initState = (s0 << 64n) | s1;
    const initSeq = (i0 << 64n) | i1;
    this.state = 0n;
    this.inc = ((initSeq << 1n) | 1n) & MASK128;
    this.step();
    this.state = (this.state + initState) & MASK128;
    this.step();
  }

  private step(): void {
    this.state = (this.state * PCG_MULT + this.inc) & MASK128;
  }

  /** The next raw 64-bit output (as BigInt). */
  nextUint64(): bigint {
    this.step();
    const s = this.state;
    const x = ((s >> 64n) ^ s) & MASK64;
    const rot = s >> 122n;
    return ((x >> rot) | (x << ((64n - rot) & 63n))) & MASK64;
  }

  /** The next 32-bit output: the two halves of a 64-bit draw, low half first. */
  nextUint32(): number {
    if (this.hasUint32) {
      this.hasUint32 = false;
      return this.uinteger;
    }
    const next = this.nextUint64();
    this.hasUint32 = true;
    this.uinteger = Number(next >> 32n);
    return Number(next & MASK32);
  }

  /** One draw of `integers(0, n)` for 1 <= n <= 2^32 (Lemire's method, as NumPy uses for int64 output). */
  boundedBelow(n: number): number {
    const rngIncl = n - 1;
    if (rngIncl === 0) return 0;
    if (rngIncl === 0xffffffff) return this.nextUint32();
    // m = x * n (64 bits): the draw is its high word, and a low word below the threshold is rejected.
    let x = this.nextUint32();
    let leftover = Math.imul(x, n) >>> 0;
    if (leftover < n) {
      const threshold = (0xffffffff - rngIncl) % n;
      while (leftover < threshold) {
        x = this.nextUint32();
        leftover = Math.imul(x, n) >>> 0;
      }
    }
    return highProduct(x, n);
  }

  /** `rng.choice(n, size=count, replace=True)` / `rng.integers(0, n, size=count)` as an Int32Array. */
  integers(n: number, count: number): Int32Array {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 31) throw new RangeError(`integers: n must be in 1..2^31, got ${n}`);
    const out = new Int32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.boundedBelow(n);
    return out;
  }

  /** `rng.integers(2, size=count, dtype=bool)`: one bit of a 32-bit draw per value, lowest bit first. */
  booleans(count: number): Uint8Array {
    const out = new Uint8Array(count);
    let buf = 0;
    let bcnt = 0;
    for (let i = 0; i < count; i++) {
      if (bcnt === 0) {
        buf = this.nextUint32();
        bcnt = 31;
      } else {
        buf >>>= 1;
        bcnt--;
      }
      out[i] = buf & 1;
    }
    return out;
  }

  /** `rng.random()`: a double in [0, 1) from the top 53 bits of a 64-bit draw. */
  random(): number {
    return Number(this.nextUint64() >> 11n) * 2 ** -53;
  }
}

/** The high 32 bits of the 64-bit product x * y of two uint32 values, exact (16-bit limbs keep every partial
 *  product below 2^53). */
function highProduct(x: number, y: number): number {
  const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
  const mid = xh * yl + xl * yh + Math.floor((xl * yl) / 65536);
  return xh * yh + Math.floor(mid / 65536);
}
