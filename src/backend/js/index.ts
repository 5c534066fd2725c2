// The TypeScript reference backend: plain loops, generic over float32 and float64 storage.
// It is the "living definition" every native kernel is tested against, and the fallback when the addon
// cannot be built. Float64 instances exist for finite-difference gradient checks.
import type { Backend, FloatArray } from '../types.ts';
import { sgemm } from './gemm.ts';
import { attentionForward, attentionBackward } from './attention.ts';
import { rmsnormForward, rmsnormBackward, layernormForward, layernormBackward, softmaxForward, softmaxBackward } from './norms.ts';
import { linearLogprobForward, linearLogprobBackward, linearLogprobFused } from './linear_logprob.ts';
import { rope, unary, unaryBackward, adamw, sgd, sumSquares, scaleInPlace, randomFill, dropout } from './elementwise.ts';
import { binary, permuteHeads } from './layout.ts';

export type FloatArrayConstructor = Float32ArrayConstructor | Float64ArrayConstructor;

export function createJsBackend(storage: FloatArrayConstructor = Float32Array): Backend {
  return {
    name: 'js',
    info: () => ({ name: 'js', isa: storage === Float64Array ? 'js-f64' : 'js', threads: 1 }),
    alloc: (n: number): FloatArray => new storage(n),
    allocUninit: (n: number): FloatArray => new storage(n),
    free: () => { /* garbage collected */ },
    sgemm,
    attentionForward,
    attentionBackward,
    rmsnormForward,
    rmsnormBackward,
    layernormForward,
    layernormBackward,
    softmaxForward,
    softmaxBackward,
    rope,
    linearLogprobForward,
    linearLogprobBackward,
    linearLogprobFused,
    adamw,
    sgd,
    sumSquares,
    scaleInPlace,
    randomFill,
    dropout,
    unary,
    unaryBackward,
    binary,
    permuteHeads,
  };
}
