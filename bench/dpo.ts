// One DPO optimizer step on SmolLM2-135M's shape, alignkit's real trainer path next to the plain eager PyTorch
// recipe, on the SAME random weights (a Hugging Face folder written once by initModel and loaded by both).
//
// Work per step: 4 pairs, prompt 64 + completion 64 random token ids (no padding), sigmoid DPO loss, β 0.1,
// global grad-norm clip 1.0, AdamW (lr 1e-6, weight decay 0: DpoConfig's defaults), same thread count.
// - alignkit: a TrainTask around a fixed collatePairs batch whose forwardBackward is preference.ts's (DPO_METHOD.loss
//   → contribution Σℓ/pairs → backward) driven by runTrainingLoop with makeOptimizer (weightDecayGroups + AdamW).
//   As `alignkit dpo` does with precompute_ref_log_probs (the default), the reference log-probs are computed ONCE
//   before training (makeReference → referencePairLogps, the policy before its first update: no second copy), so
//   a step runs only the policy. That one-off cost is reported on its own ('dpo ref logps').
// - torch (bench/peers/torch_dpo.py): policy forward + backward on the 8 concatenated rows with full HF logits and
//   log_softmax/gather, plus a no-grad forward of a second model copy (the reference) EVERY step, then
//   clip_grad_norm_ and AdamW. Computing the reference per step is what a plain eager step does; it is part of
//   why the two differ, and the per-phase notes show how much.
//
// Each side runs in its own child process (alignkit: this file with --child; torch: the peer), sequentially, so
// each one's peak RSS (VmHWM / ru_maxrss) is its own: weights, optimizer state, activations, the runtime.
//
// Records: 'dpo step' pairs/s (higher is better) and 'dpo step time' s (the same median, readable in the
// table); 'dpo ref logps' ms (alignkit's one-off reference pass over the
// batch vs torch's per-step reference forward); 'dpo peak RSS' MB. Timing: the MEDIAN of 3 steps after 1
// warm-up step per side (--quick: 1 after 1). On 2 idle cores the full case takes a few minutes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeBackend, useBackend, withBackend } from '../src/backend/index.ts';
import { collatePairs, type PairBatch } from '../src/data/pair_collate.ts';
import type { TokenizedPair } from '../src/data/preference.ts';
import { initModel, loadModel, type InitModelOptions } from '../src/models/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { mulScalar, sum, tidy } from '../src/tensor/index.ts';
import { DPO_METHOD } from '../src/trainers/dpo.ts';
import { makeReference, referencePairLogps, type CachedReference } from '../src/trainers/preference.ts';
import { DpoConfigSchema, type DpoConfig } from '../src/train/config.ts';
import { runTrainingLoop, type TrainTask } from '../src/train/loop.ts';
import { makeOptimizer, type Policy } from '../src/train/session.ts';
import { median, registerBench, runPythonPeer, type BenchContext } from './common.ts';

const MODEL_NAME = 'SmolLM2-135M';
const MODEL: InitModelOptions = {
  arch: 'llama', vocab: 49152, hidden: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, tieWordEmbeddings: true, maxPositions: 2048, seed: 2,
};
const PAIRS = 4;
const PROMPT = 64;
const COMPLETION = 64;
const BETA = 0.1;
const MAX_GRAD_NORM = 1.0;

const SHAPE = `${MODEL_NAME} dpo step b${PAIRS} p${PROMPT}+c${COMPLETION}`;
const REF_SHAPE = `${MODEL_NAME} dpo ref b${PAIRS} p${PROMPT}+c${COMPLETION} (alignkit once, torch per step)`;

/** Deterministic token ids in [0, vocab) (a 32-bit LCG, as bench/models.ts; no need for the tensor RNG here). */
function tokenIds(n: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s % vocab;
  }
  return out;
}

/** The benchmark's pairs: pair i has its own prompt, chosen and rejected ids (seeds fixed, so both sides agree). */
function benchPairs(): TokenizedPair[] {
  return Array.from({ length: PAIRS }, (_, i) => ({
    promptIds: tokenIds(PROMPT, MODEL.vocab, 100 + i),
    chosenIds: tokenIds(COMPLETION, MODEL.vocab, 200 + i),
    rejectedIds: tokenIds(COMPLETION, MODEL.vocab, 300 + i),
    margin: null,
    truncated: false,
  }));
}

