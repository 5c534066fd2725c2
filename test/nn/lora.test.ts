// The LoRA hook on its own: project() = linear() without an adapter, x Wᵀ + b + scaling · B A x with one
// (checked against a hand-written float64 loop), gradients by finite differences, dropout determinism and the
// config checks. Model-level behaviour (PEFT compatibility, merging, training) is in test/models/peft.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadModel } from '../../src/models/index.ts';
import { applyLora, withAdaptersDisabled } from '../../src/nn/lora.ts';
import { fixtureDir } from '../models/helpers.ts';
import * as T from '../../src/tensor/index.ts';
import { attachAdapter, detachAdapter, adapterOf, loraScaling, project, type LoraAdapter, type LoraRuntime } from '../../src/nn/lora.ts';
import { assertClose, randArray } from '../util.ts';

const runtime = (seed = 0, training = false): LoraRuntime => ({ training, generator: new T.Generator(seed) });

/** y[n][o] = sum_i x[n][i] (W[o][i] + s · sum_k B[o][k] A[k][i]) + b[o], in float64. */
function reference(x: ArrayLike<number>, W: ArrayLike<number>, b: ArrayLike<number> | null, A: ArrayLike<number>, B: ArrayLike<number>, s: number, N: number, I: number, O: number, R: number): number[] {
  const y: number[] = [];
  for (let n = 0; n < N; n++)
    for (let o = 0; o < O; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < I; i++) {
        let ba = 0;
        for (let k = 0; k < R; k++) ba += B[o * R + k] * A[k * I + i];
        acc += x[n * I + i] * (W[o * I + i] + s * ba);
      }
      y.push(acc);
    }
  return y;
}

function withAdapter<R>(W: T.Tensor, a: LoraAdapter, fn: () => R): R {
  attachAdapter(W, a);
  try {
    return fn();
  } finally {
    detachAdapter(W);
  }
}

