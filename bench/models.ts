// Whole models next to PyTorch eager CPU (transformers), on the SAME weights: the bench writes a random
// Hugging Face folder once with initModel, loads it with alignkit's loadModel and, in a Python peer, with
// AutoModelForCausalLM.from_pretrained, then times the same work on both sides with the same thread count.
//
// Cases (tokens/s, higher is better; MEDIANS over a few repeats, these are slow on a small CPU):
// - model fwd:   batch 1 × 512 tokens, no grad: the whole body plus the LM head on the LAST position only
//                (alignkit: forward + linear on the last row; torch: model(ids, logits_to_keep=1)).
//                tok/s = 512 / time. alignkit's native peak memory for it (above the live weights) is reported too.
// - generate bN: greedy, KV cache, batch N ∈ {1, 8}, 32-token prompts (equal length: no padding), exactly 64 new
//                tokens (no stop tokens on either side). tok/s = N · 64 / time; the time includes the prompt's
//                prefill. Both sides get the same prompts; the bench also counts how many generated tokens agree.
// - train step:  forward + backward of the next-token LM loss on batch 1 × 256 (no optimizer step).
//                alignkit: fused chunked LM-head cross-entropy (never materialises [T, V] logits); torch:
//                model(ids, labels=ids).loss.backward() (full logits, the usual eager recipe). tok/s = 256 / time.
//
// Cost: each side does 1 warm-up + 3 timed calls per case (--quick: 1 + 1), all sequential. On 2 otherwise idle
// cores the full bench is roughly 5 minutes; on a loaded machine torch's generate (2 OpenMP threads that spin at
// barriers) slows down far more than alignkit, so run it on a quiet machine before trusting the ratios.
// torch's generate() has per-step overhead (logits processors, stopping criteria, cache bookkeeping) that a
// hand-written loop avoids; it is what users call, so it is what is measured.
//
// Filters: shapes start with the model name ('gpt2-124M ...', 'SmolLM2-135M ...'), so `--filter 124M`,
// `--filter "generate b8"`, `--filter "SmolLM2-135M B1 T512"` etc. select cases.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBackend, withBackend } from '../src/backend/index.ts';
import { generate } from '../src/generate/index.ts';
import { initModel, loadModel, type InitModelOptions, type PretrainedLM } from '../src/models/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import * as T from '../src/tensor/index.ts';
import { registerBench, runPythonPeer, timeIt, type BenchContext, type TimingOptions } from './common.ts';

interface ModelCase {
  name: string;
  init: InitModelOptions;
}

const MODELS: ModelCase[] = [
  { name: 'gpt2-124M', init: { arch: 'gpt2', vocab: 50257, hidden: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 1024, seed: 1 } },
  {
    name: 'SmolLM2-135M',
    init: { arch: 'llama', vocab: 49152, hidden: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, tieWordEmbeddings: true, maxPositions: 2048, seed: 2 },
  },
];

const FWD_SEQ = 512;
const TRAIN_SEQ = 256;
const PROMPT = 32;
const NEW = 64;
const GEN_BATCHES = [1, 8];

/** Deterministic token ids in [0, vocab) (a 32-bit LCG; no need for the tensor RNG here). */
function tokenIds(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % vocab);
  }
  return out;
}

interface Plan {
  fwd: boolean;
  gen: number[]; // batch sizes
  train: boolean;
}

function shapes(m: ModelCase): { fwd: string; gen: (b: number) => string; train: string } {
  return {
    fwd: `${m.name} B1 T${FWD_SEQ} last-pos logits`,
    gen: (b) => `${m.name} B${b} prompt${PROMPT} new${NEW} greedy`,
    train: `${m.name} B1 T${TRAIN_SEQ} fwd+bwd`,
  };
}

interface PeerOut {
  version: string;
  fwd_s: number | null;
  gen: { s: number; tokens: number[][] }[];
  train_s: number | null;
}

function isPeerOut(v: unknown): v is PeerOut {
  return typeof v === 'object' && v !== null && 'version' in v && 'gen' in v && Array.isArray((v as { gen: unknown }).gen);
}

