// Parameter declarations: every model lists its tensors (Hugging Face name, shape, how to initialise, and
// whether the checkpoint stores it transposed, as GPT-2's Conv1D does), so loading, strict checking, random
// initialisation and saving all work from one list.

import { Generator, ShapeError, fmtShape, full, rand, randn, untracked, type Tensor } from '../tensor/index.ts';

export type ParamInit = { kind: 'normal'; std: number } | { kind: 'uniform'; bound: number } | { kind: 'zeros' } | { kind: 'ones' };

export interface ParamSpec {
  /** Hugging Face name, in the *ForCausalLM / *ForSequenceClassification layout. */
  name: string;
  /** In-memory shape ([out, in] for every projection, as nn.Linear). */
  shape: number[];
  init: ParamInit;
  /** Stored [in, out] in checkpoints (GPT-2 Conv1D): transposed on load and back on save. */
  conv1d?: boolean;
}

/** The shape a spec has in a checkpoint file. */
export function diskShape(spec: ParamSpec): number[] {
  return spec.conv1d ? [spec.shape[1], spec.shape[0]] : spec.shape;
}

/** Fresh parameters for the specs (drawn in spec order from one seeded generator), outside every scope. */
export function initParams(specs: readonly ParamSpec[], seed: number): Map<string, Tensor> {
  const gen = new Generator(seed);
  const out = new Map<string, Tensor>();
  untracked(() => {
    for (const s of specs) {
      let t: Tensor;
      switch (s.init.kind) {
        case 'normal':
          t = randn(s.shape, { std: s.init.std, generator: gen });
          break;
        case 'uniform':
          t = rand(s.shape, { low: -s.init.bound, high: s.init.bound, generator: gen });
          break;
        case 'zeros':
          t = full(s.shape, 0);
          break;
        case 'ones':
          t = full(s.shape, 1);
          break;
      }
      t.name = s.name;
      out.set(s.name, t.requireGrad());
    }
  });
  return out;
}

/** Looks a parameter up; a missing one is a programming error (loading checks completeness first). */
export function param(params: ReadonlyMap<string, Tensor>, name: string, shape?: readonly number[]): Tensor {
  const t = params.get(name);
  if (!t) throw new ShapeError(`model: parameter '${name}' is missing`);
  if (shape && (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])))
    throw new ShapeError(`model: parameter '${name}' is ${fmtShape(t.shape)}, expected ${fmtShape(shape)}`);
  return t;
}

export function optionalParam(params: ReadonlyMap<string, Tensor>, name: string): Tensor | null {
  return params.get(name) ?? null;
}
