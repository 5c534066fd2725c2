// Learning-rate schedules as pure functions of the optimizer step.
//
// `learningRateAt(step, cfg)` is the learning rate used by optimizer step `step` (0-based). The formulas match
// transformers' `get_scheduler` (a torch LambdaLR whose lambda multiplies the base learning rate; the Trainer
// creates it at step 0 and calls `scheduler.step()` after every optimizer step) and are written in the same
// operation order, so the values agree with Python to the last bit or two:
//
//   constant               lr                                   (warmup is ignored, as in transformers)
//   constant_with_warmup   lr · s/W                    for s < W, then lr
//   linear                 lr · s/W                    for s < W, then lr · max(0, (N − s) / max(1, N − W))
//   cosine                 lr · s/W                    for s < W, then lr · max(0, ½(1 + cos(π · c · 2 · p)))
//                          with p = (s − W) / max(1, N − W) and c = numCycles (0.5: a half wave down to 0).
//                          With minLrRatio m the factor f becomes f(1 − m) + m (transformers' cosine_with_min_lr).
//   cosine_with_restarts   lr · s/W, then 0 once p ≥ 1, else lr · max(0, ½(1 + cos(π · ((c · p) mod 1))))
//                          with c = numCycles (the number of cosine waves, each restarting at lr; default 1)
//   polynomial             lr · s/W, then (lr − e)(1 − (s − W)/(N − W))^power + e, and e once s > N
//                          (e = lrEnd, an absolute learning rate, default 1e-7 as in transformers)
//
// and, outside transformers, with torch semantics after the warmup (s' = s − W):
//
//   step                   lr · gamma^⌊s'/stepSize⌋                               (torch StepLR)
//   cyclic                 triangular between b = baseLrRatio · lr and lr, period 2 · cycleSteps, starting
//                          at b (torch CyclicLR, mode 'triangular', step_size_up = step_size_down = cycleSteps)
//
// Every warmup ramps linearly from 0 to the schedule's value at the end of the warmup: lr for every type but
// cyclic, whose ramp ends at its base b so that the curve has no jump. Step 0 of a warmup therefore trains
// with learning rate 0, exactly as the transformers Trainer does.
import { AlignkitError } from '../tensor/errors.ts';

export type LrSchedulerType = 'constant' | 'constant_with_warmup' | 'linear' | 'cosine' | 'cosine_with_restarts' | 'polynomial' | 'step' | 'cyclic';

export const LR_SCHEDULER_TYPES: readonly LrSchedulerType[] = ['constant', 'constant_with_warmup', 'linear', 'cosine', 'cosine_with_restarts', 'polynomial', 'step', 'cyclic'];

export interface LrScheduleConfig {
  type: LrSchedulerType;
  /** Peak (base) learning rate. */
  learningRate: number;
  /** Total optimizer steps N of the run. */
  totalSteps: number;
  /** Warmup steps W (ignored by 'constant', as in transformers). */
  warmupSteps: number;
  /** cosine / cosine_with_restarts: floor of the cosine as a fraction of learningRate (default 0). */
  minLrRatio?: number;
  /** cosine: number of waves (default 0.5 = half wave, the transformers default); cosine_with_restarts: number of hard restarts (default 1). */
  numCycles?: number;
  /** polynomial: exponent of the decay (default 1 = linear). */
  power?: number;
  /** polynomial: final learning rate, absolute (default 1e-7, as transformers); must be below learningRate. */
  lrEnd?: number;
  /** step: decay every stepSize optimizer steps after the warmup (required for 'step'). */
  stepSize?: number;
  /** step: multiplicative decay factor (default 0.1, as torch StepLR). */
  gamma?: number;
  /** cyclic: steps from the base to the peak (and from the peak back down); required for 'cyclic'. */
  cycleSteps?: number;
  /** cyclic: lower bound of the cycle as a fraction of learningRate (default 0.1). */
  baseLrRatio?: number;
}

