// NumPy's default random generator, bit for bit: `np.random.default_rng(seed)` = PCG64 (XSL-RR 128/64) seeded
// through SeedSequence, with Generator.integers' Lemire bounded draws and the buffered bit draws used for
// booleans. sacreBLEU's bootstrap and paired significance tests draw their resamples this way with seed 12345,
// so implementing the same stream lets alignkit print the same confidence intervals and p-values.

const MASK32 = 0xffffffffn;
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

/** The 128-bit multiplier as eight 16-bit limbs, least significant first. */
const MULT_LIMBS = limbs16(PCG_MULT);

function limbs16(x: bigint): Float64Array {
  const out = new Float64Array(8);
  for (let i = 0; i < 8; i++) out[i] = Number((x >> BigInt(16 * i)) & 0xffffn);
  return out;
}

/**
 * `np.random.default_rng(seed)`: PCG64 plus the Generator methods the metrics need. The state is kept as eight
 * 16-bit limbs so a step is plain float64 arithmetic (every partial product and column sum stays below 2^53);
 * BigInt is used only for seeding.
 */
export class NumpyGenerator {
  private readonly state = new Float64Array(8);
  private readonly inc = new Float64Array(8);
  private readonly tmp = new Float64Array(8);
  private hasUint32 = false;
  private uinteger = 0;
  // The two halves of the last 64-bit output.
  private outHi = 0;
  private outLo = 0;

  constructor(seed: number | bigint) {
    const [s0, s1, i0, i1] = seedSequenceState(seed, 4);
    const initState = (s0 << 64n) | s1;
    const initSeq = (i0 << 64n) | i1;
    this.inc.set(limbs16(((initSeq << 1n) | 1n) & MASK128));
    this.step();
    const st = limbs16((this.stateBigInt() + initState) & MASK128);
    this.state.set(st);
    this.step();
  }

  private stateBigInt(): bigint {
    let x = 0n;
    for (let i = 7; i >= 0; i--) x = (x << 16n) | BigInt(this.state[i]);
    return x;
  }

  /** state = state * MULT + inc (mod 2^128). */
  private step(): void {
    const s = this.state, m = MULT_LIMBS, inc = this.inc, t = this.tmp;
    for (let k = 0; k < 8; k++) {
      let col = inc[k];
      for (let i = 0; i <= k; i++) col += s[i] * m[k - i];
      t[k] = col;
    }
    let carry = 0;
    for (let k = 0; k < 8; k++) {
      const c = t[k] + carry;
      const limb = c % 65536;
      s[k] = limb;
      carry = (c - limb) / 65536;
    }
  }

  /** Steps and computes the XSL-RR output into outHi / outLo. */
  private next64(): void {
    this.step();
    const s = this.state;
    // x = high64 ^ low64, as two 32-bit words
    let xl = ((s[1] * 65536 + s[0]) ^ (s[5] * 65536 + s[4])) >>> 0;
    let xh = ((s[3] * 65536 + s[2]) ^ (s[7] * 65536 + s[6])) >>> 0;
    const rot = s[7] >>> 10; // state >> 122
    if (rot >= 32) {
      const t = xl;
      xl = xh;
      xh = t;
    }
    const r = rot & 31;
    if (r !== 0) {
      const nl = ((xl >>> r) | (xh << (32 - r))) >>> 0;
      const nh = ((xh >>> r) | (xl << (32 - r))) >>> 0;
      xl = nl;
      xh = nh;
    }
    this.outHi = xh;
    this.outLo = xl;
  }

  /** The next raw 64-bit output (as BigInt). */
  nextUint64(): bigint {
    this.next64();
    return (BigInt(this.outHi) << 32n) | BigInt(this.outLo);
  }

  /** The next 32-bit output: the two halves of a 64-bit draw, low half first. */
  nextUint32(): number {
    if (this.hasUint32) {
      this.hasUint32 = false;
      return this.uinteger;
    }
    this.next64();
    this.hasUint32 = true;
    this.uinteger = this.outHi;
    return this.outLo;
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
    this.next64();
    return (this.outHi * 2097152 + (this.outLo >>> 11)) * 2 ** -53;
  }
}

/** The high 32 bits of the 64-bit product x * y of two uint32 values, exact (16-bit limbs keep every partial
 *  product below 2^53). */
function highProduct(x: number, y: number): number {
  const xl = x & 0xffff, xh = x >>> 16, yl = y & 0xffff, yh = y >>> 16;
  const mid = xh * yl + xl * yh + Math.floor((xl * yl) / 65536);
  return xh * yh + Math.floor(mid / 65536);
}
