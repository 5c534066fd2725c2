// The native backend: a thin pass-through to the C++ addon. The addon validates every argument itself.
import type { NativeAddon } from '../native/addon.ts';
import type { Backend, BackendInfo, FloatArray } from './types.ts';

function f32(a: FloatArray, kernel: string): Float32Array {
  if (!(a instanceof Float32Array)) throw new TypeError(`alignkit native ${kernel}: expects Float32Array data (float64 runs on the js backend)`);
  return a;
}

export function createNativeBackend(addon: NativeAddon): Backend {
  return {
    name: 'native',
    info(): BackendInfo {
      const i = addon.info();
      return { name: 'native', isa: i.isa, threads: i.threads };
    },
    alloc: (n) => new Float32Array(addon.alloc(n * 4)),
    allocUninit: (n) => new Float32Array(addon.alloc(n * 4, true)),
    free: (a) => addon.free(f32(a, 'free').buffer),
    sgemm: (p) => addon.sgemm(p),
    attentionForward: (p) => addon.attentionForward(p),
    attentionBackward: (p) => addon.attentionBackward(p),
    rmsnormForward: (p) => addon.rmsnormForward(p),
    rmsnormBackward: (p) => addon.rmsnormBackward(p),
    layernormForward: (p) => addon.layernormForward(p),
    layernormBackward: (p) => addon.layernormBackward(p),
    softmaxForward: (p) => addon.softmaxForward(p),
    softmaxBackward: (p) => addon.softmaxBackward(p),
    rope: (p) => addon.rope(p),
    linearLogprobForward: (p) => addon.linearLogprobForward(p),
    linearLogprobBackward: (p) => addon.linearLogprobBackward(p),
    linearLogprobFused: (p) => addon.linearLogprobFused(p),
    adamw: (p) => addon.adamw(p),
    sgd: (p) => addon.sgd(p),
    sumSquares: (x, n) => addon.sumSquares(f32(x, 'sumSquares'), n),
    scaleInPlace: (x, n, s) => addon.scaleInPlace(f32(x, 'scaleInPlace'), n, s),
    randomFill: (p) => addon.randomFill(p),
    dropout: (p) => addon.dropout(p),
    unary: (p) => addon.unary(p),
    unaryBackward: (p) => addon.unaryBackward(p),
    binary: (p) => addon.binary(p),
    permuteHeads: (p) => addon.permuteHeads(p),
  };
}