/** Default lr_end of transformers' polynomial decay. */
export const DEFAULT_POLYNOMIAL_LR_END = 1e-7;
/** Default gamma of torch StepLR. */
export const DEFAULT_STEP_GAMMA = 0.1;
/** Default base of the cyclic schedule, as a fraction of the peak learning rate. */
export const DEFAULT_CYCLIC_BASE_LR_RATIO = 0.1;

function isNonNegInt(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Every problem with a schedule configuration, each naming the field; empty when valid. */
export function validateLrSchedule(cfg: LrScheduleConfig): string[] {
  const problems: string[] = [];
  if (!LR_SCHEDULER_TYPES.includes(cfg.type)) problems.push(`type: unknown scheduler '${String(cfg.type)}' (expected one of ${LR_SCHEDULER_TYPES.join(', ')})`);
  if (!(Number.isFinite(cfg.learningRate) && cfg.learningRate > 0)) problems.push(`learningRate: must be a finite number > 0, got ${cfg.learningRate}`);
  if (!isNonNegInt(cfg.totalSteps)) problems.push(`totalSteps: must be an integer >= 0, got ${cfg.totalSteps}`);
  if (!isNonNegInt(cfg.warmupSteps)) problems.push(`warmupSteps: must be an integer >= 0, got ${cfg.warmupSteps}`);
  if (cfg.minLrRatio !== undefined && !(cfg.minLrRatio >= 0 && cfg.minLrRatio <= 1)) problems.push(`minLrRatio: must be in [0, 1], got ${cfg.minLrRatio}`);
  if (cfg.numCycles !== undefined && !(Number.isFinite(cfg.numCycles) && cfg.numCycles > 0)) problems.push(`numCycles: must be a finite number > 0, got ${cfg.numCycles}`);
  if (cfg.power !== undefined && !(Number.isFinite(cfg.power) && cfg.power > 0)) problems.push(`power: must be a finite number > 0, got ${cfg.power}`);
  if (cfg.type === 'polynomial') {
    const lrEnd = cfg.lrEnd ?? DEFAULT_POLYNOMIAL_LR_END;
    if (!(lrEnd >= 0 && lrEnd < cfg.learningRate)) problems.push(`lrEnd: must be >= 0 and below the learning rate ${cfg.learningRate}, got ${lrEnd}`);
  } else if (cfg.lrEnd !== undefined && !(cfg.lrEnd >= 0)) problems.push(`lrEnd: must be >= 0, got ${cfg.lrEnd}`);
  if (cfg.type === 'step' && cfg.stepSize === undefined) problems.push(`stepSize: required by the 'step' scheduler`);
  if (cfg.stepSize !== undefined && !(Number.isSafeInteger(cfg.stepSize) && cfg.stepSize >= 1)) problems.push(`stepSize: must be an integer >= 1, got ${cfg.stepSize}`);
  if (cfg.gamma !== undefined && !(Number.isFinite(cfg.gamma) && cfg.gamma > 0)) problems.push(`gamma: must be a finite number > 0, got ${cfg.gamma}`);
  if (cfg.type === 'cyclic' && cfg.cycleSteps === undefined) problems.push(`cycleSteps: required by the 'cyclic' scheduler`);
  if (cfg.cycleSteps !== undefined && !(Number.isSafeInteger(cfg.cycleSteps) && cfg.cycleSteps >= 1)) problems.push(`cycleSteps: must be an integer >= 1, got ${cfg.cycleSteps}`);
  if (cfg.baseLrRatio !== undefined && !(cfg.baseLrRatio >= 0 && cfg.baseLrRatio <= 1)) problems.push(`baseLrRatio: must be in [0, 1], got ${cfg.baseLrRatio}`);
  return problems;
}

/** The schedule's value after the warmup, at step s >= W (the warmup ramp ends at afterWarmup(W)). */
function afterWarmup(s: number, cfg: LrScheduleConfig): number {
  const lr = cfg.learningRate;
  const N = cfg.totalSteps;
  const W = cfg.warmupSteps;
  switch (cfg.type) {
    case 'constant':
    case 'constant_with_warmup':
      return lr;
    case 'linear':
      return lr * Math.max(0, (N - s) / Math.max(1, N - W));
    case 'cosine': {
      const progress = (s - W) / Math.max(1, N - W);
      let factor = 0.5 * (1 + Math.cos(Math.PI * (cfg.numCycles ?? 0.5) * 2 * progress));
      if (cfg.minLrRatio !== undefined) factor = factor * (1 - cfg.minLrRatio) + cfg.minLrRatio;
      return lr * Math.max(0, factor);
    }
    case 'cosine_with_restarts': {
      const progress = (s - W) / Math.max(1, N - W);
      const m = cfg.minLrRatio;
      if (progress >= 1) return m === undefined ? lr * 0 : lr * m;
      let factor = 0.5 * (1 + Math.cos(Math.PI * (((cfg.numCycles ?? 1) * progress) % 1)));
      if (m !== undefined) factor = factor * (1 - m) + m;
      return lr * Math.max(0, factor);
    }
    case 'polynomial': {
      const lrEnd = cfg.lrEnd ?? DEFAULT_POLYNOMIAL_LR_END;
      const decaySteps = N - W;
      // transformers divides by zero here (N == W); the decay then has no length and ends at once.
      if (s > N || decaySteps <= 0) return lr * (lrEnd / lr);
      const pctRemaining = 1 - (s - W) / decaySteps;
      const decay = (lr - lrEnd) * pctRemaining ** (cfg.power ?? 1) + lrEnd;
      return lr * (decay / lr);
    }
    case 'step':
      return lr * (cfg.gamma ?? DEFAULT_STEP_GAMMA) ** Math.floor((s - W) / (cfg.stepSize as number));
    case 'cyclic': {
      // torch CyclicLR 'triangular' with step_size_up = step_size_down, so step_ratio = 0.5.
      const e = s - W;
      const base = lr * (cfg.baseLrRatio ?? DEFAULT_CYCLIC_BASE_LR_RATIO);
      const totalSize = 2 * (cfg.cycleSteps as number);
      const cycle = Math.floor(1 + e / totalSize);
      const x = 1 + e / totalSize - cycle;
      const scale = x <= 0.5 ? x / 0.5 : (x - 1) / (0.5 - 1);
      return base + (lr - base) * scale;
    }
  }
}

/**
 * The learning rate for optimizer step `step` (0-based). Throws an AlignkitError naming every invalid field
 * of `cfg` (validation is a few comparisons, cheap enough to repeat every step).
 */
export function learningRateAt(step: number, cfg: LrScheduleConfig): number {
  const problems = validateLrSchedule(cfg);
  if (!isNonNegInt(step)) problems.unshift(`step: must be an integer >= 0, got ${step}`);
  if (problems.length) throw new AlignkitError(`learning-rate schedule '${String(cfg.type)}': ${problems.join('; ')}`);
  const W = cfg.warmupSteps;
  if (cfg.type !== 'constant' && step < W) {
    const peak = cfg.type === 'cyclic' ? afterWarmup(W, cfg) : cfg.learningRate;
    return peak * (step / Math.max(1, W));
  }
  return afterWarmup(step, cfg);
}

/** The whole schedule, steps 0 .. totalSteps-1 (for plots and tests). */
export function learningRates(cfg: LrScheduleConfig): number[] {
  return Array.from({ length: cfg.totalSteps }, (_, s) => learningRateAt(s, cfg));
}

/**
 * Warmup length as transformers' TrainingArguments.get_warmup_steps (4.x): `warmupSteps` when it is > 0,
 * otherwise ceil(warmupRatio · totalSteps).
 */
export function warmupStepsFor(totalSteps: number, warmupRatio: number, warmupSteps: number): number {
  if (!isNonNegInt(totalSteps)) throw new AlignkitError(`warmupStepsFor: totalSteps must be an integer >= 0, got ${totalSteps}`);
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) throw new AlignkitError(`warmupStepsFor: warmup_ratio must be in [0, 1], got ${warmupRatio}`);
  if (!isNonNegInt(warmupSteps)) throw new AlignkitError(`warmupStepsFor: warmup_steps must be an integer >= 0, got ${warmupSteps}`);
  return warmupSteps > 0 ? warmupSteps : Math.ceil(totalSteps * warmupRatio);
}

