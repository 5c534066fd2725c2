// Autograd engine, memory scopes, lifetimes, determinism and error messages.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableBackends, jsBackend, nativeBackend, withBackend } from '../../src/backend/index.ts';
import { nativeAddon } from '../../src/native/addon.ts';
import * as T from '../../src/tensor/index.ts';
import { AdamW, clipGradNorm } from '../../src/optim/index.ts';
import { assertClose, randArray } from '../util.ts';

describe('autograd engine', () => {
  it('accumulates into leaf .grad across backward calls and through shared inputs', () => {
    const x = T.tensor([1, 2, 3]).requireGrad();
    T.tidy(() => T.sum(T.mul(x, x)).backward()); // d/dx sum(x²) = 2x
    assert.deepEqual(x.grad?.toArray(), [2, 4, 6]);
    T.tidy(() => T.sum(T.mul(x, 3)).backward());
    assert.deepEqual(x.grad?.toArray(), [5, 7, 9]);
    x.zeroGrad();
    assert.equal(x.grad, null);
    x.dispose();
  });

  it('diamond graphs sum both paths', () => {
    const x = T.tensor([0.5, -1]).requireGrad();
    T.tidy(() => {
      const a = T.exp(x);
      const y = T.add(T.mul(a, a), a); // e^{2x} + e^x  ->  2e^{2x} + e^x
      T.sum(y).backward();
    });
    assertClose(x.grad!.toArray(), [0.5, -1].map((v) => 2 * Math.exp(2 * v) + Math.exp(v)), 1e-5);
    x.dispose();
  });

  it('noGrad records nothing', () => {
    const x = T.tensor([1]).requireGrad();
    const y = T.noGrad(() => T.mul(x, 2));
    assert.equal(y.requiresGrad, false);
    assert.equal(y.gradNode, null);
    assert.throws(() => y.backward(), /does not require grad/);
    y.dispose();
    x.dispose();
  });

  it('non-scalar backward needs an explicit gradient', () => {
    const x = T.tensor([1, 2]).requireGrad();
    T.tidy(() => {
      const y = T.mul(x, 2);
      assert.throws(() => y.backward(), /one-element output/);
      y.backward(T.tensor([1, 10]));
    });
    assert.deepEqual(x.grad!.toArray(), [2, 20]);
    x.dispose();
  });
});

