// The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural Networks", §3.3; the
// fastai lr_find variant): train for a few steps while the learning rate grows exponentially from minLr to
// maxLr, record the (exponentially smoothed, bias-corrected) loss, stop once it diverges, and suggest the
// learning rate where the smoothed loss falls fastest. The weights are restored afterwards by the caller
// (the CLI works on a throwaway copy: nothing is saved).

import { clipGradNorm, type Optimizer } from '../optim/index.ts';
import type { TrainTask } from './loop.ts';

export interface LrFindOptions {
  minLr: number;
  maxLr: number;
  steps: number;
  /** Smoothing factor of the loss EMA (fastai: 0.98). */
  beta: number;
  /** Stop when the smoothed loss exceeds divergeFactor × the best smoothed loss. */
  divergeFactor: number;
  maxGradNorm: number | null;
  gradientAccumulationSteps: number;
}

export const LR_FIND_DEFAULTS: LrFindOptions = { minLr: 1e-7, maxLr: 1, steps: 100, beta: 0.98, divergeFactor: 4, maxGradNorm: 1, gradientAccumulationSteps: 1 };

export interface LrFindPoint {
  step: number;
  lr: number;
  loss: number;
  smoothedLoss: number;
}

export interface LrFindResult {
  points: LrFindPoint[];
  /** Where the smoothed loss decreases fastest (steepest negative slope in log-lr), or null if it never falls. */
  suggestedLr: number | null;
  /** The lr of the lowest smoothed loss (fastai's "minimum"; a common rule is to use a tenth of it). */
  minLossLr: number | null;
  diverged: boolean;
}

/** lr at step i of n: minLr·(maxLr/minLr)^(i/(n−1)). */
export function rangeTestLr(i: number, o: Pick<LrFindOptions, 'minLr' | 'maxLr' | 'steps'>): number {
  if (o.steps <= 1) return o.minLr;
  return o.minLr * Math.pow(o.maxLr / o.minLr, i / (o.steps - 1));
}

/**
 * Picks the suggestion from a recorded curve (pure; tested on synthetic curves). The first `skipStart` points
 * are ignored (fastai does the same): the bias-corrected average of a handful of noisy losses is itself noise.
 */
export function suggestLr(points: readonly LrFindPoint[], skipStart = 0): { suggestedLr: number | null; minLossLr: number | null } {
  if (points.length - skipStart < 3) return { suggestedLr: null, minLossLr: null };
  let best = skipStart;
  for (let i = skipStart + 1; i < points.length; i++) if (points[i].smoothedLoss < points[best].smoothedLoss) best = i;
  // steepest descent of the smoothed loss against log lr (central differences), before the minimum
  let steep = -1;
  let steepSlope = 0;
  for (let i = skipStart + 1; i < Math.max(best, 1); i++) {
    const slope = (points[i + 1].smoothedLoss - points[i - 1].smoothedLoss) / (Math.log(points[i + 1].lr) - Math.log(points[i - 1].lr));
    if (slope < steepSlope) {
      steepSlope = slope;
      steep = i;
    }
  }
  return { suggestedLr: steep >= 0 ? points[steep].lr : null, minLossLr: points[best].lr };
}

export async function lrRangeTest<MB>(task: TrainTask<MB>, optimizer: Optimizer<{ lr: number }>, opts: Partial<LrFindOptions> = {}): Promise<LrFindResult> {
  const o = { ...LR_FIND_DEFAULTS, ...opts };
  if (!(o.minLr > 0 && o.maxLr > o.minLr)) throw new RangeError(`lr-find: need 0 < min_lr < max_lr, got ${o.minLr}, ${o.maxLr}`);
  if (!Number.isSafeInteger(o.steps) || o.steps < 3) throw new RangeError(`lr-find: steps must be an integer >= 3, got ${o.steps}`);
  const params = optimizer.groups.flatMap((g) => g.params);
  const points: LrFindPoint[] = [];
  let avg = 0;
  let bestSmoothed = Number.POSITIVE_INFINITY;
  let diverged = false;
  for (let i = 0; i < o.steps; i++) {
    const lr = rangeTestLr(i, o);
    optimizer.setLearningRate(lr);
    optimizer.zeroGrad();
    const micro: MB[] = [];
    for (let k = 0; k < o.gradientAccumulationSteps; k++) micro.push(await task.nextMicroBatch());
    const normalizer = Math.max(micro.reduce((s, mb) => s + task.lossUnits(mb), 0), 1);
    let loss = 0;
    for (const mb of micro) loss += task.forwardBackward(mb, normalizer).loss;
    const clip = clipGradNorm(params, o.maxGradNorm && o.maxGradNorm > 0 ? o.maxGradNorm : Number.POSITIVE_INFINITY);
    if (!Number.isFinite(loss) || clip.nonFinite) {
      diverged = true;
      break;
    }
    optimizer.step();
    avg = o.beta * avg + (1 - o.beta) * loss;
    const smoothed = avg / (1 - Math.pow(o.beta, i + 1));
    points.push({ step: i, lr, loss, smoothedLoss: smoothed });
    bestSmoothed = Math.min(bestSmoothed, smoothed);
    if (i > 0 && smoothed > o.divergeFactor * bestSmoothed) {
      diverged = true;
      break;
    }
  }
  optimizer.zeroGrad();
  return { points, diverged, ...suggestLr(points, Math.min(10, Math.floor(points.length / 10))) };
}
