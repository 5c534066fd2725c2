// Early stopping on an evaluation metric, with the semantics of transformers' EarlyStoppingCallback:
//
//   - an evaluation "improves" when it beats the best value so far in the metric's direction by MORE than
//     minDelta (|value − best| > minDelta), or when it is the first value seen;
//   - every evaluation that does not improve adds one to a counter, an improving one resets it to 0;
//   - training should stop once the counter reaches `patience`.
//
// As in the transformers Trainer, the best value (the one load_best_model_at_end keeps) moves on any strict
// improvement, even one smaller than minDelta: `isBest` reports that, `improved` the patience reset. A NaN
// never improves and is never the best; it counts as an evaluation without improvement.
import { AlignkitError } from '../tensor/errors.ts';

export interface EarlyStoppingOptions {
  /** Name of the metric (e.g. 'eval_loss'); recorded in the state so a resumed run checks it is the same. */
  metric: string;
  /** 'min' when smaller is better (losses), 'max' when larger is better (accuracies). */
  mode: 'min' | 'max';
  /** Evaluations without improvement before stopping (>= 1). */
  patience: number;
  /** Smallest change that counts as an improvement (>= 0); transformers' early_stopping_threshold. */
  minDelta: number;
}

/** Everything needed to continue early stopping after a resume (JSON-serialisable). */
export interface EarlyStoppingState {
  metric: string;
  mode: 'min' | 'max';
  best: { step: number; value: number } | null;
  /** Evaluations since the last improvement. */
  evaluationsWithoutImprovement: number;
}

export interface EarlyStoppingUpdate {
  /** Beat the best value so far by more than minDelta (or is the first non-NaN value): patience starts over. */
  improved: boolean;
  /** A new best value (strictly better than every earlier one, by any margin): the checkpoint to keep. */
  isBest: boolean;
  /** Patience is exhausted: stop training after this evaluation. */
  shouldStop: boolean;
}

export class EarlyStopping {
  readonly metric: string;
  readonly mode: 'min' | 'max';
  readonly patience: number;
  readonly minDelta: number;
  private bestSoFar: { step: number; value: number } | null = null;
  private counter = 0;

  constructor(opts: EarlyStoppingOptions) {
    if (opts.mode !== 'min' && opts.mode !== 'max') throw new AlignkitError(`EarlyStopping: mode must be 'min' or 'max', got ${JSON.stringify(opts.mode)}`);
    if (!Number.isSafeInteger(opts.patience) || opts.patience < 1) throw new AlignkitError(`EarlyStopping: patience must be an integer >= 1, got ${opts.patience}`);
    if (!(Number.isFinite(opts.minDelta) && opts.minDelta >= 0)) throw new AlignkitError(`EarlyStopping: minDelta must be a finite number >= 0, got ${opts.minDelta}`);
    this.metric = opts.metric;
    this.mode = opts.mode;
    this.patience = opts.patience;
    this.minDelta = opts.minDelta;
  }

  /** The best value seen and the step of its evaluation, or null before the first non-NaN value. */
  get best(): { step: number; value: number } | null {
    return this.bestSoFar ? { ...this.bestSoFar } : null;
  }

  /** Evaluations since the last improvement. */
  get evaluationsWithoutImprovement(): number {
    return this.counter;
  }

  private better(a: number, b: number): boolean {
    return this.mode === 'min' ? a < b : a > b;
  }

  /** Records the metric of the evaluation at optimizer step `step`. */
  update(step: number, value: number): EarlyStoppingUpdate {
    if (typeof value !== 'number') throw new AlignkitError(`EarlyStopping: metric '${this.metric}' at step ${step} is not a number (${typeof value})`);
    let improved = false;
    let isBest = false;
    if (!Number.isNaN(value)) {
      // Compared with the best value so far, which (as transformers' state.best_metric) moves on every strict
      // improvement: a run of sub-minDelta gains never resets patience, however much they add up to.
      const best = this.bestSoFar?.value;
      improved = best === undefined || (this.better(value, best) && Math.abs(value - best) > this.minDelta);
      isBest = best === undefined || this.better(value, best);
    }
    this.counter = improved ? 0 : this.counter + 1;
    if (isBest) this.bestSoFar = { step, value };
    return { improved, isBest, shouldStop: this.counter >= this.patience };
  }

  state(): EarlyStoppingState {
    return { metric: this.metric, mode: this.mode, best: this.best, evaluationsWithoutImprovement: this.counter };
  }

  /** Continues from a saved state; the metric and mode must be those of this instance (patience may change). */
  restore(s: EarlyStoppingState): void {
    if (s.metric !== this.metric || s.mode !== this.mode)
      throw new AlignkitError(`EarlyStopping: the checkpoint tracked '${s.metric}' (${s.mode}) but this run tracks '${this.metric}' (${this.mode}); the best value cannot carry over`);
    if (!Number.isSafeInteger(s.evaluationsWithoutImprovement) || s.evaluationsWithoutImprovement < 0)
      throw new AlignkitError(`EarlyStopping: invalid saved state (evaluationsWithoutImprovement ${s.evaluationsWithoutImprovement})`);
    if (s.best !== null && (typeof s.best.value !== 'number' || Number.isNaN(s.best.value) || !Number.isSafeInteger(s.best.step)))
      throw new AlignkitError(`EarlyStopping: invalid saved state (best ${JSON.stringify(s.best)})`);
    this.bestSoFar = s.best ? { ...s.best } : null;
    this.counter = s.evaluationsWithoutImprovement;
  }
}
