// Op-level test helpers: run a tensor function on a given backend and collect its output and gradients.
import { withBackend, type Backend } from '../../src/backend/index.ts';
import { Tensor, mul, sum, tensor, tidy } from '../../src/tensor/index.ts';
import { randArray } from '../util.ts';

export interface InputSpec {
  values: ArrayLike<number>;
  shape: number[];
  requiresGrad?: boolean;
}

export function randInput(shape: number[], seed: number, scale = 1): InputSpec {
  return { values: Array.from(randArray(shape.reduce((a, b) => a * b, 1), seed, scale)), shape };
}

/** Runs fn on `b` with float inputs; returns the output and d(sum(out * w))/d(input) for each input. */
export function runOp(b: Backend, fn: (...xs: Tensor[]) => Tensor, inputs: InputSpec[], seed = 99): { out: number[]; grads: (number[] | null)[]; shape: readonly number[] } {
  return withBackend(b, () =>
    tidy(() => {
      const xs = inputs.map((i) => {
        const t = tensor(i.values, i.shape, b);
        if (i.requiresGrad !== false) t.requireGrad();
        return t;
      });
      const y = fn(...xs);
      const w = tensor(randArray(y.size, seed), [...y.shape], b);
      const out = y.toArray();
      const shape = y.shape;
      if (y.requiresGrad) sum(mul(y, w)).backward();
      const grads = xs.map((x) => (x.grad ? x.grad.toArray() : null));
      for (const x of xs) x.dispose();
      return { out, grads, shape };
    }),
  );
}
