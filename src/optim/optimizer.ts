// Optimizers over the backend's fused update kernels. Parameter groups carry their own hyper-parameters
// (a trainer puts biases and norms in a group without weight decay); state dicts copy every buffer so a
// resumed run continues bit for bit.

import type { FloatArray } from '../backend/index.ts';
import { AlignkitError, fmtShape } from '../tensor/errors.ts';
import { Tensor, untracked, zeros } from '../tensor/tensor.ts';

export interface ParamGroup<H> {
  params: Tensor[];
  /** Overrides of the optimizer's defaults for this group. */
  options?: Partial<H>;
}

export interface OptimizerStateDict {
  kind: string;
  step: number;
  groups: { options: Record<string, unknown> }[];
  /** Per parameter (in group order), its named state buffers as plain arrays. */
  state: Record<string, number[]>[];
}

export abstract class Optimizer<H extends { lr: number }> {
  readonly groups: { params: Tensor[]; options: H }[];
  /** Number of completed step() calls. */
  stepCount = 0;
  protected readonly state = new Map<Tensor, Record<string, Tensor>>();

  protected constructor(
    readonly kind: string,
    params: Tensor[] | ParamGroup<H>[],
    defaults: H,
  ) {
    const groups: ParamGroup<H>[] = params.length > 0 && params[0] instanceof Tensor ? [{ params: params as Tensor[] }] : (params as ParamGroup<H>[]);
    this.groups = groups.map((g) => ({ params: g.params, options: { ...defaults, ...(g.options ?? {}) } }));
    const seen = new Set<Tensor>();
    for (const g of this.groups)
      for (const p of g.params) {
        if (seen.has(p)) throw new AlignkitError(`${kind}: parameter ${p.name ?? `#${p.id}`} appears in more than one group`);
        seen.add(p);
        if (!p.requiresGrad) throw new AlignkitError(`${kind}: parameter ${p.name ?? `#${p.id}`} ${fmtShape(p.shape)} does not require grad`);
        if (!p.isContiguous) throw new AlignkitError(`${kind}: parameter ${p.name ?? `#${p.id}`} must be contiguous`);
      }
  }

  /** Sets the learning rate of every group (schedulers call this each step). */
  setLearningRate(lr: number): void {
    for (const g of this.groups) g.options.lr = lr;
  }

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) p.zeroGrad();
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    this.stepCount++;
    for (const g of this.groups)
      for (const p of g.params) {
        if (!p.grad) continue;
        if (p.grad.size !== p.size) throw new AlignkitError(`${this.kind}: gradient ${fmtShape(p.grad.shape)} does not match parameter ${p.name ?? `#${p.id}`} ${fmtShape(p.shape)}`);
        this.update(p, p.grad.data as FloatArray, g.options);
      }
  }

  protected abstract update(p: Tensor, grad: FloatArray, options: H): void;

  protected buffer(p: Tensor, name: string): { data: FloatArray; fresh: boolean } {
    let s = this.state.get(p);
    if (!s) {
      s = {};
      this.state.set(p, s);
    }
    let fresh = false;
    if (!s[name]) {
      s[name] = untracked(() => zeros(p.shape, p.backend));
      fresh = true;
    }
    return { data: s[name].data as FloatArray, fresh };
  }

  stateDict(): OptimizerStateDict {
    const state: Record<string, number[]>[] = [];
    for (const g of this.groups)
      for (const p of g.params) {
        const s = this.state.get(p) ?? {};
        const entry: Record<string, number[]> = {};
        for (const [k, t] of Object.entries(s)) entry[k] = Array.from(t.data as FloatArray);
        state.push(entry);
      }
    return { kind: this.kind, step: this.stepCount, groups: this.groups.map((g) => ({ options: { ...g.options } })), state };
  }

  loadStateDict(sd: OptimizerStateDict): void {
    if (sd.kind !== this.kind) throw new AlignkitError(`${this.kind}.loadStateDict: state is for ${sd.kind}`);
    const params = this.groups.flatMap((g) => g.params);
    if (sd.state.length !== params.length || sd.groups.length !== this.groups.length)
      throw new AlignkitError(`${this.kind}.loadStateDict: state has ${sd.state.length} parameters in ${sd.groups.length} groups, optimizer has ${params.length} in ${this.groups.length}`);
    this.stepCount = sd.step;
    sd.groups.forEach((g, i) => Object.assign(this.groups[i].options, g.options));
    this.dispose();
    params.forEach((p, i) => {
      const entry: Record<string, Tensor> = {};
      for (const [k, values] of Object.entries(sd.state[i])) {
        if (values.length !== p.size) throw new AlignkitError(`${this.kind}.loadStateDict: buffer '${k}' of parameter ${i} has ${values.length} values, expected ${p.size}`);
        const t = untracked(() => zeros(p.shape, p.backend));
        (t.data as FloatArray).set(values);
        entry[k] = t;
      }
      if (Object.keys(entry).length) this.state.set(p, entry);
    });
  }

  /** Frees the optimizer state buffers. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
  }
}
