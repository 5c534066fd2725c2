// Reward sources for the online RL trainers (PPO, GRPO, RLOO): a reward model folder, a TypeScript/JavaScript
// module exporting `score(prompt, response)`, an HTTP endpoint, and weighted sums of them.
//
// Every source scores a batch of (prompt, response) samples and answers PER SAMPLE: a number, or a failure with a
// reason. A failed sample (the function threw, returned NaN/Infinity or something that is not a number, the
// endpoint answered 4xx for it or without a numeric `reward`) is dropped from the rollout with a warning and
// training continues; the trainer stops only when every sample of a rollout failed. An endpoint that cannot be
// reached at all (connection refused, reset, timeout, HTTP 5xx) is retried with exponential backoff and then stops
// the run with an error naming the URL: silently training on a partial reward would be worse.
//
// Specs (config `reward_funcs`, CLI `--reward`): 'module:FILE', 'rm:DIR', 'http:URL' (or a bare http(s):// URL),
// 'constitution:JUDGE[@FILE.yaml]' (src/cai/reward.ts: a judge model or endpoint rates adherence to a constitution).

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AlignkitError } from '../../tensor/index.ts';
import { loadTokenizer, type Tokenizer } from '../../tokenizer/index.ts';
import { RewardScorer } from '../reward.ts';
import { constitutionRewardFromSpec } from '../../cai/reward.ts';

/** One sampled response to score. */
export interface RewardSample {
  prompt: string;
  response: string;
}

/** The reward of one sample: a finite number, or why there is none. */
export type RewardOutcome = { ok: true; value: number } | { ok: false; reason: string };

export interface RewardSource {
  /** For messages and per-source metrics ('toy_task', 'rm', 'localhost:8000'). */
  readonly name: string;
  score(samples: readonly RewardSample[]): Promise<RewardOutcome[]>;
  dispose(): void;
}

const ok = (value: number): RewardOutcome => ({ ok: true, value });
const fail = (reason: string): RewardOutcome => ({ ok: false, reason });

