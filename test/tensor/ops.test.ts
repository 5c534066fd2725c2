// Every differentiable op: float64 finite-difference gradient check on the reference backend, and
// native-vs-reference agreement (forward and backward) on odd shapes.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { jsBackend, nativeBackend } from '../../src/backend/index.ts';
import * as T from '../../src/tensor/index.ts';
import { Tensor, intTensor, gradcheck } from '../../src/tensor/index.ts';
import { assertClose } from '../util.ts';
import { randInput, runOp, type InputSpec } from './helpers.ts';

interface Case {
  name: string;
  fn: (...xs: Tensor[]) => Tensor;
  inputs: InputSpec[];
  atol?: number;
}

const positive = (shape: number[], seed: number): InputSpec => {
  const r = randInput(shape, seed);
  return { ...r, values: Array.from(r.values, (v) => Math.abs(v) + 0.5) };
};

const ids = (values: number[], shape = [values.length]) => intTensor(values, shape);

const cases: Case[] = [
  { name: 'add broadcast', fn: (a, b) => T.add(a, b), inputs: [randInput([2, 3, 5], 1), randInput([3, 1], 2)] },
  { name: 'sub broadcast', fn: (a, b) => T.sub(a, b), inputs: [randInput([4, 1], 3), randInput([1, 7], 4)] },
  { name: 'mul broadcast', fn: (a, b) => T.mul(a, b), inputs: [randInput([2, 3, 5], 5), randInput([5], 6)] },
  { name: 'div', fn: (a, b) => T.div(a, b), inputs: [randInput([3, 4], 7), positive([3, 4], 8)] },
  { name: 'scalar ops', fn: (a) => T.div(T.sub(T.mul(T.add(a, 2), 3), 1), 4), inputs: [randInput([5], 9)] },
  { name: 'maximum', fn: (a, b) => T.maximum(a, b), inputs: [randInput([6], 10), randInput([6], 11)] },
  { name: 'pow', fn: (a) => T.pow(a, 3), inputs: [randInput([7], 12)] },
  { name: 'exp', fn: (a) => T.exp(a), inputs: [randInput([9], 13)] },
  { name: 'log', fn: (a) => T.log(a), inputs: [positive([9], 14)] },
  { name: 'tanh', fn: (a) => T.tanh(a), inputs: [randInput([9], 15, 3)] },
  { name: 'sigmoid', fn: (a) => T.sigmoid(a), inputs: [randInput([9], 16, 4)] },
  { name: 'silu', fn: (a) => T.silu(a), inputs: [randInput([9], 17, 4)] },
  { name: 'gelu tanh', fn: (a) => T.gelu(a, 'tanh'), inputs: [randInput([9], 18, 3)] },
  { name: 'gelu erf', fn: (a) => T.gelu(a, 'erf'), inputs: [randInput([9], 19, 3)] },
  { name: 'sqrt', fn: (a) => T.sqrt(a), inputs: [positive([5], 20)] },
  { name: 'rsqrt', fn: (a) => T.rsqrt(a), inputs: [positive([5], 21)] },
  { name: 'sum axes', fn: (a) => T.sum(a, [0, 2]), inputs: [randInput([3, 4, 5], 22)] },
  { name: 'sum keepdim', fn: (a) => T.sum(a, 1, true), inputs: [randInput([3, 4, 5], 23)] },
  { name: 'mean', fn: (a) => T.mean(a, -1), inputs: [randInput([3, 7], 24)] },
  { name: 'max axis', fn: (a) => T.max(a, 1), inputs: [randInput([4, 6, 3], 25)] },
  { name: 'logsumexp', fn: (a) => T.logsumexp(a, -1), inputs: [randInput([4, 9], 26, 3)] },
  { name: 'reshape+transpose', fn: (a) => T.contiguous(T.transpose(T.reshape(a, [3, 2, 4]), 0, 2)), inputs: [randInput([6, 4], 27)] },
  { name: 'permute', fn: (a) => T.mul(T.permute(a, [2, 0, 1]), 2), inputs: [randInput([2, 3, 4], 28)] },
  { name: 'narrow/slice', fn: (a) => T.mul(T.slice(T.narrow(a, 1, 1, 3), 0, -2), 3), inputs: [randInput([4, 5], 29)] },
  { name: 'concat', fn: (a, b) => T.concat([a, b, a], 1), inputs: [randInput([2, 3], 30), randInput([2, 1], 31)] },
  { name: 'expand', fn: (a) => T.mul(T.expand(a, [3, 4, 5]), 1), inputs: [randInput([4, 1], 32)] },
  { name: 'squeeze/unsqueeze', fn: (a) => T.squeeze(T.unsqueeze(a, 1), 1), inputs: [randInput([3, 2], 33)] },
  { name: 'matmul', fn: (a, b) => T.matmul(a, b), inputs: [randInput([3, 5], 34), randInput([5, 4], 35)] },
  { name: 'matmul batched', fn: (a, b) => T.matmul(a, b), inputs: [randInput([2, 3, 5], 36), randInput([2, 5, 7], 37)] },
  { name: 'matmul broadcast batch', fn: (a, b) => T.matmul(a, b), inputs: [randInput([2, 3, 3, 5], 38), randInput([5, 2], 39)] },
  { name: 'matmul transposed views', fn: (a, b) => T.matmul(T.transpose(a), T.transpose(b)), inputs: [randInput([2, 5, 3], 40), randInput([2, 4, 5], 41)] },
  { name: 'linear', fn: (x, w, b) => T.linear(x, w, b), inputs: [randInput([2, 3, 5], 42), randInput([4, 5], 43), randInput([4], 44)] },
  { name: 'linear no bias', fn: (x, w) => T.linear(x, w), inputs: [randInput([7, 3], 45), randInput([2, 3], 46)] },
  { name: 'softmax', fn: (a) => T.softmax(a), inputs: [randInput([3, 7], 47, 3)] },
  { name: 'softmax dim 0', fn: (a) => T.softmax(a, 0), inputs: [randInput([4, 3], 48, 3)] },
  { name: 'logSoftmax', fn: (a) => T.logSoftmax(a), inputs: [randInput([3, 7], 49, 3)] },
  { name: 'rmsNorm', fn: (x, w) => T.rmsNorm(x, w, 1e-5), inputs: [randInput([3, 7], 50), randInput([7], 51)] },
  { name: 'layerNorm', fn: (x, w, b) => T.layerNorm(x, w, b, 1e-5), inputs: [randInput([3, 7], 52), randInput([7], 53), randInput([7], 54)] },
  { name: 'embedding', fn: (w) => T.embedding(w, ids([2, 0, 2, 4], [2, 2])), inputs: [randInput([5, 3], 55)] },
  { name: 'gather', fn: (x) => T.gather(x, 1, ids([0, 2, 2, 1, 0, 0], [3, 2])), inputs: [randInput([3, 4], 56)] },
  { name: 'indexSelect', fn: (x) => T.indexSelect(x, 0, ids([2, 0, 2])), inputs: [randInput([3, 4], 57)] },
  { name: 'where', fn: (a, b) => T.where(T.intTensor([1, 0, 1, 0, 0, 1], [2, 3]), a, b), inputs: [randInput([2, 3], 58), randInput([3], 59)] },
  {
    name: 'rope neox partial',
    fn: (x) => {
      const { cos, sin } = T.ropeTables(8, [1, 0.1], x.backend);
      return T.rope(x, cos, sin, ids([0, 1, 2, 5, 6, 7], [2, 3]), { rotaryDim: 4 });
    },
    inputs: [randInput([2, 2, 3, 6], 60)],
  },
  {
    name: 'rope interleaved',
    fn: (x) => {
      const { cos, sin } = T.ropeTables(4, [1, 0.3], x.backend);
      return T.rope(x, cos, sin, ids([3, 2, 1, 0], [1, 4]), { interleaved: true });
    },
    inputs: [randInput([1, 1, 4, 4], 61)],
  },
  {
    name: 'attention causal GQA',
    fn: (q, k, v) => T.scaledDotProductAttention(q, k, v, { causal: true }),
    inputs: [randInput([1, 4, 3, 5], 62), randInput([1, 2, 3, 5], 63), randInput([1, 2, 3, 5], 64)],
  },
  {
    name: 'attention masked, S > T',
    fn: (q, k, v) => T.scaledDotProductAttention(q, k, v, { causal: true, keyMask: T.intTensor([0, 1, 1, 1, 1], [1, 5]) }),
    inputs: [randInput([1, 2, 2, 3], 65), randInput([1, 1, 5, 3], 66), randInput([1, 1, 5, 3], 67)],
  },
  {
    name: 'linearLogprob',
    fn: (h, w, b) => T.linearLogprob(h, w, ids([1, -100, 6, 0, 3], [5]), { bias: b, temperature: 0.7, chunk: 2 }),
    inputs: [randInput([5, 4], 68), randInput([7, 4], 69), randInput([7], 70)],
  },
  { name: 'fusedCrossEntropy', fn: (h, w) => T.fusedCrossEntropy(h, w, ids([1, 2, -100])), inputs: [randInput([3, 4], 71), randInput([5, 4], 72)] },
  { name: 'crossEntropy', fn: (x) => T.crossEntropy(x, ids([1, -100, 4])), inputs: [randInput([3, 5], 73, 2)] },
];

