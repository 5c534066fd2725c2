// Finite-difference gradient checking in float64 on the TypeScript reference backend.
// Used by alignkit's own tests for every op, and available to users writing custom ops.

import { jsBackend64, withBackend, type FloatArray } from '../backend/index.ts';
import { AlignkitError } from './errors.ts';
import { Tensor, noGrad, tensor, tidy } from './tensor.ts';
import { mul } from './ops/elementwise.ts';
import { sum } from './ops/reduce.ts';

export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
  /** Seed of the random projection weights w in loss = sum(fn(inputs) * w). */
  seed?: number;
}

export interface GradcheckResult {
  maxAbsError: number;
  checked: number;
}

function projection(n: number, seed: number): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push((s / 4294967296) * 2 - 1);
  }
  return out;
}

/**
 * Compares autograd gradients of loss = sum(fn(...inputs) * w) with central differences, for every element
 * of every float input that requires grad. `inputs` are plain number arrays with shapes; they are created as
 * float64 tensors on the reference backend. Throws an AlignkitError naming the input and element on mismatch.
 */
export function gradcheck(
  fn: (...xs: Tensor[]) => Tensor,
  inputs: { values: ArrayLike<number>; shape: number[]; requiresGrad?: boolean }[],
  opts: GradcheckOptions = {},
): GradcheckResult {
  const eps = opts.eps ?? 1e-6;
  const atol = opts.atol ?? 1e-6;
  const rtol = opts.rtol ?? 1e-4;
  return withBackend(jsBackend64, () =>
    tidy(() => {
      const xs = inputs.map((i) => {
        const t = tensor(i.values, i.shape, jsBackend64);
        if (i.requiresGrad !== false) t.requireGrad();
        return t;
      });
      const probe = noGrad(() => fn(...xs));
      const w = tensor(projection(probe.size, opts.seed ?? 1234), [...probe.shape], jsBackend64);
      const lossOf = (): number => noGrad(() => sum(mul(fn(...xs), w)).item());
      const loss = sum(mul(fn(...xs), w));
      loss.backward();
      let maxAbsError = 0;
      let checked = 0;
      xs.forEach((x, xi) => {
        if (!x.requiresGrad) return;
        const data = x.data as FloatArray;
        const grad = x.grad ? (x.grad.data as FloatArray) : new Float64Array(x.size);
        for (let i = 0; i < data.length; i++) {
          const orig = data[i];
          data[i] = orig + eps;
          const up = lossOf();
          data[i] = orig - eps;
          const down = lossOf();
          data[i] = orig;
          const numeric = (up - down) / (2 * eps);
          const err = Math.abs(numeric - grad[i]);
          maxAbsError = Math.max(maxAbsError, err);
          checked++;
          if (!(err <= atol + rtol * Math.abs(numeric)))
            throw new AlignkitError(`gradcheck: input ${xi} element ${i}: autograd ${grad[i]} vs finite difference ${numeric} (|diff| ${err})`);
        }
        x.zeroGrad();
      });
      return { maxAbsError, checked };
    }),
  );
}