/** A value returned by a reward function, checked: finite numbers only. */
export function checkRewardValue(v: unknown): RewardOutcome {
  if (typeof v !== 'number') return fail(`returned ${v === null ? 'null' : typeof v === 'string' ? `the string ${JSON.stringify(v.slice(0, 40))}` : typeof v}, not a number`);
  if (!Number.isFinite(v)) return fail(`returned ${v}`);
  return ok(v);
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

// ------------------------------------------------------------------------------------------------ module

export type RewardFunction = (prompt: string, response: string) => number | Promise<number>;

/** A reward function as a source (tests, and the toy task's programmatic reward). */
export function functionReward(name: string, fn: RewardFunction): RewardSource {
  return {
    name,
    async score(samples) {
      const out: RewardOutcome[] = [];
      for (const s of samples) {
        try {
          const v = checkRewardValue(await fn(s.prompt, s.response));
          out.push(v.ok ? v : fail(`${name} ${v.reason}`));
        } catch (e) {
          out.push(fail(`${name} threw ${errorText(e)}`));
        }
      }
      return out;
    },
    dispose: () => {},
  };
}

/** A module exporting `score(prompt, response) => number | Promise<number>` (or that function as its default export). */
export async function moduleReward(file: string): Promise<RewardSource> {
  const abs = path.resolve(file);
  let mod: { default?: unknown; score?: unknown };
  try {
    mod = (await import(pathToFileURL(abs).href)) as { default?: unknown; score?: unknown };
  } catch (e) {
    throw new AlignkitError(`reward module ${file}: cannot be loaded: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
  }
  const fn = typeof mod.score === 'function' ? mod.score : mod.default;
  if (typeof fn !== 'function') throw new AlignkitError(`reward module ${file}: export a function score(prompt, response) => number (or make it the default export)`);
  return functionReward(path.basename(file).replace(/\.[cm]?[jt]s$/, ''), fn as RewardFunction);
}

// ------------------------------------------------------------------------------------------------ reward model

/**
 * A reward model folder (a *ForSequenceClassification checkpoint, e.g. from `alignkit reward`) scoring
 * prompt + response re-tokenised with ITS tokenizer (EOS appended, as the reward trainer saw its pairs), in
 * batches of `batchSize` rows.
 */
export function rewardModelReward(dir: string, o: { batchSize?: number } = {}): RewardSource {
  const tok: Tokenizer = loadTokenizer(dir);
  const rm = new RewardScorer(dir);
  const bs = o.batchSize ?? 16;
  return {
    name: `rm:${path.basename(path.resolve(dir))}`,
    async score(samples) {
      const rows = samples.map((s) => {
        const ids = tok.encode(s.prompt + s.response);
        return tok.eosId !== null && ids[ids.length - 1] !== tok.eosId ? [...ids, tok.eosId] : ids;
      });
      const out: RewardOutcome[] = [];
      for (let i = 0; i < rows.length; i += bs) {
        for (const v of rm.score(rows.slice(i, i + bs), tok.padId ?? 0)) out.push(Number.isFinite(v) ? ok(v) : fail(`reward model ${dir} gave ${v}`));
      }
      return out;
    },
    dispose: () => rm.dispose(),
  };
}

// ------------------------------------------------------------------------------------------------ HTTP

export interface HttpRewardOptions {
  /** Milliseconds to wait for one answer. Default 30 000. */
  timeoutMs?: number;
  /** Retries after a failed attempt (network error, timeout, 5xx). Default 3. */
  retries?: number;
  /** First backoff in milliseconds; doubled after every failed attempt. Default 500. */
  backoffMs?: number;
  /** Requests in flight at once. Default 8. */
  concurrency?: number;
}

/** The endpoint could not be reached (after the retries). */
export class RewardEndpointError extends AlignkitError {}

/**
 * An HTTP endpoint: POST application/json {"prompt": ..., "response": ...} → {"reward": number}. One request
 * per sample, `concurrency` at a time. Connection errors, timeouts and HTTP 5xx are retried `retries` times with
 * exponential backoff, then a RewardEndpointError stops the run. HTTP 4xx and a body without a finite numeric
 * `reward` fail that sample only.
 */
export function httpReward(url: string, o: HttpRewardOptions = {}): RewardSource {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AlignkitError(`reward endpoint '${url}': not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new AlignkitError(`reward endpoint '${url}': only http:// and https:// URLs are supported`);
  const timeoutMs = o.timeoutMs ?? 30_000;
  const retries = o.retries ?? 3;
  const backoffMs = o.backoffMs ?? 500;
  const concurrency = Math.max(1, o.concurrency ?? 8);

  async function one(s: RewardSample): Promise<RewardOutcome> {
    let last = '';
    for (let attempt = 0; attempt <= retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, backoffMs * 2 ** (attempt - 1)));
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ prompt: s.prompt, response: s.response }),
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (e) {
        const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
        last = e instanceof Error && e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : `${e instanceof Error ? e.message : String(e)}${cause}`;
        continue;
      }
      let text: string;
      try {
        text = await res.text();
      } catch (e) {
        last = `the connection broke while reading the answer (${e instanceof Error ? e.message : String(e)})`;
        continue;
      }
      if (res.status >= 500) {
        last = `HTTP ${res.status}${text ? ` ${JSON.stringify(text.slice(0, 80))}` : ''}`;
        continue;
      }
      if (!res.ok) return fail(`endpoint ${url} answered HTTP ${res.status}${text ? ` ${JSON.stringify(text.slice(0, 80))}` : ''}`);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        return fail(`endpoint ${url} answered ${JSON.stringify(text.slice(0, 80))}, not JSON`);
      }
      const reward = body !== null && typeof body === 'object' ? (body as { reward?: unknown }).reward : undefined;
      if (reward === undefined) return fail(`endpoint ${url} answered without a 'reward' field`);
      const v = checkRewardValue(reward);
      return v.ok ? v : fail(`endpoint ${url} ${v.reason}`);
    }
    throw new RewardEndpointError(`reward endpoint ${url} is unreachable: ${retries + 1} attempt(s) failed, the last with: ${last}`);
  }

  return {
    name: parsed.host,
    async score(samples) {
      const out: RewardOutcome[] = new Array(samples.length);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < samples.length) {
          const i = next++;
          out[i] = await one(samples[i]);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, samples.length) }, worker));
      return out;
    },
    dispose: () => {},
  };
}