describe('ops: float64 finite-difference gradients (reference backend)', () => {
  for (const c of cases)
    it(c.name, () => {
      const r = gradcheck(c.fn, c.inputs, { atol: 1e-6, rtol: 1e-4 });
      assert.ok(r.checked > 0, 'checked at least one element');
    });
});

describe('ops: native matches the reference (forward and backward)', () => {
  for (const c of cases)
    it(c.name, (t) => {
      if (!nativeBackend) return t.skip('native addon not built');
      const ref = runOp(jsBackend, c.fn, c.inputs);
      const nat = runOp(nativeBackend, c.fn, c.inputs);
      assert.deepEqual(nat.shape, ref.shape);
      assertClose(nat.out, ref.out, c.atol ?? 2e-5, 1e-4, `${c.name} forward`);
      nat.grads.forEach((g, i) => {
        assert.equal(g === null, ref.grads[i] === null, `${c.name} grad ${i} presence`);
        if (g) assertClose(g, ref.grads[i] as number[], c.atol ?? 2e-5, 1e-4, `${c.name} grad ${i}`);
      });
    });
});

describe('ops: hand-checked values', () => {
  it('softmax of [0, ln 3] is [1/4, 3/4]', () => {
    const y = T.softmax(T.tensor([0, Math.log(3)]));
    assertClose(y.toArray(), [0.25, 0.75], 1e-6);
  });
  it('cross-entropy ignores -100 and averages over the rest', () => {
    const logits = T.tensor([0, 0, 0, 0, 5, 0], [2, 3]);
    const l = T.crossEntropy(logits, ids([-100, 2]));
    assertClose([l.item()], [Math.log(2 + Math.exp(5)) - 0], 1e-5);
  });
  it('matmul of known matrices', () => {
    const a = T.tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = T.tensor([7, 8, 9, 10, 11, 12], [3, 2]);
    assert.deepEqual(T.matmul(a, b).toArray(), [58, 64, 139, 154]);
  });
  it('fused LM-head log-probs equal log-softmax of the full logits', () => {
    const h = T.tensor(randInput([4, 3], 80).values, [4, 3]);
    const w = T.tensor(randInput([6, 3], 81).values, [6, 3]);
    const tg = ids([5, 0, 3, -100]);
    const fused = T.linearLogprob(h, w, tg, { chunk: 3 }).toArray();
    const full = T.logSoftmax(T.matmul(h, T.transpose(w))).toArray();
    assertClose(fused, [full[5], full[6 + 0], full[12 + 3], 0], 1e-5);
  });
});
