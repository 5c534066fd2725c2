// A toy regression task for testing the training loop without a language model: a weight matrix W [3, 4]
// fitted to y = x Aᵀ by mean squared error, over a fixed dataset sampled in a seeded order. Everything the loop
// checkpoints (weights, data position, a dropout-like RNG draw) is real, so resume can be checked bit for bit.
import * as T from '../../src/tensor/index.ts';
import { join } from 'node:path';
import { openSafetensors, saveSafetensors } from '../../src/io/safetensors.ts';
import type { TrainTask } from '../../src/train/loop.ts';

export interface ToyBatch {
  x: number[];
  y: number[];
  rows: number;
}

export class ToyTask implements TrainTask<ToyBatch> {
  readonly w: T.Tensor;
  private cursor = 0;
  private noiseGen: T.Generator;
  /** Returns NaN as the loss on these (1-based) micro-batch numbers. */
  poisonAt = new Set<number>();
  private served = 0;
  evalCalls = 0;
  /** Random multiplicative jitter on predictions (stands in for dropout). */
  jitter = true;
  loaded: string[] = [];

  constructor(
    private readonly data: { x: number[]; y: number[] }[],
    private readonly batchRows: number,
    seed: number,
  ) {
    this.w = T.untracked(() => T.randn([3, 4], { std: 0.1, generator: new T.Generator(seed) })).requireGrad();
    this.w.name = 'w';
    this.noiseGen = new T.Generator(seed + 99);
  }

  static make(seed: number, rows = 24, batchRows = 3): ToyTask {
    const g = new T.Generator(seed + 5);
    const x = T.untracked(() => T.randn([rows, 4], { generator: g })).toArray();
    const A = [0.5, -1, 2, 0.25, 1, 0.3, -0.7, 0.1, -0.2, 0.8, 0.6, -1.5];
    const data = Array.from({ length: rows }, (_, r) => {
      const xr = x.slice(r * 4, r * 4 + 4);
      return { x: xr, y: [0, 1, 2].map((o) => xr.reduce((s, v, i) => s + v * A[o * 4 + i], 0)) };
    });
    return new ToyTask(data, batchRows, seed);
  }

  async nextMicroBatch(): Promise<ToyBatch> {
    const x: number[] = [];
    const y: number[] = [];
    for (let i = 0; i < this.batchRows; i++) {
      const d = this.data[this.cursor % this.data.length];
      this.cursor++;
      x.push(...d.x);
      y.push(...d.y);
    }
    return { x, y, rows: this.batchRows };
  }

  lossUnits(b: ToyBatch): number {
    return b.rows;
  }

  tokens(b: ToyBatch): number {
    return b.rows;
  }

  forwardBackward(b: ToyBatch, normalizer: number): { loss: number } {
    this.served++;
    const poisoned = this.poisonAt.has(this.served);
    return T.tidy(() => {
      // a random multiplicative jitter stands in for dropout: its RNG state must survive a resume
      const lin = T.linear(T.tensor(b.x, [b.rows, 4]), this.w);
      const pred = this.jitter ? T.mul(lin, T.rand([b.rows, 3], { low: 0.95, high: 1.05, generator: this.noiseGen })) : lin;
      const d = T.sub(pred, T.tensor(b.y, [b.rows, 3]));
      let loss = T.mulScalar(T.sum(T.mul(d, d)), 1 / normalizer);
      if (poisoned) loss = T.mulScalar(loss, Number.NaN);
      const v = loss.item();
      loss.backward();
      return { loss: v };
    });
  }

  async evaluate(): Promise<Record<string, number>> {
    this.evalCalls++;
    return T.noGrad(() =>
      T.tidy(() => {
        const x = this.data.flatMap((d) => d.x);
        const y = this.data.flatMap((d) => d.y);
        const d = T.sub(T.linear(T.tensor(x, [this.data.length, 4]), this.w), T.tensor(y, [this.data.length, 3]));
        return { loss: T.sum(T.mul(d, d)).item() / this.data.length };
      }),
    );
  }

  epoch(): number {
    return this.cursor / this.data.length;
  }

  saveModel(dir: string): void {
    saveSafetensors(join(dir, 'w.safetensors'), { w: this.w });
  }

  loadModel(dir: string): void {
    this.loaded.push(dir);
    const r = openSafetensors(join(dir, 'w.safetensors'));
    try {
      (this.w.data as Float32Array).set(T.noGrad(() => T.tidy(() => r.load('w').toArray())));
    } finally {
      r.close();
    }
  }

  state() {
    return { data: { cursor: this.cursor }, rng: { noise: this.noiseGen.getState() } };
  }

  restore(s: { data: unknown; rng: Record<string, unknown> }): void {
    this.cursor = (s.data as { cursor: number }).cursor;
    this.noiseGen.setState(s.rng.noise as ReturnType<T.Generator['getState']>);
  }
}
