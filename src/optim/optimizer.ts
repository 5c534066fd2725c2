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

/** The JSON half of a binary checkpoint of an optimizer; the buffers travel separately (see saveState). */
export interface OptimizerMeta {
  kind: string;
  step: number;
  groups: { options: Record<string, unknown>; size: number }[];
  /** Per parameter (flat, in group order): the names of its state buffers. */
  buffers: string[][];
  /** Optimizer-specific extras (AdamW's per-parameter step counts). */
  extra: Record<string, unknown>;
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

  /**
   * The state as meta (JSON) + buffers keyed `${parameterIndex}.${bufferName}`, sharing memory with the
   * optimizer (no copies): a checkpoint writes them to a binary file; loadState() restores them bit for bit.
   */
  saveState(): { meta: OptimizerMeta; buffers: Map<string, Tensor> } {
    const buffers = new Map<string, Tensor>();
    const names: string[][] = [];
    this.groups.flatMap((g) => g.params).forEach((p, i) => {
      const s = this.state.get(p) ?? {};
      names.push(Object.keys(s));
      for (const [k, t] of Object.entries(s)) buffers.set(`${i}.${k}`, t);
    });
    const meta: OptimizerMeta = {
      kind: this.kind,
      step: this.stepCount,
      groups: this.groups.map((g) => ({ options: { ...g.options }, size: g.params.length })),
      buffers: names,
      extra: this.extraState(),
    };
    return { meta, buffers };
  }

  /** Restores saveState()'s output; `read(key)` returns a buffer's values (validated against the parameter). */
  loadState(meta: OptimizerMeta, read: (key: string) => ArrayLike<number>): void {
    const params = this.groups.flatMap((g) => g.params);
    if (meta.kind !== this.kind) throw new AlignkitError(`${this.kind}.loadState: the saved state is for ${meta.kind}`);
    if (meta.groups.length !== this.groups.length || meta.groups.some((g, i) => g.size !== this.groups[i].params.length))
      throw new AlignkitError(
        `${this.kind}.loadState: saved groups have sizes [${meta.groups.map((g) => g.size).join(', ')}], the optimizer's are [${this.groups.map((g) => g.params.length).join(', ')}] (different trainable parameters?)`,
      );
    this.dispose();
    this.stepCount = meta.step;
    meta.groups.forEach((g, i) => Object.assign(this.groups[i].options, g.options));
    params.forEach((p, i) => {
      const entry: Record<string, Tensor> = {};
      for (const k of meta.buffers[i] ?? []) {
        const values = read(`${i}.${k}`);
        if (values.length !== p.size) throw new AlignkitError(`${this.kind}.loadState: buffer '${k}' of parameter ${p.name ?? i} has ${values.length} values, expected ${p.size}`);
        const t = untracked(() => zeros(p.shape, p.backend));
        (t.data as FloatArray).set(values);
        entry[k] = t;
      }
      if (Object.keys(entry).length) this.state.set(p, entry);
    });
    this.loadExtraState(meta.extra);
  }

  protected extraState(): Record<string, unknown> {
    return {};
  }

  protected loadExtraState(_extra: Record<string, unknown>): void {}

  /** Frees the optimizer state buffers. */
  dispose(): void {
    for (const s of this.state.values()) for (const t of Object.values(s)) t.dispose();
    this.state.clear();
  }
}
