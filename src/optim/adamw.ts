// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay, exactly torch.optim.AdamW's update.
import type { FloatArray } from '../backend/index.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { Optimizer, type ParamGroup } from './optimizer.ts';

export interface AdamWOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (torch default 0.01). */
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

export class AdamW extends Optimizer<AdamWOptions> {
  private readonly steps = new Map<Tensor, number>();

  constructor(params: Tensor[] | ParamGroup<AdamWOptions>[], options: Partial<AdamWOptions> = {}) {
    super('AdamW', params, { ...ADAMW_DEFAULTS, ...options });
  }

  protected update(p: Tensor, grad: FloatArray, o: AdamWOptions): void {
    const m = this.buffer(p, 'exp_avg');
    const v = this.buffer(p, 'exp_avg_sq');
    // Per-parameter step counts, as torch keeps them (a parameter without a grad does not advance).
    const step = (this.steps.get(p) ?? 0) + 1;
    this.steps.set(p, step);
    p.backend.adamw({
      param: p.data as FloatArray, grad, expAvg: m.data, expAvgSq: v.data, n: p.size,
      lr: o.lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay, step,
    });
  }

  protected override extraState(): Record<string, unknown> {
    return { paramSteps: this.groups.flatMap((g) => g.params).map((p) => this.steps.get(p) ?? 0) };
  }

  protected override loadExtraState(extra: Record<string, unknown>): void {
    const steps = extra.paramSteps;
    const params = this.groups.flatMap((g) => g.params);
    if (!Array.isArray(steps) || steps.length !== params.length || steps.some((s) => !Number.isSafeInteger(s)))
      throw new Error(`AdamW.loadState: 'paramSteps' must list one step count per parameter (${params.length})`);
    this.steps.clear();
    params.forEach((p, i) => steps[i] && this.steps.set(p, steps[i] as number));
  }

  override stateDict() {
    const sd = super.stateDict();
    const params = this.groups.flatMap((g) => g.params);
    params.forEach((p, i) => (sd.state[i].step = [this.steps.get(p) ?? 0]));
    return sd;
  }

  override loadStateDict(sd: ReturnType<Optimizer<AdamWOptions>['stateDict']>): void {
    const steps = sd.state.map((s) => s.step?.[0] ?? 0);
    super.loadStateDict({ ...sd, state: sd.state.map(({ step: _step, ...rest }) => rest) });
    const params = this.groups.flatMap((g) => g.params);
    this.steps.clear();
    params.forEach((p, i) => steps[i] && this.steps.set(p, steps[i]));
  }
}