function dpoConfig(modelDir: string, outputDir: string): DpoConfig {
  // train_file is never opened: the task below feeds a fixed batch. Everything else is DpoConfig's defaults.
  return DpoConfigSchema.parse({ model_name_or_path: modelDir, output_dir: outputDir, train_file: join(outputDir, 'unused.jsonl'), beta: BETA, max_grad_norm: MAX_GRAD_NORM });
}

/** Peak resident set of this process (VmHWM), MiB; NaN where /proc is unavailable. */
function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

// ------------------------------------------------------------------------------------------------ alignkit (child)

interface ChildSpec {
  dir: string;
  warmup: number;
  repeat: number;
}

interface ChildOut {
  threads: number;
  step_s: number;
  step_samples: number[];
  /** medians over the timed steps, seconds */
  phases: { policy_fwd: number; backward: number; clip_adamw_rest: number };
  ref_once_s: number;
  /** [2N] reference log-probs: chosen rows, then rejected rows */
  ref_logps: number[];
  peak_rss_mb: number;
  /** the native allocator's peak of live tensor bytes (weights, grads, AdamW state, activations), MiB */
  native_peak_mb: number;
}

function isChildOut(v: unknown): v is ChildOut {
  return typeof v === 'object' && v !== null && 'step_s' in v && 'phases' in v && 'peak_rss_mb' in v;
}

