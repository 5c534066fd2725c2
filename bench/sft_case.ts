// One SFT training case of bench/sft.ts, alone in its own process so that the process's peak RSS belongs to this
// case only (bench/sft.ts spawns it; the PyTorch side does the same in bench/peers/torch_sft.py).
//
//   node --import tsx bench/sft_case.ts '<json spec>'      (run from the repository root)
//
// spec (CaseSpec below): the HF folder written by initModel, full fine-tuning or LoRA, the batch's token ids, the
// optimizer settings, warm-up and timed step counts, and optionally `profileSteps` extra steps that split the time
// into model forward / LM-head loss / backward / clip / optimizer (a manual step with the same pieces, wall and CPU
// time per phase, run AFTER the measured ones so it changes neither the timings nor the RSS peak). Prints one JSON
// line (CaseResult) on stdout.
//
// What runs is the real training step: runTrainingLoop (src/train/loop.ts) over a TrainTask whose nextMicroBatch
// returns one fixed collated batch, sftLossBackward as its forward+backward, AdamW over weightDecayGroups, global
// grad-norm clipping, no checkpoints (saveSteps null). A step's time is the interval between two consecutive onStep
// calls, so it contains everything the loop does per step (data, zero_grad, fwd+bwd, clip, update, logging).
// Inside the loop the data / fwd+bwd / optimizer / zero_grad pieces are also timed by wrapping the task's and the
// optimizer's methods (timestamps only; the work is unchanged); the remainder of a step is clipping + loop overhead.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBackend } from '../src/backend/index.ts';
import type { Batch } from '../src/data/collate.ts';
import { loadModel } from '../src/models/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { applyLora, type LoraHandle } from '../src/nn/lora.ts';
import { AdamW, clipGradNorm } from '../src/optim/index.ts';
import * as T from '../src/tensor/index.ts';
import { runTrainingLoop, weightDecayGroups, type TrainTask } from '../src/train/loop.ts';
import { countTargets, forwardInputs, sftLossBackward, shiftLabels } from '../src/trainers/sft_loss.ts';

export interface CaseSpec {
  dir: string;
  mode: 'full' | 'lora';
  /** LoRA settings; `targets` is one full-match regular expression over module names (PEFT's string form). */
  lora: { r: number; alpha: number; targets: string } | null;
  batch: number;
  seq: number;
  /** [batch*seq] token ids, row-major; labels = ids (every next token is a target). */
  ids: number[];
  lr: number;
  weightDecay: number;
  maxGradNorm: number;
  warmup: number;
  steps: number;
  /** Extra manual steps timed phase by phase (0: none). */
  profileSteps?: number;
}

type ProfilePhase = 'zero_grad' | 'body_fwd' | 'head_loss' | 'bwd' | 'clip' | 'opt';

export interface CaseResult {
  library: 'alignkit';
  threads: number;
  /** Median seconds per optimizer step (after `warmup` steps), and every timed step. */
  step_s: number;
  samples: number[];
  /** Process CPU seconds (user + system, all threads) per timed step, on average: less sensitive to a loaded machine. */
  cpu_s: number;
  /** Median seconds inside the loop's steps: data, fwd_bwd (sftLossBackward), opt (AdamW.step), zero_grad, rest (clip + loop). */
  loop_phases: Record<'data' | 'fwd_bwd' | 'opt' | 'zero_grad' | 'rest', number>;
  /**
   * Medians over the manual profile steps (null without profileSteps), wall and process CPU seconds per phase:
   * body_fwd = model.forward; head_loss = the fused LM-head cross-entropy (its forward); bwd = loss.backward().
   */
  phases: { wall: Record<ProfilePhase, number>; cpu: Record<ProfilePhase, number> } | null;
  losses: number[];
  /** VmHWM over the whole process (load included), MiB. */
  peak_rss_mb: number;
  /** VmHWM from just before the first step (after a /proc/self/clear_refs reset; null where refused), MiB. */
  train_peak_rss_mb: number | null;
  rss_before_train_mb: number;
  /** The native allocator: live bytes before the first step (weights) and the peak during training, MiB. */
  native_live_before_mb: number | null;
  native_peak_mb: number | null;
  /** Freed buffers the native pool holds after the timed steps (ALIGNKIT_POOL_MB caps it), MiB. */
  native_pooled_mb: number | null;
  trainable: number;
}

