// The training loop every trainer shares (SFT, reward model, DPO and family, PPO's optimisation phase): gradient
// accumulation with one loss normaliser for the whole accumulated step, global grad-norm clipping, the learning-
// rate schedule, NaN/Inf skip-and-count, periodic evaluation, early stopping, atomic checkpoints with rotation,
// exact resume, and metric logging. Trainers supply a TrainTask: how to get micro-batches and what one
// micro-batch's forward+backward is; the loop owns everything else, once.
//
// Loss scaling under accumulation (a bug that shipped in several toolkits): each micro-batch's loss is divided by
// the loss units (e.g. target tokens) of the WHOLE optimizer step, not by its own, so micro-batch 1 x 8 steps
// and micro-batch 8 x 1 step give the same gradient.

import path from 'node:path';
import { AlignkitError, type Tensor } from '../tensor/index.ts';
import { Optimizer, clipGradNorm } from '../optim/index.ts';
import { latestCheckpoint, loadOptimizerState, readTrainerState, removeStaleStaging, rotateCheckpoints, saveCheckpoint, type TrainerState } from './checkpoint.ts';

/** What a trainer provides to the loop. MB is its micro-batch type. */
export interface TrainTask<MB> {
  /** The next micro-batch; the stream continues across epochs (the task's sampler reshuffles each epoch). */
  nextMicroBatch(): Promise<MB>;
  /** Loss normalisation units in a micro-batch (target tokens for LM losses, rows for pairwise losses). */
  lossUnits(mb: MB): number;
  /** Tokens processed (for tokens/s). */
  tokens(mb: MB): number;
  /**
   * Forward + backward of one micro-batch whose loss is divided by `normalizer` (the units of the whole step).
   * Returns that contribution (a plain number) and optional metrics (summed over the step's micro-batches,
   * weighted by the caller's own convention: return per-micro-batch sums and name them accordingly).
   */
  forwardBackward(mb: MB, normalizer: number): { loss: number; metrics?: Record<string, number> };
  /** Adds regulariser gradients (L2-to-initial-weights, EWC) after backward; returns the penalty value. */
  regularize?(): number;
  /** Evaluation metrics, keys without prefix ('loss', 'perplexity', ...). */
  evaluate?(): Promise<Record<string, number>>;
  /** Fractional epochs consumed so far. */
  epoch(): number;
  /** Writes the current weights (an HF folder or an adapter) into `dir`. */
  saveModel(dir: string): void;
  /** Loads weights written by saveModel (resume, best-model restore). */
  loadModel(dir: string): void;
  /** Data position, RNG states and trainer-specific state for a checkpoint. */
  state(): { data: unknown; rng: Record<string, unknown>; extra?: Record<string, unknown> };
  restore(s: { data: unknown; rng: Record<string, unknown>; extra: Record<string, unknown> }): void;
}

/** The logger the loop writes to (MetricsLogger in logging.ts satisfies it). */
export interface TrainLogger {
  log(step: number, metrics: Record<string, number>, opts?: { prefix?: 'train' | 'eval' }): void;
}

/** Early stopping as the loop uses it (EarlyStopping in early_stopping.ts satisfies it). */
export interface StopCriterion {
  /** improved: resets patience; isBest (when given): the best value moved at all (even by less than the threshold). */
  update(step: number, value: number): { improved: boolean; shouldStop: boolean; isBest?: boolean };
  state(): unknown;
  restore(s: never): void;
}

export interface LoopOptions {
  outputDir: string;
  /** Optimizer steps in the run. */
  totalSteps: number;
  gradientAccumulationSteps: number;
  /** Global L2 gradient-norm clip; 0 or null disables clipping (the norm is still measured). */
  maxGradNorm: number | null;
  /** Learning rate for optimizer step `step` (0-based). */
  lrAt: (step: number) => number;
  loggingSteps: number;
  /** Also log step 1. */
  loggingFirstStep?: boolean;
  /** Evaluate once before the first step of a fresh run (a baseline). */
  evalOnStart?: boolean;
  /** Checkpoints without optimizer/RNG state (weights only): smaller, but not resumable. */
  saveOnlyModel?: boolean;
  /** Evaluate every N steps (null: never during training); also at the end when evaluateAtEnd. */
  evalSteps: number | null;
  evaluateAtEnd: boolean;
  /** Save a checkpoint every N steps (null: never). The final model is always written to outputDir. */
  saveSteps: number | null;
  saveTotalLimit: number | null;
  /** The eval metric ('eval_loss') that defines "best" for early stopping and load-best-at-end. */
  metricForBestModel: string;
  greaterIsBetter: boolean;
  loadBestModelAtEnd: boolean;
  earlyStopping: StopCriterion | null;
  /** Abort once more than this many steps were skipped for NaN/Inf. */
  maxNanSteps: number;
  /** A checkpoint folder to resume from, 'latest' for the newest in outputDir, or null. */
  resumeFrom: string | null;
  /** Recorded in trainer_state.json. */
  config: Record<string, unknown>;
  /** Called after each optimizer step (progress display, PPO bookkeeping...). */
  onStep?: (info: StepInfo) => void;
}