describe('project(): the LoRA hook', () => {
  const [N, I, O, R] = [5, 7, 6, 3];
  const xs = randArray(N * I, 1);
  const ws = randArray(O * I, 2);
  const bs = randArray(O, 3);
  const as = randArray(R * I, 4);
  const bsB = randArray(O * R, 5);

  it('without an adapter is linear(): the same numbers, one output tensor and nothing else', () =>
    T.tidy(() => {
      const x = T.tensor(xs, [N, I]);
      const W = T.tensor(ws, [O, I]);
      const b = T.tensor(bs, [O]);
      const want = T.linear(x, W, b);
      const before = T.memoryInfo();
      const got = project(x, W, b);
      const after = T.memoryInfo();
      assert.deepEqual(got.toArray(), want.toArray());
      assert.equal(after.liveTensors - before.liveTensors, 1, 'one new tensor (the output)');
      assert.equal(after.liveStorageBytes - before.liveStorageBytes, N * O * 4, 'only the output buffer');
    }));

  it('with an adapter adds scaling · B(A x) (float64 loop reference, 1e-5)', () =>
    T.tidy(() => {
      const x = T.tensor(xs, [N, I]);
      const W = T.tensor(ws, [O, I]);
      const b = T.tensor(bs, [O]);
      const A = T.tensor(as, [R, I]);
      const B = T.tensor(bsB, [O, R]);
      const s = loraScaling(R, 7);
      const got = withAdapter(W, { A, B, scaling: s, dropout: 0, runtime: runtime() }, () => project(x, W, b));
      assertClose(got.toArray(), reference(xs, ws, bs, as, bsB, s, N, I, O, R), 1e-5, 1e-5, 'adapted projection');
      // Detached again: back to plain linear.
      assert.equal(adapterOf(W), null);
      assert.deepEqual(project(x, W, b).toArray(), T.linear(x, W, b).toArray());
    }));

  it('a zero B changes nothing, bit for bit (PEFT initialises B = 0)', () =>
    T.tidy(() => {
      const x = T.tensor(xs, [N, I]);
      const W = T.tensor(ws, [O, I]);
      const b = T.tensor(bs, [O]);
      const A = T.tensor(as, [R, I]);
      const B = T.zeros([O, R]);
      const got = withAdapter(W, { A, B, scaling: 2, dropout: 0, runtime: runtime() }, () => project(x, W, b));
      assert.deepEqual(got.toArray(), T.linear(x, W, b).toArray());
    }));

  it('gradients of A, B, x (and W, bias) match finite differences', () => {
    const r = T.gradcheck(
      (x, W, A, B, b) => withAdapter(W, { A, B, scaling: 1.5, dropout: 0, runtime: runtime() }, () => project(x, W, b)),
      [
        { values: xs, shape: [N, I] },
        { values: ws, shape: [O, I] },
        { values: as, shape: [R, I] },
        { values: bsB, shape: [O, R] },
        { values: bs, shape: [O] },
      ],
      { atol: 1e-6, rtol: 1e-4 },
    );
    assert.equal(r.checked, N * I + O * I + R * I + O * R + O);
  });

  it('gradients through the dropout path match finite differences (mask held fixed by resetting the generator)', () => {
    const rt = runtime(7, true);
    const start = rt.generator.getState();
    const r = T.gradcheck(
      (x, W, A, B) => {
        rt.generator.setState(start);
        return withAdapter(W, { A, B, scaling: 0.5, dropout: 0.4, runtime: rt }, () => project(x, W, null));
      },
      [
        { values: xs, shape: [N, I] },
        { values: ws, shape: [O, I], requiresGrad: false },
        { values: as, shape: [R, I] },
        { values: bsB, shape: [O, R] },
      ],
      { atol: 1e-6, rtol: 1e-4 },
    );
    assert.equal(r.checked, N * I + R * I + O * R);
  });

  it('dropout: only in training mode, inverted scaling, deterministic for a seed', () =>
    T.tidy(() => {
      // W = 0, A = B = identity, scaling 1: the projection returns dropout(x) itself.
      const D = 400;
      const p = 0.3;
      const x = T.tensor(Array.from({ length: D }, (_, i) => 1 + (i % 7)), [1, D]);
      const W = T.zeros([D, D]);
      const eye = T.tensor(Array.from({ length: D * D }, (_, i) => (Math.floor(i / D) === i % D ? 1 : 0)), [D, D]);
      const run = (rt: LoraRuntime): number[] => withAdapter(W, { A: eye, B: eye, scaling: 1, dropout: p, runtime: rt }, () => project(x, W, null)).toArray();
      const xv = x.toArray();
      const trained = run(runtime(42, true));
      let dropped = 0;
      trained.forEach((v, i) => {
        if (v === 0) dropped++;
        else assert.ok(Math.abs(v - xv[i] / (1 - p)) < 1e-5, `kept element ${i} is x / (1 - p)`);
      });
      // 400 Bernoulli(0.3) draws: mean 120, sd 9.2; 5 sd either side.
      assert.ok(dropped > 74 && dropped < 166, `dropped ${dropped} of ${D}`);
      assert.deepEqual(run(runtime(42, true)), trained, 'same seed, same mask');
      assert.notDeepEqual(run(runtime(43, true)), trained, 'another seed, another mask');
      assert.deepEqual(run(runtime(42, false)), xv, 'eval mode: no dropout');
    }));

  it('rejects mismatched shapes and a second adapter on the same weight', () =>
    T.tidy(() => {
      const W = T.tensor(ws, [O, I]);
      const A = T.tensor(as, [R, I]);
      const B = T.tensor(bsB, [O, R]);
      W.name = 'q_proj.weight';
      assert.throws(() => attachAdapter(W, { A: B, B: A, scaling: 1, dropout: 0, runtime: runtime() }), /q_proj\.weight \[6,7\] needs A \[r,7\] and B \[6,r\]/);
      assert.throws(() => attachAdapter(W, { A, B, scaling: 1, dropout: 1, runtime: runtime() }), /dropout must be in \[0, 1\)/);
      attachAdapter(W, { A, B, scaling: 1, dropout: 0, runtime: runtime() });
      try {
        assert.throws(() => attachAdapter(W, { A, B, scaling: 1, dropout: 0, runtime: runtime() }), /already has an adapter/);
      } finally {
        detachAdapter(W);
      }
    }));
});

describe('loraScaling', () => {
  it('lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora', () => {
    assert.equal(loraScaling(8, 16), 2);
    assert.equal(loraScaling(16, 32, true), 8);
    assert.equal(loraScaling(4, 12, true), 6);
    assert.equal(loraScaling(2, 5), 2.5);
  });
});

it('withAdaptersDisabled: the base model function without detaching (the LoRA reference policy)', () => {
  const model = loadModel(fixtureDir('llama'), { trainable: true });
  try {
    const ids = T.intTensor([5, 9, 17, 33], [1, 4]);
    const base = T.noGrad(() => T.tidy(() => model.forward(ids).toArray()));
    const h = applyLora(model, { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }, 1);
    for (const { B } of h.adapters.values()) (B.data as Float32Array).fill(0.05);
    const adapted = T.noGrad(() => T.tidy(() => model.forward(ids).toArray()));
    assert.notDeepEqual(adapted, base);
    assert.deepEqual(withAdaptersDisabled(() => T.noGrad(() => T.tidy(() => model.forward(ids).toArray()))), base);
    assert.deepEqual(T.noGrad(() => T.tidy(() => model.forward(ids).toArray())), adapted, 'adapters are back afterwards');
    h.dispose();
  } finally {
    model.dispose();
  }
});