describe('memory scopes and lifetimes', () => {
  it('tidy disposes intermediates and keeps the result', () => {
    const before = T.memoryInfo().liveTensors;
    const r = T.tidy(() => {
      const a = T.tensor([1, 2, 3]);
      const b = T.mul(T.add(a, 1), 2);
      return T.sum(b);
    });
    assert.equal(r.item(), 18);
    assert.equal(T.memoryInfo().liveTensors, before + 1);
    r.dispose();
    assert.equal(T.memoryInfo().liveTensors, before);
  });

  it('use after dispose raises a LifetimeError naming the op', () => {
    const a = T.tensor([1, 2]);
    a.dispose();
    assert.throws(() => T.add(a, a), (e: Error) => e instanceof T.LifetimeError && /add: .* used after dispose/.test(e.message));
    assert.throws(() => a.toArray(), T.LifetimeError);
  });

  it('views keep storage alive until the last view is disposed', () => {
    const a = T.tensor([1, 2, 3, 4], [2, 2]);
    const v = T.transpose(a);
    a.dispose();
    assert.deepEqual(v.toArray(), [1, 3, 2, 4]);
    v.dispose();
  });

  it('disposing an activation before backward is reported, not silently wrong', () => {
    const x = T.tensor([1, 2]).requireGrad();
    const h = T.mul(x, 2);
    const y = T.sum(T.exp(h));
    h.dispose();
    assert.throws(() => y.backward(), (e: Error) => e instanceof T.LifetimeError && /an input of exp \(the output of mul, tensor #\d+ \[2\]\) was disposed before backward/.test(e.message));
    y.dispose();
    x.dispose();
  });

  for (const b of availableBackends())
    it(`memory does not grow over 100 training steps (${b.name})`, () => {
      withBackend(b, () => {
        T.manualSeed(1);
        const w = T.keep(T.randn([8, 16], { std: 0.1 })).requireGrad();
        const emb = T.keep(T.randn([10, 16], { std: 0.1 })).requireGrad();
        const opt = new AdamW([w, emb], { lr: 1e-2 });
        const ids = T.intTensor([1, 2, 3, 4, 5, 6]);
        const tg = T.intTensor([2, 3, 4, 5, 6, 7]);
        const step = (): number =>
          T.tidy(() => {
            const h = T.embedding(emb, ids);
            const loss = T.fusedCrossEntropy(h, w, tg);
            loss.backward();
            clipGradNorm([w, emb], 1);
            opt.step();
            opt.zeroGrad();
            return loss.item();
          });
        for (let i = 0; i < 5; i++) step();
        const tensorsAfterWarmup = T.memoryInfo().liveTensors;
        const bytesAfterWarmup = nativeAddon && b.name === 'native' ? nativeAddon.memoryStats().liveBytes : 0;
        let first = 0;
        let last = 0;
        for (let i = 0; i < 100; i++) {
          const l = step();
          if (i === 0) first = l;
          last = l;
        }
        assert.equal(T.memoryInfo().liveTensors, tensorsAfterWarmup, 'live tensors stable');
        if (nativeAddon && b.name === 'native') assert.equal(nativeAddon.memoryStats().liveBytes, bytesAfterWarmup, 'native bytes stable');
        assert.ok(last < first, `loss decreased (${first} -> ${last})`);
        opt.dispose();
        w.dispose();
        emb.dispose();
        ids.dispose();
        tg.dispose();
      });
    });
});

describe('errors name the op and shapes', () => {
  it('matmul inner dimension mismatch', () => {
    assert.throws(() => T.tidy(() => T.matmul(T.zeros([2, 3]), T.zeros([4, 5]))), /matmul: inner dimensions differ: a \[2,3\] @ b \[4,5\]/);
  });
  it('broadcast mismatch', () => {
    assert.throws(() => T.tidy(() => T.add(T.zeros([2, 3]), T.zeros([4]))), (e: Error) => e instanceof T.ShapeError && /add: shapes \[2,3\] and \[4\]/.test(e.message));
  });
  it('float ids in embedding', () => {
    assert.throws(() => T.tidy(() => T.embedding(T.zeros([4, 2]), T.zeros([3]))), (e: Error) => e instanceof T.DTypeError && /embedding: indices must be int32/.test(e.message));
  });
  it('out-of-range gather / embedding indices', () => {
    assert.throws(() => T.tidy(() => T.embedding(T.zeros([4, 2]), T.intTensor([1, 4]))), (e: Error) => e instanceof T.IndexError && /index 4 at position 1 is out of range/.test(e.message));
    assert.throws(() => T.tidy(() => T.gather(T.zeros([2, 3]), 1, T.intTensor([0, -1], [2, 1]))), T.IndexError);
    assert.throws(() => T.tidy(() => T.linearLogprob(T.zeros([2, 3]), T.zeros([5, 3]), T.intTensor([0, 5]))), /target 5 at position 1 is out of range for vocabulary size 5/);
  });
  it('attention head mismatch', () => {
    assert.throws(() => T.tidy(() => T.scaledDotProductAttention(T.zeros([1, 3, 2, 4]), T.zeros([1, 2, 2, 4]), T.zeros([1, 2, 2, 4]))), /query heads 3 must be a multiple of key\/value heads 2/);
  });
  it('reshape with the wrong size', () => {
    assert.throws(() => T.tidy(() => T.reshape(T.zeros([2, 3]), [4, 2])), /reshape: cannot view \[2,3\] \(6 elements\) as \[4,2\]/);
  });
});

describe('determinism', () => {
  it('the same seed gives the same numbers on every backend', () => {
    const draws = availableBackends().map((b) =>
      withBackend(b, () => {
        T.manualSeed(42);
        return T.tidy(() => [T.randn([37]).toArray(), T.rand([5]).toArray()]);
      }),
    );
    for (const d of draws) assert.deepEqual(d, draws[0]);
    T.manualSeed(42);
    const again = T.tidy(() => T.randn([37]).toArray());
    assert.deepEqual(again, draws[0][0]);
  });

  it('a training step is bit-identical with 1 and 2 threads', (t) => {
    if (!nativeBackend || !nativeAddon) return t.skip('native addon not built');
    const addon = nativeAddon;
    const run = (threads: number): number[] => {
      addon.setThreads(threads);
      return withBackend(nativeBackend!, () => {
        const x = T.keep(T.tensor(randArray(64 * 48, 1), [64, 48])).requireGrad();
        const w = T.keep(T.tensor(randArray(96 * 48, 2, 0.2), [96, 48])).requireGrad();
        const q = T.tensor(randArray(2 * 4 * 33 * 16, 3), [2, 4, 33, 16]).requireGrad();
        const out = T.tidy(() => {
          const h = T.linear(x, w);
          const a = T.scaledDotProductAttention(q, q, q, { causal: true });
          const loss = T.add(T.fusedCrossEntropy(T.rmsNorm(h, T.ones([96]), 1e-5), T.keep(T.tensor(randArray(50 * 96, 4), [50, 96])), T.intTensor(Array.from({ length: 64 }, (_, i) => i % 50))), T.sum(a));
          loss.backward();
          return [loss.item(), ...x.grad!.toArray(), ...w.grad!.toArray(), ...q.grad!.toArray()];
        });
        x.dispose();
        w.dispose();
        q.dispose();
        return out;
      });
    };
    const threads = addon.info().threads;
    try {
      const one = run(1);
      const two = run(2);
      assert.deepEqual(two, one);
    } finally {
      addon.setThreads(threads);
    }
  });
});

describe('16-bit storage', () => {
  it('bfloat16 and float16 round to nearest even like PyTorch', () => {
    assert.equal(T.float32ToBFloat16Bits(1), 0x3f80);
    assert.equal(T.float32ToBFloat16Bits(-2.5), 0xc020);
    assert.equal(T.float32ToBFloat16Bits(1 + 2 ** -8), 0x3f80); // tie -> even
    assert.equal(T.float32ToBFloat16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie -> even (up)
    assert.equal(T.float32ToFloat16Bits(1), 0x3c00);
    assert.equal(T.float32ToFloat16Bits(65504), 0x7bff);
    assert.equal(T.float32ToFloat16Bits(1e6), 0x7c00);
    assert.equal(T.float32ToFloat16Bits(2 ** -24), 0x0001);
    assert.equal(T.float16BitsToFloat32(0x3555), 0.333251953125);
    assert.ok(Number.isNaN(T.bfloat16BitsToFloat32(T.float32ToBFloat16Bits(NaN))));
  });
  it('cast round-trips through bf16 exactly for bf16-representable values', () => {
    withBackend(jsBackend, () =>
      T.tidy(() => {
        const x = T.tensor([1, -0.5, 3.140625, 0, 65536]);
        const back = T.cast(T.cast(x, 'bfloat16'), 'float32');
        assert.deepEqual(back.toArray(), x.toArray());
      }),
    );
  });
});