export interface StepInfo {
  step: number;
  loss: number;
  gradNorm: number;
  learningRate: number;
  tokensPerSecond: number;
  skipped: boolean;
}

export interface LoopResult {
  globalStep: number;
  nanSteps: number;
  tokensSeen: number;
  stoppedEarly: boolean;
  best: TrainerState['best'];
  lastEval: Record<string, number> | null;
  resumedFrom: string | null;
  /** Mean training loss over the whole run (non-skipped steps). */
  trainLoss: number;
  seconds: number;
}

/** Test hook (documented in docs/training.md): ALIGNKIT_FAULT_INJECT=after-step:N | mid-save:N kills the
 *  process with SIGKILL at that point, so the resume tests exercise a real crash, not a polite exit. */
function faultPoint(kind: 'after-step' | 'mid-save', step: number): void {
  const spec = process.env.ALIGNKIT_FAULT_INJECT;
  if (spec && spec === `${kind}:${step}`) process.kill(process.pid, 'SIGKILL');
}

export class NonFiniteError extends AlignkitError {}

/** Stands in for the optimizer in weights-only checkpoints: no parameters, no buffers. */
const EMPTY_OPTIMIZER = new (class extends Optimizer<{ lr: number }> {
  constructor() {
    super('none', [] as Tensor[], { lr: 0 });
  }
  protected update(): void {}
})();

