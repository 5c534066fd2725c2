// The engine demo (`alignkit demo-engine`): a small Llama-style character language model (RoPE, RMSNorm, grouped-query causal attention,
// SwiGLU MLP, tied embeddings) trained from scratch with AdamW on text bundled with alignkit. It exercises
// the whole engine end to end — every fused kernel forward and backward — and is deterministic for a seed.

import { readFileSync } from 'node:fs';
import * as T from '../tensor/index.ts';
import type { Tensor } from '../tensor/index.ts';
import { AdamW, clipGradNorm } from '../optim/index.ts';
import { backend } from '../backend/index.ts';

export interface TinyLmConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  seqLen: number;
  ropeTheta: number;
}

export const DEFAULT_TINY_CONFIG: TinyLmConfig = { hidden: 64, layers: 2, heads: 4, kvHeads: 2, intermediate: 172, seqLen: 64, ropeTheta: 10000 };

interface Layer {
  attnNorm: Tensor;
  wq: Tensor;
  wk: Tensor;
  wv: Tensor;
  wo: Tensor;
  mlpNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

export class TinyLm {
  readonly embed: Tensor;
  readonly layers: Layer[];
  readonly finalNorm: Tensor;
  private readonly cos: Tensor;
  private readonly sin: Tensor;

  constructor(
    readonly cfg: TinyLmConfig,
    readonly vocab: number,
    seed: number,
  ) {
    const gen = new T.Generator(seed);
    const headDim = cfg.hidden / cfg.heads;
    const param = (shape: number[], std: number, name: string): Tensor => {
      const t = T.untracked(() => T.randn(shape, { std, generator: gen }));
      t.name = name;
      return t.requireGrad();
    };
    const ones = (n: number, name: string): Tensor => {
      const t = T.untracked(() => T.ones([n]));
      t.name = name;
      return t.requireGrad();
    };
    const std = 0.02;
    const outStd = std / Math.sqrt(2 * cfg.layers); // GPT-2's scaled init for residual projections
    this.embed = param([vocab, cfg.hidden], std, 'embed');
    this.layers = Array.from({ length: cfg.layers }, (_, i) => ({
      attnNorm: ones(cfg.hidden, `layers.${i}.attn_norm`),
      wq: param([cfg.heads * headDim, cfg.hidden], std, `layers.${i}.q_proj`),
      wk: param([cfg.kvHeads * headDim, cfg.hidden], std, `layers.${i}.k_proj`),
      wv: param([cfg.kvHeads * headDim, cfg.hidden], std, `layers.${i}.v_proj`),
      wo: param([cfg.hidden, cfg.heads * headDim], outStd, `layers.${i}.o_proj`),
      mlpNorm: ones(cfg.hidden, `layers.${i}.mlp_norm`),
      gate: param([cfg.intermediate, cfg.hidden], std, `layers.${i}.gate_proj`),
      up: param([cfg.intermediate, cfg.hidden], std, `layers.${i}.up_proj`),
      down: param([cfg.hidden, cfg.intermediate], outStd, `layers.${i}.down_proj`),
    }));
    this.finalNorm = ones(cfg.hidden, 'norm');
    const invFreq = Array.from({ length: headDim / 2 }, (_, i) => 1 / Math.pow(cfg.ropeTheta, (2 * i) / headDim));
    const tables = T.untracked(() => T.ropeTables(cfg.seqLen, invFreq));
    this.cos = tables.cos;
    this.sin = tables.sin;
  }

  parameters(): Tensor[] {
    return [this.embed, ...this.layers.flatMap((l) => Object.values(l) as Tensor[]), this.finalNorm];
  }

  /** ids [B, T] -> final hidden states [B, T, hidden]. */
  hidden(ids: Tensor, dropoutP = 0, gen?: T.Generator): Tensor {
    const [B, L] = ids.shape;
    const { hidden, heads, kvHeads } = this.cfg;
    const hd = hidden / heads;
    const positions = T.intTensor(Array.from({ length: B * L }, (_, i) => i % L), [B, L]);
    let x = T.embedding(this.embed, ids); // [B, T, C]
    for (const l of this.layers) {
      const h = T.rmsNorm(x, l.attnNorm, 1e-5);
      const q = T.transpose(T.reshape(T.linear(h, l.wq), [B, L, heads, hd]), 1, 2); // [B, H, T, hd]
      const k = T.transpose(T.reshape(T.linear(h, l.wk), [B, L, kvHeads, hd]), 1, 2); // [B, Hkv, T, hd]
      const v = T.contiguous(T.transpose(T.reshape(T.linear(h, l.wv), [B, L, kvHeads, hd]), 1, 2));
      const qr = T.rope(T.contiguous(q), this.cos, this.sin, positions);
      const kr = T.rope(T.contiguous(k), this.cos, this.sin, positions);
      const a = T.scaledDotProductAttention(qr, kr, v, { causal: true }); // [B, H, T, hd]
      const merged = T.reshape(T.contiguous(T.transpose(a, 1, 2)), [B, L, heads * hd]);
      x = T.add(x, T.dropout(T.linear(merged, l.wo), dropoutP, dropoutP > 0, gen));
      const m = T.rmsNorm(x, l.mlpNorm, 1e-5);
      const act = T.mul(T.silu(T.linear(m, l.gate)), T.linear(m, l.up)); // SwiGLU
      x = T.add(x, T.dropout(T.linear(act, l.down), dropoutP, dropoutP > 0, gen));
    }
    return T.rmsNorm(x, this.finalNorm, 1e-5);
  }