/** Keys of `lr_scheduler_kwargs` (snake_case, as in a config file) and the field each sets. */
const KWARG_FIELDS: Record<string, { field: keyof LrScheduleConfig; types: readonly LrSchedulerType[]; absolute?: boolean }> = {
  num_cycles: { field: 'numCycles', types: ['cosine', 'cosine_with_restarts'] },
  min_lr_ratio: { field: 'minLrRatio', types: ['cosine', 'cosine_with_restarts'] },
  min_lr_rate: { field: 'minLrRatio', types: ['cosine', 'cosine_with_restarts'] }, // transformers' name
  min_lr: { field: 'minLrRatio', types: ['cosine', 'cosine_with_restarts'], absolute: true }, // transformers: an absolute lr
  power: { field: 'power', types: ['polynomial'] },
  lr_end: { field: 'lrEnd', types: ['polynomial'] },
  step_size: { field: 'stepSize', types: ['step'] },
  gamma: { field: 'gamma', types: ['step'] },
  cycle_steps: { field: 'cycleSteps', types: ['cyclic'] },
  step_size_up: { field: 'cycleSteps', types: ['cyclic'] }, // torch CyclicLR's name
  base_lr_ratio: { field: 'baseLrRatio', types: ['cyclic'] },
  base_lr: { field: 'baseLrRatio', types: ['cyclic'], absolute: true }, // torch CyclicLR: an absolute lr
};

