// TODO(owner of this file): implement. Stubs so the project type-checks.
import type * as K from '../types.ts';
export function rmsnormForward(p: K.RmsNormParams): never { throw new Error('js rmsnormForward: not implemented'); }
export function rmsnormBackward(p: K.RmsNormBackwardParams): never { throw new Error('js rmsnormBackward: not implemented'); }
export function layernormForward(p: K.LayerNormParams): never { throw new Error('js layernormForward: not implemented'); }
export function layernormBackward(p: K.LayerNormBackwardParams): never { throw new Error('js layernormBackward: not implemented'); }
export function softmaxForward(p: K.SoftmaxParams): never { throw new Error('js softmaxForward: not implemented'); }
export function softmaxBackward(p: K.SoftmaxBackwardParams): never { throw new Error('js softmaxBackward: not implemented'); }
