// Two fused elementwise ops for the transformer blocks, on the backend's same-shape binary kernel (the generic
// broadcasting add / mul handle strides and broadcasting, which costs more on these large activations):
//   residualAdd(x, y) = x + y                 (same shapes; backward hands the gradient to both unchanged)
//   gatedActivation(g, u) = act(g) * u        (SwiGLU's silu(gate) * up; act by the backend's unary kernel)

import type { FloatArray } from '../backend/index.ts';
import { ShapeError, uninitialized, fmtShape, fromOp, type Tensor } from '../tensor/index.ts';
import type { ActivationName } from './mlp.ts';

function sameShape(op: string, a: Tensor, b: Tensor): void {
  a.live(op);
  b.live(op);
  if (a.rank !== b.rank || a.shape.some((d, i) => d !== b.shape[i])) throw new ShapeError(`${op}: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ`);
  if (a.storage.backend !== b.storage.backend) throw new ShapeError(`${op}: tensors live on different backends`);
}

// out = x + y;  dx = g, dy = g
export function residualAdd(x: Tensor, y: Tensor): Tensor {
  sameShape('residualAdd', x, y);
  const out = uninitialized(x.shape, x.backend);
  const o = out.storage.data as FloatArray;
  x.backend.binary({ op: 'add', a: x.data as FloatArray, b: y.data as FloatArray, out: o, n: o.length });
  return fromOp(out, 'residualAdd', [x, y], (g) => [x.requiresGrad ? g : null, y.requiresGrad ? g : null]);
}

const UNARY: Record<ActivationName, 'silu' | 'gelu_tanh' | 'gelu_erf' | 'relu'> = { silu: 'silu', gelu_tanh: 'gelu_tanh', gelu_erf: 'gelu_erf', relu: 'relu' };

// a = act(g); out = a * u;   du = dout * a,  dg = act'(g) * (dout * u)
export function gatedActivation(gate: Tensor, up: Tensor, act: ActivationName): Tensor {
  sameShape('gatedActivation', gate, up);
  const be = gate.backend;
  const n = gate.size;
  const g = gate.data as FloatArray;
  const aT = uninitialized(gate.shape, be); // act(gate), saved for backward
  const a = aT.storage.data as FloatArray;
  be.unary({ op: UNARY[act], x: g, y: a, n });
  const out = uninitialized(gate.shape, be);
  const o = out.storage.data as FloatArray;
  be.binary({ op: 'mul', a, b: up.data as FloatArray, out: o, n });
  return fromOp(
    out,
    'gatedActivation',
    [gate, up],
    (dout) => {
      const d = dout.data as FloatArray;
      let dg: Tensor | null = null;
      let du: Tensor | null = null;
      if (up.requiresGrad) {
        du = uninitialized(up.shape, be);
        be.binary({ op: 'mul', a: d, b: a, out: du.storage.data as FloatArray, n });
      }
      if (gate.requiresGrad) {
        const t = uninitialized(gate.shape, be); // dout * up, then act'(gate) * that
        const tt = t.storage.data as FloatArray;
        be.binary({ op: 'mul', a: d, b: up.data as FloatArray, out: tt, n });
        dg = uninitialized(gate.shape, be);
        be.unaryBackward({ op: UNARY[act], x: gate.data as FloatArray, y: a, dy: tt, dx: dg.storage.data as FloatArray, n });
        t.dispose();
      }
      return [dg, du];
    },
    [aT],
  );
}
