// Hyperparameter search: grid or random search over a run configuration's fields within a trial budget. Each
// trial is a normal run (its own output_dir, checkpoints, metrics), and trials are ranked by an evaluation
// metric. Planning is pure and seeded, so the same sweep file gives the same trials.

import { AlignkitError } from '../tensor/index.ts';

/** One field's search domain: a list of values, or a numeric range (log-uniform with log: true). */
export type SearchDomain = { values: readonly unknown[] } | { min: number; max: number; log?: boolean; integer?: boolean };

export interface SweepSpec {
  method: 'grid' | 'random';
  /** Maximum number of trials (a grid larger than the budget is cut, in grid order). */
  budget: number;
  /** The metric that ranks trials ('eval_loss', ...). */
  metric: string;
  /** Higher is better? Default: false for losses/perplexity, true otherwise. */
  greaterIsBetter?: boolean;
  seed: number;
  parameters: Record<string, SearchDomain>;
}

/** Parses and validates a sweep file's object (YAML/JSON already read). Errors name the key. */
export function parseSweepSpec(raw: unknown, where: string): SweepSpec {
  const fail = (key: string, msg: string): never => {
    throw new AlignkitError(`${where}: key '${key}': ${msg}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new AlignkitError(`${where}: a sweep file is a mapping with method, budget, metric and parameters`);
  const r = raw as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!['method', 'budget', 'metric', 'greater_is_better', 'seed', 'parameters'].includes(k)) fail(k, 'unknown key (known: method, budget, metric, greater_is_better, seed, parameters)');
  const method = r.method ?? 'grid';
  if (method !== 'grid' && method !== 'random') fail('method', `must be grid or random, got ${JSON.stringify(method)}`);
  const budget = r.budget ?? 10;
  if (typeof budget !== 'number' || !Number.isSafeInteger(budget) || budget < 1) fail('budget', 'must be a positive integer');
  const metric = r.metric ?? 'eval_loss';
  if (typeof metric !== 'string') fail('metric', 'must be a string');
  const seed = r.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isSafeInteger(seed)) fail('seed', 'must be an integer');
  if (r.greater_is_better !== undefined && typeof r.greater_is_better !== 'boolean') fail('greater_is_better', 'must be true or false');
  const params = r.parameters;
  if (typeof params !== 'object' || params === null || Array.isArray(params) || Object.keys(params).length === 0) fail('parameters', 'must map at least one config field to a domain');
  const parameters: Record<string, SearchDomain> = {};
  for (const [k, d] of Object.entries(params as Record<string, unknown>)) {
    const key = `parameters.${k}`;
    if (Array.isArray(d)) {
      if (d.length === 0) fail(key, 'an empty list of values');
      parameters[k] = { values: d };
      continue;
    }
    if (typeof d !== 'object' || d === null) fail(key, 'must be a list of values, {values: [...]} or {min, max, log?, integer?}');
    const o = d as Record<string, unknown>;
    if ('values' in o) {
      if (!Array.isArray(o.values) || o.values.length === 0) fail(`${key}.values`, 'must be a non-empty list');
      parameters[k] = { values: o.values as unknown[] };
    } else {
      const { min, max } = o;
      if (typeof min !== 'number' || typeof max !== 'number' || !(min <= max)) fail(key, 'needs numbers min <= max');
      if (o.log === true && !((min as number) > 0)) fail(key, 'a log-uniform range needs min > 0');
      parameters[k] = { min: min as number, max: max as number, log: o.log === true, integer: o.integer === true };
    }
  }
  const greaterIsBetter = (r.greater_is_better as boolean | undefined) ?? !/loss|perplexity/.test(metric as string);
  return { method: method as SweepSpec['method'], budget: budget as number, metric: metric as string, greaterIsBetter, seed: seed as number, parameters };
}

/** mulberry32: a small, well-mixed 32-bit PRNG — enough for choosing hyperparameters reproducibly. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The trials' overrides, in order. Grid: the cartesian product (ranges are an error: grids need values). */
export function planTrials(spec: SweepSpec): Record<string, unknown>[] {
  const keys = Object.keys(spec.parameters);
  if (spec.method === 'grid') {
    let trials: Record<string, unknown>[] = [{}];
    for (const k of keys) {
      const d = spec.parameters[k];
      if (!('values' in d)) throw new AlignkitError(`sweep: grid search needs a list of values for '${k}' (ranges are for random search)`);
      trials = trials.flatMap((t) => d.values.map((v) => ({ ...t, [k]: v })));
    }
    return trials.slice(0, spec.budget);
  }
  const rand = mulberry32(spec.seed);
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < spec.budget; i++) {
    const t: Record<string, unknown> = {};
    for (const k of keys) {
      const d = spec.parameters[k];
      if ('values' in d) t[k] = d.values[Math.floor(rand() * d.values.length)];
      else {
        const u = rand();
        let v = d.log ? Math.exp(Math.log(d.min) + u * (Math.log(d.max) - Math.log(d.min))) : d.min + u * (d.max - d.min);
        if (d.integer) v = Math.min(d.max, Math.floor(v + 0.5));
        t[k] = v;
      }
    }
    out.push(t);
  }
  return out;
}

export interface TrialResult {
  index: number;
  overrides: Record<string, unknown>;
  metrics: Record<string, number>;
  /** The ranking metric (NaN when the trial failed or did not report it). */
  value: number;
  error: string | null;
  outputDir: string;
}

export interface SweepResult {
  metric: string;
  greaterIsBetter: boolean;
  /** Best first; failed trials last. */
  ranked: TrialResult[];
}

/** Runs the trials one after another (each a full run); a failing trial is recorded, not fatal. */
export async function runSweep(
  spec: SweepSpec,
  runTrial: (overrides: Record<string, unknown>, index: number) => Promise<{ metrics: Record<string, number>; outputDir: string }>,
  onTrial?: (r: TrialResult) => void,
): Promise<SweepResult> {
  const results: TrialResult[] = [];
  const plan = planTrials(spec);
  for (const [index, overrides] of plan.entries()) {
    let r: TrialResult;
    try {
      const { metrics, outputDir } = await runTrial(overrides, index);
      const value = metrics[spec.metric];
      r = { index, overrides, metrics, value: typeof value === 'number' ? value : Number.NaN, error: typeof value === 'number' ? null : `metric '${spec.metric}' not reported`, outputDir };
    } catch (e) {
      r = { index, overrides, metrics: {}, value: Number.NaN, error: e instanceof Error ? e.message : String(e), outputDir: '' };
    }
    results.push(r);
    onTrial?.(r);
  }
  const gib = spec.greaterIsBetter ?? false;
  const ranked = [...results].sort((a, b) => {
    const fa = Number.isFinite(a.value);
    const fb = Number.isFinite(b.value);
    if (fa !== fb) return fa ? -1 : 1;
    if (!fa) return a.index - b.index;
    return gib ? b.value - a.value : a.value - b.value;
  });
  return { metric: spec.metric, greaterIsBetter: gib, ranked };
}
