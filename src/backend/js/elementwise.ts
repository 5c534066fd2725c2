// TODO(owner of this file): implement. Stubs so the project type-checks.
import type * as K from '../types.ts';
export function rope(p: K.RopeParams): never { throw new Error('js rope: not implemented'); }
export function unary(p: K.UnaryParams): never { throw new Error('js unary: not implemented'); }
export function unaryBackward(p: K.UnaryBackwardParams): never { throw new Error('js unaryBackward: not implemented'); }
export function adamw(p: K.AdamWParams): never { throw new Error('js adamw: not implemented'); }
export function sgd(p: K.SgdParams): never { throw new Error('js sgd: not implemented'); }
export function sumSquares(x: K.FloatArray, n: number): never { throw new Error('js sumSquares: not implemented'); }
export function scaleInPlace(x: K.FloatArray, n: number, s: number): never { throw new Error('js scaleInPlace: not implemented'); }
export function randomFill(p: K.RandomFillParams): never { throw new Error('js randomFill: not implemented'); }
export function dropout(p: K.DropoutParams): never { throw new Error('js dropout: not implemented'); }