  /** Mean next-token cross-entropy of targets [B, T] (negative = ignored), via the fused LM head. */
  loss(ids: Tensor, targets: Tensor, dropoutP = 0, gen?: T.Generator): Tensor {
    const h = this.hidden(ids, dropoutP, gen);
    return T.fusedCrossEntropy(T.reshape(h, [-1, this.cfg.hidden]), this.embed, targets);
  }

  /** Greedy continuation (recomputes the window each step; the demo model is tiny). */
  greedy(prompt: number[], steps: number): number[] {
    const out = [...prompt];
    for (let s = 0; s < steps; s++) {
      const next = T.noGrad(() =>
        T.tidy(() => {
          const ctx = out.slice(-this.cfg.seqLen);
          const h = this.hidden(T.intTensor(ctx, [1, ctx.length]));
          const last = T.reshape(T.narrow(h, 1, ctx.length - 1, 1), [1, this.cfg.hidden]);
          const logits = T.linear(last, this.embed);
          return T.argmax(logits, -1).item();
        }),
      );
      out.push(next);
    }
    return out;
  }

  dispose(): void {
    for (const p of this.parameters()) p.dispose();
    this.cos.dispose();
    this.sin.dispose();
  }
}

export interface DemoOptions {
  steps: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  logEvery: number;
  textPath: string;
  log: (line: string) => void;
}

export interface DemoResult {
  losses: number[];
  firstLoss: number;
  finalLoss: number;
  tokensPerSecond: number;
  sample: string;
  backend: string;
}

export const DEMO_TEXT = new URL('../../data/demo/alignment-notes.txt', import.meta.url).pathname;

export function runDemo(opts: DemoOptions): DemoResult {
  const text = readFileSync(opts.textPath, 'utf8');
  if (text.length < 200) throw new Error(`demo: ${opts.textPath} is too short (${text.length} characters) to train on`);
  const chars = [...new Set(text)].sort();
  const index = new Map(chars.map((c, i) => [c, i]));
  const data = Array.from(text, (c) => index.get(c) as number);
  const cfg = DEFAULT_TINY_CONFIG;
  const model = new TinyLm(cfg, chars.length, opts.seed);
  const params = model.parameters();
  const decay = params.filter((p) => p.rank === 2);
  const noDecay = params.filter((p) => p.rank !== 2); // norms: no weight decay
  const opt = new AdamW([{ params: decay, options: { weightDecay: 0.1 } }, { params: noDecay, options: { weightDecay: 0 } }], { lr: opts.learningRate, beta2: 0.99 });
  const sampler = new T.Generator(opts.seed + 1);
  const dropoutGen = new T.Generator(opts.seed + 2);
  const warmup = Math.max(1, Math.floor(opts.steps / 10));
  const losses: number[] = [];
  const L = cfg.seqLen;
  const t0 = performance.now();
  for (let step = 0; step < opts.steps; step++) {
    // Warmup then cosine decay to 10%.
    const lr = step < warmup ? (opts.learningRate * (step + 1)) / warmup : opts.learningRate * (0.1 + 0.45 * (1 + Math.cos((Math.PI * (step - warmup)) / Math.max(1, opts.steps - warmup))));
    opt.setLearningRate(lr);
    const starts = T.tidy(() => T.rand([opts.batchSize], { generator: sampler }).toArray()).map((u) => Math.floor(u * (data.length - L - 1)));
    const ids: number[] = [];
    const tg: number[] = [];
    for (const s of starts) {
      ids.push(...data.slice(s, s + L));
      tg.push(...data.slice(s + 1, s + L + 1));
    }
    const loss = T.tidy(() => {
      const l = model.loss(T.intTensor(ids, [opts.batchSize, L]), T.intTensor(tg, [opts.batchSize * L]), 0.05, dropoutGen);
      l.backward();
      return l.item();
    });
    const clip = clipGradNorm(params, 1.0);
    if (clip.nonFinite) throw new Error(`demo: non-finite gradient at step ${step} in ${clip.nonFinite}`);
    opt.step();
    opt.zeroGrad();
    losses.push(loss);
    if (step % opts.logEvery === 0 || step === opts.steps - 1)
      opts.log(`step ${String(step).padStart(4)}  loss ${loss.toFixed(4)}  lr ${lr.toExponential(2)}  grad-norm ${clip.totalNorm.toFixed(3)}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const prompt = Array.from('Alignment ', (c) => index.get(c) ?? 0);
  const sample = model.greedy(prompt, 80).map((i) => chars[i]).join('');
  opt.dispose();
  model.dispose();
  return {
    losses,
    firstLoss: losses[0],
    finalLoss: losses[losses.length - 1],
    tokensPerSecond: (opts.steps * opts.batchSize * L) / seconds,
    sample,
    backend: backend().info().isa,
  };
}