/** A field of /proc/self/status in MiB ('VmHWM', 'VmRSS'); NaN where /proc is unavailable. */
function procStatusMb(field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Resets VmHWM to the current RSS (Linux >= 4.0); false where the kernel refuses. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e9;

/** The fixed collated batch: no padding, labels = ids, so B*(T-1) loss targets after the shift. */
function fixedBatch(spec: CaseSpec): Batch {
  const inputIds = Int32Array.from(spec.ids);
  if (inputIds.length !== spec.batch * spec.seq) throw new RangeError(`sft_case: ${inputIds.length} ids for batch ${spec.batch} x seq ${spec.seq}`);
  const labels = Int32Array.from(spec.ids);
  return {
    batch: spec.batch, seq: spec.seq, inputIds, labels, attentionMask: new Int32Array(inputIds.length).fill(1), positionIds: null, documentIds: null,
    numLossTokens: countTargets(shiftLabels(labels, spec.batch, spec.seq)),
  };
}

async function runCase(spec: CaseSpec): Promise<CaseResult> {
  const model = loadModel(spec.dir, { trainable: true });
  let lora: LoraHandle | null = null;
  const out = mkdtempSync(join(tmpdir(), 'alignkit-bench-sft-'));
  try {
    if (spec.mode === 'lora') {
      if (!spec.lora) throw new Error('sft_case: mode lora needs spec.lora');
      lora = applyLora(model, { r: spec.lora.r, lora_alpha: spec.lora.alpha, lora_dropout: 0, target_modules: spec.lora.targets }, 0);
    }
    const trainable = lora ? lora.trainableParameters() : model.namedParameters();
    const opt = new AdamW(weightDecayGroups(trainable, spec.weightDecay), { lr: spec.lr });
    const batch = fixedBatch(spec);

    // Phase timestamps inside the real loop (wrappers only record time).
    const acc = { data: 0, fwd_bwd: 0, opt: 0, zero_grad: 0 };
    const timed = <R>(key: keyof typeof acc, fn: () => R): R => {
      const t0 = now();
      try {
        return fn();
      } finally {
        acc[key] += now() - t0;
      }
    };
    const optStep = opt.step.bind(opt);
    const optZero = opt.zeroGrad.bind(opt);
    opt.step = () => timed('opt', optStep);
    opt.zeroGrad = () => timed('zero_grad', optZero);

    const task: TrainTask<Batch> = {
      nextMicroBatch: async () => timed('data', () => batch),
      lossUnits: (b) => b.numLossTokens,
      tokens: (b) => b.batch * b.seq,
      forwardBackward: (b, normalizer) => timed('fwd_bwd', () => ({ loss: sftLossBackward(model, b, normalizer) })),
      epoch: () => 0,
      saveModel: () => {},
      loadModel: () => {},
      state: () => ({ data: null, rng: {} }),
      restore: () => {},
    };

    const rssBefore = procStatusMb('VmRSS');
    const loadPeak = procStatusMb('VmHWM');
    const resetOk = resetPeakRss();
    const liveBefore = nativeAddon ? nativeAddon.memoryStats().liveBytes / 2 ** 20 : null;
    nativeAddon?.resetPeak();

    const stamps: number[] = [];
    const losses: number[] = [];
    const perStep: (typeof acc)[] = [];
    let t = now();
    const cpuNow = (): number => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1e6;
    };
    let cpuAtFirstTimed = cpuNow();
    await runTrainingLoop(task, opt, { log: () => {} }, {
      outputDir: out, totalSteps: spec.warmup + spec.steps, gradientAccumulationSteps: 1, maxGradNorm: spec.maxGradNorm, lrAt: () => spec.lr,
      loggingSteps: 1, evalSteps: null, evaluateAtEnd: false, saveSteps: null, saveTotalLimit: null, metricForBestModel: 'eval_loss',
      greaterIsBetter: false, loadBestModelAtEnd: false, earlyStopping: null, maxNanSteps: 0, resumeFrom: null, config: {},
      onStep: (i) => {
        const t1 = now();
        stamps.push(t1 - t);
        t = t1;
        losses.push(i.loss);
        perStep.push({ ...acc });
        if (stamps.length === spec.warmup) cpuAtFirstTimed = cpuNow();
        acc.data = acc.fwd_bwd = acc.opt = acc.zero_grad = 0;
      },
    });
    // Step k's interval ends at its onStep; the part of step k after onStep (logging, eval/save checks) lands in
    // step k+1's interval, which is the steady-state cost of one step.
    const samples = stamps.slice(spec.warmup);
    const cpuPerStep = (cpuNow() - cpuAtFirstTimed) / spec.steps;
    const timedPhases = perStep.slice(spec.warmup);
    const trainPeak = procStatusMb('VmHWM');
    const nativeStats = nativeAddon ? nativeAddon.memoryStats() : null;
    const lifetimePeak = Math.max(loadPeak, trainPeak, process.resourceUsage().maxRSS / 1024);
    const loopPhases = {
      data: median(timedPhases.map((p) => p.data)),
      fwd_bwd: median(timedPhases.map((p) => p.fwd_bwd)),
      opt: median(timedPhases.map((p) => p.opt)),
      zero_grad: median(timedPhases.map((p) => p.zero_grad)),
      rest: median(timedPhases.map((p, i) => samples[i] - p.data - p.fwd_bwd - p.opt - p.zero_grad)),
    };

    let phases: CaseResult['phases'] = null;
    if (spec.profileSteps && spec.profileSteps > 0) {
      opt.step = optStep;
      opt.zeroGrad = optZero;
      const params = opt.groups.flatMap((g) => g.params);
      const wall: Record<ProfilePhase, number[]> = { zero_grad: [], body_fwd: [], head_loss: [], bwd: [], clip: [], opt: [] };
      const cpu: Record<ProfilePhase, number[]> = { zero_grad: [], body_fwd: [], head_loss: [], bwd: [], clip: [], opt: [] };
      for (let s = 0; s < spec.profileSteps; s++) {
        let w0 = now();
        let c0 = cpuNow();
        const mark = (phase: ProfilePhase): void => {
          const w1 = now();
          const c1 = cpuNow();
          wall[phase].push(w1 - w0);
          cpu[phase].push(c1 - c0);
          w0 = w1;
          c0 = c1;
        };
        optZero();
        mark('zero_grad');
        // sftLossBackward's body, with clocks between the model body, the fused LM-head loss and the backward.
        T.tidy(() => {
          const inp = forwardInputs(batch);
          const h = model.forward(inp.ids, { attentionMask: inp.attentionMask, positionIds: inp.positionIds, documentIds: inp.documentIds });
          mark('body_fwd');
          const targets = T.intTensor(shiftLabels(batch.labels, batch.batch, batch.seq));
          const loss = T.fusedCrossEntropy(T.reshape(h, [batch.batch * batch.seq, model.config.hiddenSize]), model.lmHeadWeight(), targets, {
            bias: model.lmHeadBias(), normalizer: batch.numLossTokens,
          });
          loss.item();
          mark('head_loss');
          loss.backward();
          mark('bwd');
        });
        clipGradNorm(params, spec.maxGradNorm);
        mark('clip');
        optStep();
        mark('opt');
      }
      const med = (r: Record<ProfilePhase, number[]>): Record<ProfilePhase, number> =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, median(v)])) as Record<ProfilePhase, number>;
      phases = { wall: med(wall), cpu: med(cpu) };
    }

    let trainableCount = 0;
    for (const p of trainable.values()) trainableCount += p.size;
    return {
      library: 'alignkit', threads: nativeAddon ? nativeAddon.info().threads : 1, step_s: median(samples), samples, cpu_s: cpuPerStep, loop_phases: loopPhases, phases, losses,
      peak_rss_mb: lifetimePeak, train_peak_rss_mb: resetOk ? trainPeak : null, rss_before_train_mb: rssBefore,
      native_live_before_mb: liveBefore,
      native_peak_mb: nativeStats && nativeStats.peakBytes / 2 ** 20, native_pooled_mb: nativeStats && nativeStats.pooledBytes / 2 ** 20, trainable: trainableCount,
    };
  } finally {
    lora?.detach();
    model.dispose();
    rmSync(out, { recursive: true, force: true });
  }
}

// The script: one spec in, one JSON line out. (Importing this file for its types alone runs nothing: `import type`.)
const raw = process.argv[2];
if (!raw) {
  process.stderr.write("usage: node --import tsx bench/sft_case.ts '<json spec>'\n");
  process.exit(2);
}
if (!nativeBackend) {
  // The TypeScript backend is far too slow for these shapes; say so the way a Python peer does.
  process.stdout.write(JSON.stringify({ error: 'native addon not built' }) + '\n');
} else {
  const result = await runCase(JSON.parse(raw) as CaseSpec);
  process.stdout.write(JSON.stringify(result) + '\n');
}
