// Bulk element conversions between the on-disk number formats and the in-memory float arrays.
// Widening conversions (16-bit -> float32) are exact, bit for bit, NaN payloads included; narrowing ones
// (float32 -> 16-bit) round to nearest even like PyTorch, through src/tensor/dtype.ts.
import type { FloatArray } from '../backend/index.ts';
import { float32ToBFloat16Bits, float32ToFloat16Bits } from '../tensor/dtype.ts';

let f16Table: Float32Array | null = null;

/** float32 value of every float16 bit pattern (built once; 256 KiB). */
export function float16Table(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  const bits = new Uint32Array(t.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) bits[h] = sign | 0x7f800000 | (mant << 13); // inf / NaN (payload kept)
    else if (exp !== 0) bits[h] = sign | ((exp + 112) << 23) | (mant << 13);
    else t[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero / subnormal: exactly representable in float32
  }
  f16Table = t;
  return t;
}

let e4m3Table: Float32Array | null = null;
let e5m2Table: Float32Array | null = null;

/** float8 e4m3fn (bias 7, no infinities, S.1111.111 is NaN) -> float32. */
export function float8e4m3Table(): Float32Array {
  if (e4m3Table) return e4m3Table;
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >>> 3) & 0xf;
    const mant = b & 7;
    if (exp === 0xf && mant === 7) t[b] = NaN;
    else if (exp === 0) t[b] = sign * mant * 2 ** -9;
    else t[b] = sign * (1 + mant / 8) * 2 ** (exp - 7);
  }
  e4m3Table = t;
  return t;
}

/** float8 e5m2 is the top byte of a float16. */
export function float8e5m2Table(): Float32Array {
  if (e5m2Table) return e5m2Table;
  const f16 = float16Table();
  const t = new Float32Array(256);
  for (let b = 0; b < 256; b++) t[b] = f16[b << 8];
  e5m2Table = t;
  return t;
}

/** out[o + i] = float16(src[i]) for all i. */
export function float16ToFloat(src: Uint16Array, out: FloatArray, o: number): void {
  const tab = float16Table();
  for (let i = 0; i < src.length; i++) out[o + i] = tab[src[i]];
}

/** out[o + i] = bfloat16(src[i]) for all i (a shift into the high half of the float32 bits). */
export function bfloat16ToFloat(src: Uint16Array, out: FloatArray, o: number): void {
  if (out instanceof Float32Array) {
    const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
    for (let i = 0; i < src.length; i++) bits[o + i] = src[i] << 16;
    return;
  }
  const one = new Float32Array(1);
  const oneBits = new Uint32Array(one.buffer);
  for (let i = 0; i < src.length; i++) {
    oneBits[0] = src[i] << 16;
    out[o + i] = one[0];
  }
}

/** Rounds float values to bfloat16 / float16 bits. */
export function floatToHalfBits(src: ArrayLike<number>, out: Uint16Array, kind: 'bfloat16' | 'float16'): void {
  const conv = kind === 'bfloat16' ? float32ToBFloat16Bits : float32ToFloat16Bits;
  for (let i = 0; i < out.length; i++) out[i] = conv(src[i]);
}

/** bfloat16 <-> float16 re-encoding, through float32. */
export function halfToHalfBits(src: Uint16Array, from: 'bfloat16' | 'float16', out: Uint16Array): void {
  const f = new Float32Array(src.length);
  if (from === 'bfloat16') bfloat16ToFloat(src, f, 0);
  else float16ToFloat(src, f, 0);
  floatToHalfBits(f, out, from === 'bfloat16' ? 'float16' : 'bfloat16');
}
