// TODO(owner of this file): implement. Stubs so the project type-checks.
import type * as K from '../types.ts';
export function attentionForward(p: K.AttentionParams): never { throw new Error('js attentionForward: not implemented'); }
export function attentionBackward(p: K.AttentionBackwardParams): never { throw new Error('js attentionBackward: not implemented'); }