function benchModel(ctx: BenchContext, m: ModelCase, plan: Plan, threads: number): void {
  const quick = ctx.options.quick;
  const timing: TimingOptions = { warmup: 1, repeat: quick ? 1 : 3, minMs: 0 };
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-model-'));
  try {
    const t0 = Date.now();
    initModel({ ...m.init, dir }).dispose();
    const ids = tokenIds(Math.max(FWD_SEQ, TRAIN_SEQ), m.init.vocab, 12345);
    const prompts = new Map<number, number[][]>(plan.gen.map((b) => [b, Array.from({ length: b }, (_, r) => tokenIds(PROMPT, m.init.vocab, 1000 + r))]));
    ctx.note(`${m.name}: random HF folder written in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);

    // The peer first (sequential: the two never share the cores).
    const spec = {
      fwd: plan.fwd ? { seq: FWD_SEQ } : null,
      gen: plan.gen.map((b) => ({ batch: b, prompts: prompts.get(b), new: NEW })),
      train: plan.train ? { seq: TRAIN_SEQ } : null,
      ids,
      warmup: timing.warmup,
      repeat: timing.repeat,
    };
    const tp = Date.now();
    const raw = runPythonPeer('torch_models.py', ['--threads', String(threads), '--dir', dir, '--spec', JSON.stringify(spec)]);
    const peer = isPeerOut(raw) ? raw : null;
    const peerName = peer ? `torch ${peer.version.split('+')[0]}` : null;
    ctx.note(`${m.name}: torch peer took ${((Date.now() - tp) / 1e3).toFixed(1)} s`);

    const sh = shapes(m);
    withBackend(nativeBackend!, () => {
      const model: PretrainedLM = loadModel(dir, { trainable: plan.train });
      try {
        if (plan.fwd) {
          const x = T.intTensor(ids.slice(0, FWD_SEQ), [1, FWD_SEQ]);
          const fwd = (): void =>
            T.tidy(() =>
              T.noGrad(() => {
                const h = model.forward(x); // [1, T, H]
                const last = T.narrow(h, 1, FWD_SEQ - 1, 1); // [1, 1, H]
                model.logits(last).dispose(); // [1, 1, V]
              }),
            );
          const s = timeIt(fwd, timing).seconds;
          let peakMb = NaN;
          if (nativeAddon) {
            const base = nativeAddon.memoryStats().liveBytes;
            nativeAddon.resetPeak();
            fwd();
            peakMb = (nativeAddon.memoryStats().peakBytes - base) / 2 ** 20;
          }
          x.dispose();
          ctx.report({ bench: 'model fwd', shape: sh.fwd, unit: 'tok/s', value: FWD_SEQ / s, peer: peerName, peer_value: peer?.fwd_s ? FWD_SEQ / peer.fwd_s : null });
          ctx.report({ bench: 'model fwd peak', shape: sh.fwd, unit: 'MB', value: peakMb, peer: null, peer_value: null });
        }
        plan.gen.forEach((b, i) => {
          const inputIds = prompts.get(b)!;
          let out: number[][] = [];
          const run = (): void => {
            out = generate(model, { inputIds, maxNewTokens: NEW, temperature: 0, useCache: true, stopTokenIds: [] }).map((r) => r.ids);
          };
          const s = timeIt(run, timing).seconds;
          const p = peer?.gen[i] ?? null;
          if (p) {
            let same = 0;
            let firstDiff = 0;
            out.forEach((row, r) => {
              const pr = p.tokens[r];
              let k = 0;
              while (k < row.length && row[k] === pr[k]) k++;
              firstDiff += k;
              row.forEach((t, j) => (same += t === pr[j] ? 1 : 0));
            });
            ctx.note(`${m.name} generate b${b}: ${same}/${b * NEW} tokens equal to torch's; common prefix ${(firstDiff / b).toFixed(1)}/${NEW} tokens per row on average`);
          }
          ctx.report({ bench: `generate b${b}`, shape: sh.gen(b), unit: 'tok/s', value: (b * NEW) / s, peer: peerName, peer_value: p ? (b * NEW) / p.s : null });
        });
        if (plan.train) {
          const x = T.intTensor(ids.slice(0, TRAIN_SEQ), [1, TRAIN_SEQ]);
          const targets = T.intTensor(ids.slice(1, TRAIN_SEQ), [TRAIN_SEQ - 1]);
          const params = [...model.namedParameters().values()];
          const step = (): void => {
            T.tidy(() => {
              const h = model.forward(x); // [1, T, H]
              const hs = T.reshape(T.narrow(h, 1, 0, TRAIN_SEQ - 1), [TRAIN_SEQ - 1, m.init.hidden]); // predicts ids[1:]
              T.fusedCrossEntropy(hs, model.lmHeadWeight(), targets, { bias: model.lmHeadBias() }).backward();
            });
            params.forEach((p) => p.zeroGrad());
          };
          const s = timeIt(step, timing).seconds;
          x.dispose();
          targets.dispose();
          ctx.report({ bench: 'train step', shape: sh.train, unit: 'tok/s', value: TRAIN_SEQ / s, peer: peerName, peer_value: peer?.train_s ? TRAIN_SEQ / peer.train_s : null });
        }
      } finally {
        model.dispose();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

registerBench('models', (ctx: BenchContext) => {
  if (!nativeBackend || !nativeAddon) {
    ctx.note('models: native addon not built; skipping');
    return;
  }
  const threads = nativeAddon.info().threads;
  for (const m of MODELS) {
    const sh = shapes(m);
    const plan: Plan = {
      fwd: ctx.wants('model fwd', sh.fwd) || ctx.wants('model fwd peak', sh.fwd),
      gen: GEN_BATCHES.filter((b) => ctx.wants(`generate b${b}`, sh.gen(b))),
      train: ctx.wants('train step', sh.train),
    };
    if (!plan.fwd && plan.gen.length === 0 && !plan.train) continue;
    benchModel(ctx, m, plan, threads);
  }
});
