// SGD with momentum, dampening, Nesterov and L2 weight decay: torch.optim.SGD's update.
import type { FloatArray } from '../backend/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Optimizer, type ParamGroup } from './optimizer.ts';

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

export const SGD_DEFAULTS: SgdOptions = { lr: 1e-2, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false };

export class SGD extends Optimizer<SgdOptions> {
  constructor(params: Tensor[] | ParamGroup<SgdOptions>[], options: Partial<SgdOptions> = {}) {
    super('SGD', params, { ...SGD_DEFAULTS, ...options });
    for (const g of this.groups)
      if (g.options.nesterov && (g.options.momentum <= 0 || g.options.dampening !== 0))
        throw new RangeError('SGD: nesterov momentum requires momentum > 0 and dampening 0');
  }

  protected update(p: Tensor, grad: FloatArray, o: SgdOptions): void {
    const buf = o.momentum !== 0 ? this.buffer(p, 'momentum_buffer') : null;
    p.backend.sgd({
      param: p.data as FloatArray, grad, momentumBuffer: buf ? buf.data : null, n: p.size,
      lr: o.lr, momentum: o.momentum, dampening: o.dampening, weightDecay: o.weightDecay, nesterov: o.nesterov,
      firstStep: buf ? buf.fresh : false,
    });
  }
}
