// TODO(owner of this file): implement. Stubs so the project type-checks.
import type * as K from '../types.ts';
export function sgemm(p: K.GemmParams): never { throw new Error('js sgemm: not implemented'); }