/** The alignkit side, in its own process: the real DPO step through runTrainingLoop. */
async function alignkitChild(spec: ChildSpec): Promise<ChildOut> {
  if (!nativeAddon) throw new Error('native addon not built');
  useBackend('native'); // this process does nothing else (withBackend cannot span the loop's awaits)
  const outDir = mkdtempSync(join(tmpdir(), 'alignkit-bench-dpo-out-'));
  try {
    {
      const cfg = dpoConfig(spec.dir, outDir);
      const model = loadModel(spec.dir, { trainable: true });
      // DPO_METHOD.loss reads policy.model, makeReference reads policy.lora; the tokenizer and saving parts of a
      // Policy are not used by a step (the random folder has no tokenizer for loadPolicy to load).
      const policy = { model, lora: null } as Pick<Policy, 'model' | 'lora'> as Policy;
      const trainable = new Map([...model.namedParameters()].filter(([, t]) => t.requiresGrad));
      const batch: PairBatch = collatePairs(benchPairs(), { padTokenId: 0 });

      // The one-off reference pass the trainer makes before step 1 (precompute_ref_log_probs).
      const tr = process.hrtime.bigint();
      const reference = makeReference(cfg, policy);
      const ref: CachedReference = referencePairLogps(reference, batch);
      reference.dispose();
      const refOnce = Number(process.hrtime.bigint() - tr) / 1e9;

      const fwd: number[] = [];
      const bwd: number[] = [];
      const task: TrainTask<PairBatch> = {
        nextMicroBatch: async () => batch,
        lossUnits: (mb) => mb.pairs,
        tokens: (mb) => 2 * mb.pairs * mb.seq,
        // preference.ts's forwardBackward for per-pair losses, with the two halves timed
        forwardBackward(mb, normalizer) {
          return tidy(() => {
            const t0 = process.hrtime.bigint();
            const r = DPO_METHOD.loss({ cfg, policy, batch: mb, ref });
            const loss = mulScalar(sum(r.losses), 1 / normalizer);
            const value = loss.item();
            const t1 = process.hrtime.bigint();
            loss.backward();
            const t2 = process.hrtime.bigint();
            fwd.push(Number(t1 - t0) / 1e9);
            bwd.push(Number(t2 - t1) / 1e9);
            return { loss: value };
          });
        },
        epoch: () => 0,
        saveModel: () => {
          throw new Error('bench: saveModel is not expected (saveSteps null)');
        },
        loadModel: () => {
          throw new Error('bench: loadModel is not expected (no resume)');
        },
        state: () => ({ data: null, rng: {} }),
        restore: () => {},
      };
      const optimizer = makeOptimizer(cfg, trainable);
      const ends: bigint[] = [];
      const steps = spec.warmup + spec.repeat;
      const t0 = process.hrtime.bigint();
      try {
        await runTrainingLoop(task, optimizer, { log: () => {} }, {
          outputDir: outDir, totalSteps: steps, gradientAccumulationSteps: 1, maxGradNorm: cfg.max_grad_norm,
          lrAt: () => cfg.learning_rate, loggingSteps: steps, evalSteps: null, evaluateAtEnd: false, saveSteps: null,
          saveTotalLimit: null, metricForBestModel: 'eval_loss', greaterIsBetter: false, loadBestModelAtEnd: false,
          earlyStopping: null, maxNanSteps: 0, resumeFrom: null, config: {},
          onStep: () => ends.push(process.hrtime.bigint()),
        });
      } finally {
        optimizer.dispose();
        model.dispose();
      }
      const stepS = ends.map((e, i) => Number(e - (i === 0 ? t0 : ends[i - 1])) / 1e9).slice(spec.warmup);
      const timedFwd = fwd.slice(spec.warmup);
      const timedBwd = bwd.slice(spec.warmup);
      const rest = stepS.map((s, i) => s - timedFwd[i] - timedBwd[i]);
      return {
        threads: nativeAddon.info().threads,
        step_s: median(stepS),
        step_samples: stepS,
        phases: { policy_fwd: median(timedFwd), backward: median(timedBwd), clip_adamw_rest: median(rest) },
        ref_once_s: refOnce,
        ref_logps: [...ref.chosen, ...ref.rejected],
        peak_rss_mb: peakRssMb(),
        native_peak_mb: nativeAddon.memoryStats().peakBytes / 2 ** 20,
      };
    }
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------------ parent

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = join(dirname(thisFile), '..');

function runAlignkitChild(ctx: BenchContext, spec: ChildSpec, threads: number): ChildOut | null {
  const res = spawnSync(process.execPath, [...process.execArgv, thisFile, '--child', JSON.stringify(spec)], {
    cwd: repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ALIGNKIT_THREADS: String(threads) },
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 900_000,
    maxBuffer: 16 << 20,
  });
  if (res.error || res.status !== 0) {
    ctx.note(`dpo: alignkit child failed (${res.error?.message ?? `exit ${res.status}`})`);
    return null;
  }
  try {
    const v: unknown = JSON.parse(res.stdout.trim().split('\n').slice(-1)[0]);
    return isChildOut(v) ? v : null;
  } catch {
    ctx.note('dpo: alignkit child printed no JSON');
    return null;
  }
}

interface PeerOut {
  version: string;
  threads: number;
  step_s: number;
  phases: Record<string, number>;
  ref_fwd_s: number;
  ref_logps: number[];
  peak_rss_mb: number;
}

function isPeerOut(v: unknown): v is PeerOut {
  return typeof v === 'object' && v !== null && 'version' in v && 'step_s' in v && 'phases' in v;
}

const ms = (s: number): string => `${(s * 1e3).toFixed(0)} ms`;

registerBench('dpo', (ctx: BenchContext) => {
  const wantStep = ctx.wants('dpo step', SHAPE);
  const wantStepTime = ctx.wants('dpo step time', SHAPE);
  const wantRef = ctx.wants('dpo ref logps', REF_SHAPE);
  const wantRss = ctx.wants('dpo peak RSS', SHAPE);
  if (!wantStep && !wantStepTime && !wantRef && !wantRss) return;
  if (!nativeBackend || !nativeAddon) {
    ctx.note('dpo: native addon not built; skipping');
    return;
  }
  const threads = nativeAddon.info().threads;
  const quick = ctx.options.quick;
  const warmup = 1;
  const repeat = quick ? 1 : 3;
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-dpo-'));
  try {
    const t0 = Date.now();
    withBackend(nativeBackend, () => initModel({ ...MODEL, dir }).dispose());
    ctx.note(`dpo: random ${MODEL_NAME} folder written in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);

    // The peer first (sequential: the two never share the cores).
    const batch = collatePairs(benchPairs(), { padTokenId: 0 });
    const T = batch.seq;
    const rows = Array.from({ length: 2 * PAIRS }, (_, r) => Array.from(batch.inputIds.subarray(r * T, (r + 1) * T)));
    const cfg = dpoConfig(dir, dir);
    const peerSpec = { pairs: PAIRS, prompt: PROMPT, completion: COMPLETION, beta: cfg.beta, lr: cfg.learning_rate, max_grad_norm: cfg.max_grad_norm, input_ids: rows, warmup, repeat };
    const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
    ctx.note(`dpo: load average ${load()} before the torch peer`);
    const tp = Date.now();
    const raw = runPythonPeer('torch_dpo.py', ['--threads', String(threads), '--dir', dir, '--spec', JSON.stringify(peerSpec)], {}, 900_000);
    const peer = isPeerOut(raw) ? raw : null;
    const peerName = peer ? `torch ${peer.version.split('+')[0]}` : null;
    ctx.note(`dpo: torch peer took ${((Date.now() - tp) / 1e3).toFixed(1)} s`);

    ctx.note(`dpo: load average ${load()} before alignkit`);
    const ta = Date.now();
    const ak = runAlignkitChild(ctx, { dir, warmup, repeat }, threads);
    ctx.note(`dpo: alignkit child took ${((Date.now() - ta) / 1e3).toFixed(1)} s`);
    if (!ak) return;

    if (peer) {
      // Same weights, same rows: the reference log-probs must agree (sums of 64 log-probs each, float32).
      const diff = Math.max(...ak.ref_logps.map((v, i) => Math.abs(v - peer.ref_logps[i])));
      ctx.note(`dpo: reference log-probs alignkit vs torch, max |diff| ${diff.toExponential(2)} over ${ak.ref_logps.length} rows (values near ${ak.ref_logps[0].toFixed(1)})`);
      const p = peer.phases;
      ctx.note(`dpo torch step ${ms(peer.step_s)}: policy fwd ${ms(p.policy_fwd)}, ref fwd ${ms(p.ref_fwd)}, backward ${ms(p.backward)}, clip ${ms(p.clip)}, adamw ${ms(p.adamw)} (${peer.threads} threads)`);
    }
    const a = ak.phases;
    ctx.note(`dpo alignkit step ${ms(ak.step_s)}: policy fwd+loss ${ms(a.policy_fwd)}, backward ${ms(a.backward)}, clip+adamw+loop ${ms(a.clip_adamw_rest)}; samples ${ak.step_samples.map(ms).join(', ')} (${ak.threads} threads)`);
    ctx.note(`dpo alignkit peak RSS ${ak.peak_rss_mb.toFixed(0)} MB, of which native tensors at most ${ak.native_peak_mb.toFixed(0)} MB; load average now ${load()}`);

    if (wantStep) ctx.report({ bench: 'dpo step', shape: SHAPE, unit: 'pairs/s', value: PAIRS / ak.step_s, peer: peerName, peer_value: peer ? PAIRS / peer.step_s : null });
    if (wantStepTime) ctx.report({ bench: 'dpo step time', shape: SHAPE, unit: 's', value: ak.step_s, peer: peerName, peer_value: peer ? peer.step_s : null });
    if (wantRef) ctx.report({ bench: 'dpo ref logps', shape: REF_SHAPE, unit: 'ms', value: ak.ref_once_s * 1e3, peer: peerName, peer_value: peer ? peer.ref_fwd_s * 1e3 : null });
    if (wantRss) ctx.report({ bench: 'dpo peak RSS', shape: SHAPE, unit: 'MB', value: ak.peak_rss_mb, peer: peerName, peer_value: peer ? peer.peak_rss_mb : null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `node --import tsx bench/dpo.ts --child <spec>`: the alignkit side alone (spawned by the bench above).
if (process.argv[1] === thisFile && process.argv[2] === '--child') {
  const spec = JSON.parse(process.argv[3] ?? '{}') as ChildSpec;
  process.stdout.write(JSON.stringify(await alignkitChild(spec)) + '\n');
}