/** The `lr_scheduler_kwargs` keys each scheduler type accepts. */
export function schedulerKwargNames(type: LrSchedulerType): string[] {
  return Object.keys(KWARG_FIELDS).filter((k) => KWARG_FIELDS[k].types.includes(type));
}

/**
 * Builds a schedule from config-file values: `kwargs` are `lr_scheduler_kwargs` in the names transformers /
 * torch use (num_cycles, min_lr_rate or min_lr, power, lr_end, step_size, gamma, step_size_up or cycle_steps,
 * base_lr or base_lr_ratio). Returns the schedule, or the list of problems (each starting with the kwarg name).
 */
export function lrScheduleFromKwargs(
  type: LrSchedulerType,
  learningRate: number,
  totalSteps: number,
  warmupSteps: number,
  kwargs: Readonly<Record<string, unknown>>,
): { schedule: LrScheduleConfig; problems: [] } | { schedule: null; problems: string[] } {
  const schedule: LrScheduleConfig = { type, learningRate, totalSteps, warmupSteps };
  const problems: string[] = [];
  const setBy = new Map<string, string>();
  for (const [key, value] of Object.entries(kwargs)) {
    const spec = KWARG_FIELDS[key];
    if (!spec || !spec.types.includes(type)) {
      const accepted = schedulerKwargNames(type);
      problems.push(`${key}: not a parameter of the '${type}' scheduler (${accepted.length ? `it takes ${accepted.join(', ')}` : 'it takes none'})`);
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      problems.push(`${key}: must be a finite number, got ${JSON.stringify(value)}`);
      continue;
    }
    const earlier = setBy.get(spec.field);
    if (earlier !== undefined) {
      problems.push(`${key}: sets the same parameter as ${earlier}; give only one`);
      continue;
    }
    setBy.set(spec.field, key);
    (schedule as unknown as Record<string, number>)[spec.field] = spec.absolute ? value / learningRate : value;
  }
  for (const p of validateLrSchedule(schedule)) {
    // Report field problems in the kwarg names the user wrote.
    const field = p.slice(0, p.indexOf(':')) as keyof LrScheduleConfig;
    const name = setBy.get(field) ?? Object.keys(KWARG_FIELDS).find((k) => KWARG_FIELDS[k].field === field && KWARG_FIELDS[k].types.includes(type)) ?? field;
    problems.push(`${name}${p.slice(p.indexOf(':'))}`);
  }
  return problems.length ? { schedule: null, problems } : { schedule, problems: [] };
}
