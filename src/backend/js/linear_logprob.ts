// TODO(owner of this file): implement. Stubs so the project type-checks.
import type * as K from '../types.ts';
export function linearLogprobForward(p: K.LinearLogprobParams): never { throw new Error('js linearLogprobForward: not implemented'); }
export function linearLogprobBackward(p: K.LinearLogprobBackwardParams): never { throw new Error('js linearLogprobBackward: not implemented'); }
