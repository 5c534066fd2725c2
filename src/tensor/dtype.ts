// bfloat16 / float16 storage: conversions between compute float32 and the 16-bit formats checkpoints use.
// Rounding is round-to-nearest-even, NaN stays NaN, as PyTorch's .to(torch.bfloat16 / torch.float16).

import type { FloatArray } from '../backend/index.ts';
import { DTypeError, fmtShape } from './errors.ts';
import { Tensor, empty } from './tensor.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float32ToBFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x0040) & 0xffff; // quiet NaN
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function bfloat16BitsToFloat32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0];
}

export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow -> signed zero
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function float16BitsToFloat32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** A new tensor of dtype 'bfloat16' | 'float16' (Uint16Array bits) or 'float32' from a float / 16-bit tensor. */
export function cast(t: Tensor, dtype: 'float32' | 'bfloat16' | 'float16'): Tensor {
  t.live('cast');
  const src = t.data;
  if (dtype === 'float32') {
    const out = empty(t.shape, 'float');
    const o = out.storage.data as FloatArray;
    if (t.dtype === 'bfloat16') for (let i = 0; i < o.length; i++) o[i] = bfloat16BitsToFloat32((src as Uint16Array)[i]);
    else if (t.dtype === 'float16') for (let i = 0; i < o.length; i++) o[i] = float16BitsToFloat32((src as Uint16Array)[i]);
    else if (t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'int32' || t.dtype === 'uint8') o.set(src as ArrayLike<number>);
    else throw new DTypeError(`cast: cannot convert ${t.dtype} ${fmtShape(t.shape)} to float32`);
    return out;
  }
  if (t.dtype !== 'float32' && t.dtype !== 'float64') throw new DTypeError(`cast: ${dtype} from ${t.dtype} is not supported (go through float32)`);
  const out = empty(t.shape, dtype);
  const o = out.storage.data as Uint16Array;
  const conv = dtype === 'bfloat16' ? float32ToBFloat16Bits : float32ToFloat16Bits;
  const f = src as FloatArray;
  for (let i = 0; i < o.length; i++) o[i] = conv(f[i]);
  return out;
}