// ------------------------------------------------------------------------------------------------ combination

/** Per-sample total Σ w_i r_i over the sources, and each source's outcomes (for per-source metrics). */
export interface CombinedScores {
  /** The weighted sum; a failure when any source failed for the sample. */
  total: RewardOutcome[];
  /** By source name: that source's raw outcomes. */
  bySource: Map<string, RewardOutcome[]>;
}

/** Weighted sum of several sources; a sample fails when one of its sources failed (all reasons are kept). */
export class CombinedReward {
  readonly weights: readonly number[];
  constructor(
    readonly sources: readonly RewardSource[],
    weights: readonly number[] | null = null,
  ) {
    if (sources.length === 0) throw new AlignkitError('rewards: at least one reward source is needed');
    if (weights !== null && weights.length !== sources.length) throw new AlignkitError(`rewards: ${weights.length} weight(s) for ${sources.length} reward source(s)`);
    for (const w of weights ?? []) if (!Number.isFinite(w)) throw new AlignkitError(`rewards: weight ${w} is not a finite number`);
    this.weights = weights ?? sources.map(() => 1);
  }

  async score(samples: readonly RewardSample[]): Promise<CombinedScores> {
    const bySource = new Map<string, RewardOutcome[]>();
    const all: RewardOutcome[][] = [];
    for (const src of this.sources) {
      const r = await src.score(samples);
      if (r.length !== samples.length) throw new AlignkitError(`reward source ${src.name} returned ${r.length} rewards for ${samples.length} samples`);
      all.push(r);
      let name = src.name;
      for (let k = 2; bySource.has(name); k++) name = `${src.name}_${k}`;
      bySource.set(name, r);
    }
    const total = samples.map((_, j): RewardOutcome => {
      let v = 0;
      const reasons: string[] = [];
      all.forEach((r, i) => {
        const o = r[j];
        if (o.ok) v += this.weights[i] * o.value;
        else reasons.push(o.reason);
      });
      return reasons.length ? fail(reasons.join('; ')) : ok(v);
    });
    return { total, bySource };
  }

  dispose(): void {
    for (const s of this.sources) s.dispose();
  }
}

/** A source from its spec: 'module:FILE', 'rm:DIR', 'http:URL', a bare http(s):// URL or 'constitution:JUDGE[@FILE]'. */
export async function rewardSourceFromSpec(spec: string, o: HttpRewardOptions & { batchSize?: number } = {}): Promise<RewardSource> {
  if (spec.startsWith('module:')) return moduleReward(spec.slice('module:'.length));
  if (spec.startsWith('rm:')) return rewardModelReward(spec.slice('rm:'.length), o);
  if (/^https?:\/\//.test(spec)) return httpReward(spec, o);
  if (spec.startsWith('http:')) return httpReward(spec.slice('http:'.length), o);
  if (spec.startsWith('constitution:')) return constitutionRewardFromSpec(spec.slice('constitution:'.length), { timeoutMs: o.timeoutMs, retries: o.retries });
  throw new AlignkitError(`reward '${spec}': use module:FILE (exports score(prompt, response)), rm:DIR (a reward model folder), http:URL (POST {prompt, response} -> {reward}) or constitution:JUDGE[@FILE.yaml] (a judge model rates adherence to a constitution)`);
}

/** The reward of a config: reward_model_path first, then reward_funcs, weighted by reward_weights. */
export async function rewardsFromConfig(c: {
  reward_model_path: string | null;
  reward_funcs: readonly string[];
  reward_weights: readonly number[] | null;
  reward_timeout_s: number;
  reward_retries: number;
  local_rollout_forward_batch_size: number;
}): Promise<CombinedReward> {
  const specs = [...(c.reward_model_path !== null ? [`rm:${c.reward_model_path}`] : []), ...c.reward_funcs];
  const sources: RewardSource[] = [];
  try {
    for (const s of specs) sources.push(await rewardSourceFromSpec(s, { timeoutMs: c.reward_timeout_s * 1000, retries: c.reward_retries, batchSize: c.local_rollout_forward_batch_size }));
  } catch (e) {
    for (const s of sources) s.dispose();
    throw e;
  }
  return new CombinedReward(sources, c.reward_weights);
}