export async function runTrainingLoop<MB>(task: TrainTask<MB>, optimizer: Optimizer<{ lr: number }>, logger: TrainLogger, opts: LoopOptions): Promise<LoopResult> {
  const t0 = Date.now();
  const params = optimizer.groups.flatMap((g) => g.params);
  if (!Number.isSafeInteger(opts.gradientAccumulationSteps) || opts.gradientAccumulationSteps < 1)
    throw new AlignkitError(`training loop: gradient_accumulation_steps must be a positive integer, got ${opts.gradientAccumulationSteps}`);
  removeStaleStaging(opts.outputDir);

  let globalStep = 0;
  let nanSteps = 0;
  let tokensSeen = 0;
  let best: TrainerState['best'] = null;
  let resumedFrom: string | null = null;
  if (opts.resumeFrom) {
    const ckpt = opts.resumeFrom === 'latest' ? latestCheckpoint(opts.outputDir) : { dir: path.resolve(opts.resumeFrom), step: -1 };
    if (!ckpt) throw new AlignkitError(`resume: no complete checkpoint-<step> folder in ${opts.outputDir}`);
    const state = readTrainerState(ckpt.dir);
    if (state.extra?.saveOnlyModel === true)
      throw new AlignkitError(`resume: ${ckpt.dir} was saved with save_only_model (weights only); it cannot be resumed exactly — start a new run from its weights instead`);
    task.loadModel(ckpt.dir);
    loadOptimizerState(ckpt.dir, optimizer, state.optimizer);
    task.restore({ data: state.data, rng: state.rng, extra: state.extra ?? {} });
    if (opts.earlyStopping && state.earlyStopping) opts.earlyStopping.restore(state.earlyStopping as never);
    globalStep = state.globalStep;
    nanSteps = state.nanSteps;
    tokensSeen = state.tokensSeen;
    best = state.best;
    resumedFrom = ckpt.dir;
  }

  const better = (a: number, b: number): boolean => (opts.greaterIsBetter ? a > b : a < b);
  let lastEval: Record<string, number> | null = null;
  let stoppedEarly = false;
  let lossSum = 0;
  let lossSteps = 0;
  // Window for logging: averages since the last log line.
  let winLoss = 0;
  let winSteps = 0;
  let winTokens = 0;
  let winStart = Date.now();
  let winMetrics: Record<string, number> = {};

  const checkpoint = (): string =>
    opts.saveOnlyModel ? saveModelOnlyCheckpoint() : saveCheckpoint(opts.outputDir, {
      writeModel: (dir) => {
        task.saveModel(dir);
        faultPoint('mid-save', globalStep);
      },
      optimizer,
      state: {
        globalStep,
        epoch: task.epoch(),
        nanSteps,
        tokensSeen,
        earlyStopping: opts.earlyStopping ? opts.earlyStopping.state() : null,
        best,
        config: opts.config,
        ...(() => {
          const s = task.state();
          return { data: s.data, rng: s.rng, extra: s.extra ?? {} };
        })(),
      },
    });

  // save_only_model: the same atomic folder, but the optimizer is written empty and the state says so.
  const saveModelOnlyCheckpoint = (): string =>
    saveCheckpoint(opts.outputDir, {
      writeModel: (dir) => task.saveModel(dir),
      optimizer: EMPTY_OPTIMIZER,
      state: { globalStep, epoch: task.epoch(), nanSteps, tokensSeen, earlyStopping: null, best, config: opts.config, data: null, rng: {}, extra: { saveOnlyModel: true } },
    });

  const evaluate = async (): Promise<Record<string, number> | null> => {
    if (!task.evaluate) return null;
    const raw = await task.evaluate();
    const m: Record<string, number> = {};
    for (const [k, v] of Object.entries(raw)) m[`eval_${k}`] = v;
    logger.log(globalStep, m, { prefix: 'eval' });
    lastEval = m;
    return m;
  };

  if (opts.evalOnStart && globalStep === 0) await evaluate();
  while (globalStep < opts.totalSteps) {
    // ------------------------------------------------------------------ one optimizer step
    const micro: MB[] = [];
    for (let i = 0; i < opts.gradientAccumulationSteps; i++) micro.push(await task.nextMicroBatch());
    const normalizer = Math.max(micro.reduce((s, mb) => s + task.lossUnits(mb), 0), 1);
    const lr = opts.lrAt(globalStep);
    optimizer.setLearningRate(lr);
    optimizer.zeroGrad();
    let stepLoss = 0;
    const stepMetrics: Record<string, number> = {};
    let stepTokens = 0;
    for (const mb of micro) {
      const r = task.forwardBackward(mb, normalizer);
      stepLoss += r.loss;
      stepTokens += task.tokens(mb);
      for (const [k, v] of Object.entries(r.metrics ?? {})) stepMetrics[k] = (stepMetrics[k] ?? 0) + v;
    }
    const penalty = task.regularize ? task.regularize() : 0;
    const clip = clipGradNorm(params, opts.maxGradNorm && opts.maxGradNorm > 0 ? opts.maxGradNorm : Number.POSITIVE_INFINITY);
    let skipped = false;
    if (!Number.isFinite(stepLoss) || clip.nonFinite !== null) {
      // Skip the update, keep the data position moving, and say exactly what went wrong.
      skipped = true;
      nanSteps++;
      optimizer.zeroGrad();
      const what = !Number.isFinite(stepLoss) ? `loss ${stepLoss}` : `gradient of ${clip.nonFinite}`;
      logger.log(globalStep + 1, { nan_skipped_steps: nanSteps });
      if (nanSteps > opts.maxNanSteps)
        throw new NonFiniteError(
          `training aborted at step ${globalStep + 1}: ${nanSteps} steps had a non-finite loss or gradient (max_nan_steps ${opts.maxNanSteps}); the last: ${what}. Lower learning_rate, check the data, or raise max_nan_steps.`,
        );
    } else {
      optimizer.step();
      lossSum += stepLoss;
      lossSteps++;
      winLoss += stepLoss;
      winSteps++;
      for (const [k, v] of Object.entries(stepMetrics)) winMetrics[k] = (winMetrics[k] ?? 0) + v;
      if (penalty) winMetrics.regularizer = (winMetrics.regularizer ?? 0) + penalty;
    }
    optimizer.zeroGrad();
    globalStep++;
    tokensSeen += stepTokens;
    winTokens += stepTokens;
    faultPoint('after-step', globalStep);

    const elapsed = (Date.now() - winStart) / 1000;
    opts.onStep?.({ step: globalStep, loss: stepLoss, gradNorm: clip.totalNorm, learningRate: lr, tokensPerSecond: elapsed > 0 ? winTokens / elapsed : 0, skipped });
    if (globalStep % opts.loggingSteps === 0 || globalStep === opts.totalSteps || (opts.loggingFirstStep && globalStep === 1)) {
      const m: Record<string, number> = { learning_rate: lr, grad_norm: clip.totalNorm, epoch: task.epoch(), tokens_per_second: elapsed > 0 ? winTokens / elapsed : 0 };
      if (winSteps > 0) {
        m.loss = winLoss / winSteps;
        for (const [k, v] of Object.entries(winMetrics)) m[k] = v / winSteps;
      }
      if (nanSteps) m.nan_skipped_steps = nanSteps;
      logger.log(globalStep, m, { prefix: 'train' });
      winLoss = 0;
      winSteps = 0;
      winTokens = 0;
      winMetrics = {};
      winStart = Date.now();
    }

    // ------------------------------------------------------------------ evaluate, save, stop
    let evalNow: Record<string, number> | null = null;
    if (opts.evalSteps && globalStep % opts.evalSteps === 0) evalNow = await evaluate();
    const saveNow = opts.saveSteps !== null && globalStep % opts.saveSteps === 0 && globalStep < opts.totalSteps;
    let improved = false;
    let shouldStop = false;
    if (evalNow) {
      const value = evalNow[opts.metricForBestModel];
      if (value === undefined) throw new AlignkitError(`metric_for_best_model '${opts.metricForBestModel}' is not among the eval metrics (${Object.keys(evalNow).join(', ')})`);
      if (opts.earlyStopping) {
        const u = opts.earlyStopping.update(globalStep, value);
        improved = u.isBest ?? u.improved;
        shouldStop = u.shouldStop;
      }
      else improved = Number.isFinite(value) && (best === null || better(value, best.value));
      if (improved) best = { checkpoint: null, step: globalStep, value };
    }
    // Early stopping needs the best weights on disk to restore them: save at every improvement.
    const needBestOnDisk = improved && (opts.loadBestModelAtEnd || opts.earlyStopping !== null);
    if (saveNow || needBestOnDisk || (shouldStop && opts.saveSteps !== null)) {
      // name the best before writing, so the checkpoint's own state knows it is the best
      if (improved && best) best = { ...best, checkpoint: `checkpoint-${globalStep}` };
      checkpoint();
      rotateCheckpoints(opts.outputDir, opts.saveTotalLimit, best?.checkpoint ?? null);
    }
    if (shouldStop) {
      stoppedEarly = true;
      break;
    }
  }

  if (opts.evaluateAtEnd && !(opts.evalSteps && globalStep % opts.evalSteps === 0 && lastEval)) await evaluate();
  const bestCheckpoint = best?.checkpoint ?? null;
  if ((opts.loadBestModelAtEnd || stoppedEarly) && bestCheckpoint && best && best.step !== globalStep) task.loadModel(path.join(opts.outputDir, bestCheckpoint));
  return {
    globalStep,
    nanSteps,
    tokensSeen,
    stoppedEarly,
    best,
    lastEval,
    resumedFrom,
    trainLoss: lossSteps ? lossSum / lossSteps : Number.NaN,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Parameters a trainer optimises, split into decay / no-decay groups (biases, norms and other 1-D tensors get
 *  no weight decay, as Hugging Face's Trainer does). */
export function weightDecayGroups(named: ReadonlyMap<string, Tensor>, weightDecay: number): { params: Tensor[]; options: { weightDecay: number } }[] {
  const decay: Tensor[] = [];
  const noDecay: Tensor[] = [];
  for (const [name, t] of named) {
    if (!t.requiresGrad) continue;
    if (t.rank < 2 || /(^|\.)bias$/.test(name) || /norm|ln_\d|ln_f/i.test(name)) noDecay.push(t);
    else decay.push(t);
  }
  return [
    { params: decay, options: { weightDecay } },
    { params: noDecay, options: { weightDecay: 0 } },
  ].filter((g) => g.params.length > 0);
}
