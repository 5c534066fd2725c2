// Autoregressive generation for any CausalLM: batched, left-padded, with a KV cache (or the slow full
// recompute), HF logits processors, seeded sampling, stop tokens / stop strings, and per-token log-probs
// from the same math the trainers use (see logprobs.ts).
//
// Per step, only the last position's hidden states [B, H] go through the LM head (`linear`), so the logits
// are [active rows, V] — never [B, T, V]. The processors and the sampler run per row in float64 (sampling.ts).
//
// Batch layout. Prompts are LEFT-padded to the longest one (padding has attention mask 0), so every row's
// next token sits in the same column and one cache length serves all rows. Position ids come from the
// mask (cumsum - 1), so a padded row sees exactly the positions it would see alone. A row that finishes
// gets padTokenId with mask 0 in later columns; its outputs are ignored and it no longer counts (the LM head
// runs only on the active rows; the body still runs on all B rows, as the cache cannot drop rows).
// The repetition penalty counts each row's own prompt and generated tokens, never padding (HF's processor
// also counts the pad tokens of left-padded rows, which makes a padded row differ from the row alone).
//
// Randomness. Each row samples from its own Philox stream: with `seed: number`, row r uses
// `new Generator(rowSeed(seed, r))`; with `seed: number[]`, row r uses `new Generator(seed[r])`. A row draws
// one uniform per sampled token and nothing else, so its tokens depend only on its seed and its own logits —
// not on which other rows share the batch or when they finish. (Pass per-prompt seeds to make a prompt's
// sample independent of its row index too. Batched GEMMs can still round the logits differently from a
// single-row run, which matters only at near-exact ties.)

import type { CausalLM } from '../models/types.ts';
import { ShapeError, fmtShape } from '../tensor/errors.ts';
import { Generator, Tensor, indexSelect, intTensor, linear, narrow, noGrad, rand, reshape, tidy } from '../tensor/index.ts';
import type { FloatArray } from '../backend/index.ts';
import { positionIdsFromMask } from './logprobs.ts';
import { argmaxIndex, logprobAt, processLogits, resolveSampling, sampleIndex, type SamplingOptions } from './sampling.ts';

export type FinishReason = 'eos' | 'stop_string' | 'length';

export interface GenerateOptions extends SamplingOptions {
  /** One prompt per row (ragged; each at least one token). */
  inputIds: readonly (readonly number[])[];
  /** Tokens to generate at most per row (>= 0). */
  maxNewTokens: number;
  /** A row stops after emitting one of these (the token is included). Default: model.config.eosTokenIds. */
  stopTokenIds?: readonly number[];
  /** A row stops once its decoded new tokens contain one of these (the completing token is included). Needs `decode`. */
  stopStrings?: readonly string[];
  /** Token ids -> text, for stopStrings (called with a row's new tokens). */
  decode?: (ids: readonly number[]) => string;
  /** Seed of the per-row sampling streams (see the file comment): one number, or one per row. Default 0. */
  seed?: number | readonly number[];
  /** Token written into padding and finished rows. Default: config.padTokenId ?? first EOS id ?? 0. */
  padTokenId?: number;
  /** true: one full-prompt forward then one token per step through the KV cache; false: recompute all. Default true. */
  useCache?: boolean;
  /** Also return per-token log-probs (`logprobs` and `sampledLogprobs`). Default false. */
  returnLogprobs?: boolean;
  /** Temperature of the `logprobs` distribution (match the trainer's sequenceLogprobs temperature). Default 1. */
  logprobTemperature?: number;
}

export interface GenerationResult {
  /** The new tokens only: no prompt, no padding; ends with the stop token when finishReason is 'eos'. */
  ids: number[];
  finishReason: FinishReason;
  /** The stop string that ended the row (finishReason 'stop_string'). */
  stopString?: string;
  /**
   * log p(token | prefix) under the model's raw distribution softmax(logits / logprobTemperature) — no
   * penalty or filtering: what `sequenceLogprobs(..., {temperature: logprobTemperature})` gives (to ~1e-5).
   */
  logprobs?: number[];
  /**
   * log-prob of each token under the distribution it was actually sampled from (after repetition penalty,
   * temperature, top-k/top-p/min-p). 0 for greedy decoding (a point mass).
   */
  sampledLogprobs?: number[];
}

// ------------------------------------------------------------------------------------------------ seeds
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The seed of row `row`'s sampling stream for a batch seed (a 53-bit hash of both; safe integer). */
export function rowSeed(seed: number, row: number): number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296) >>> 0;
  const a = fmix32((lo ^ fmix32((row + 0x9e3779b9) >>> 0)) >>> 0);
  const b = fmix32((hi ^ fmix32((a + Math.imul(row, 0x27d4eb2f) + 0x165667b1) >>> 0)) >>> 0) & 0x1fffff;
  return b * 4294967296 + a;
}

// ------------------------------------------------------------------------------------------------ validation
interface Resolved {
  prompts: number[][];
  maxNew: number;
  stopIds: Set<number>;
  stopStrings: string[];
  decode: ((ids: readonly number[]) => string) | null;
  seeds: number[];
  pad: number;
  useCache: boolean;
  returnLogprobs: boolean;
  logprobTemperature: number;
}

function isInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v);
}

function resolveOptions(model: CausalLM, o: GenerateOptions): Resolved {
  const cfg = model.config;
  const V = cfg.vocabSize;
  if (!Array.isArray(o.inputIds)) throw new TypeError('generate: inputIds must be an array of token-id arrays (one per row)');
  const prompts = o.inputIds.map((row, b) => {
    if (!Array.isArray(row)) throw new TypeError(`generate: inputIds[${b}] must be an array of token ids`);
    if (row.length === 0) throw new RangeError(`generate: prompt ${b} is empty; every row needs at least one token (e.g. BOS)`);
    row.forEach((id, t) => {
      if (!isInt(id) || id < 0 || id >= V) throw new RangeError(`generate: inputIds[${b}][${t}] = ${id} is not a token id in [0, ${V})`);
    });
    if (row.length > cfg.maxPositions)
      throw new RangeError(`generate: prompt ${b} has ${row.length} tokens, longer than the model's ${cfg.maxPositions} positions`);
    return [...row];
  });
  const maxNew = o.maxNewTokens;
  if (!isInt(maxNew) || maxNew < 0) throw new RangeError(`generate: maxNewTokens must be an integer >= 0, got ${maxNew}`);
  const longest = prompts.reduce((m, p) => Math.max(m, p.length), 0);
  if (longest + maxNew > cfg.maxPositions)
    throw new RangeError(`generate: the longest prompt (${longest} tokens) + maxNewTokens (${maxNew}) = ${longest + maxNew} exceeds the model's ${cfg.maxPositions} positions; shorten the prompt or lower maxNewTokens`);
  const stopList = o.stopTokenIds ?? cfg.eosTokenIds;
  stopList.forEach((id) => {
    if (!isInt(id)) throw new RangeError(`generate: stopTokenIds must be integers, got ${id}`);
  });
  const stopStrings = [...(o.stopStrings ?? [])];
  stopStrings.forEach((s) => {
    if (typeof s !== 'string' || s.length === 0) throw new RangeError(`generate: stopStrings must be non-empty strings, got ${JSON.stringify(s)}`);
  });
  if (stopStrings.length && typeof o.decode !== 'function') throw new TypeError('generate: stopStrings need a decode(ids) => string callback');
  const B = prompts.length;
  let seeds: number[];
  if (Array.isArray(o.seed)) {
    if (o.seed.length !== B) throw new RangeError(`generate: seed has ${o.seed.length} entries for ${B} rows`);
    seeds = o.seed.map((s) => {
      if (!Number.isSafeInteger(s)) throw new RangeError(`generate: seeds must be safe integers, got ${s}`);
      return s;
    });
  } else {
    const s = o.seed ?? 0;
    if (!Number.isSafeInteger(s)) throw new RangeError(`generate: seed must be a safe integer, got ${String(s)}`);
    seeds = prompts.map((_, r) => rowSeed(s as number, r));
  }
  const pad = o.padTokenId ?? cfg.padTokenId ?? cfg.eosTokenIds[0] ?? 0;
  if (!isInt(pad) || pad < 0 || pad >= V) throw new RangeError(`generate: padTokenId ${pad} is not a token id in [0, ${V})`);
  const logprobTemperature = o.logprobTemperature ?? 1;
  if (!(Number.isFinite(logprobTemperature) && logprobTemperature > 0))
    throw new RangeError(`generate: logprobTemperature must be a finite number > 0, got ${logprobTemperature}`);
  return {
    prompts, maxNew, stopIds: new Set(stopList), stopStrings, decode: o.decode ?? null, seeds, pad,
    useCache: o.useCache ?? true, returnLogprobs: o.returnLogprobs ?? false, logprobTemperature,
  };
}

// ------------------------------------------------------------------------------------------------ the loop
/** Generates continuations of every prompt; see GenerateOptions and the file comment. */
export function generate(model: CausalLM, options: GenerateOptions): GenerationResult[] {
  const sampling = resolveSampling(options);
  const r = resolveOptions(model, options);
  const { prompts, maxNew, pad } = r;
  const B = prompts.length;
  const V = model.config.vocabSize;
  const results: GenerationResult[] = prompts.map(() => ({
    ids: [], finishReason: 'length',
    ...(r.returnLogprobs ? { logprobs: [], sampledLogprobs: [] } : {}),
  }));
  if (B === 0 || maxNew === 0) return results;

  // Token and mask grid [B, L + maxNew], prompts right-aligned (left padding).
  const L = prompts.reduce((m, p) => Math.max(m, p.length), 0);
  const S = L + maxNew;
  const grid = new Int32Array(B * S).fill(pad);
  const mask = new Int32Array(B * S);
  prompts.forEach((p, b) => {
    grid.set(p, b * S + L - p.length);
    mask.fill(1, b * S + L - p.length, b * S + L);
  });
  const seen = sampling.repetitionPenalty !== 1 ? prompts.map((p) => new Set(p)) : null;
  const gens = sampling.temperature > 0 ? r.seeds.map((s) => new Generator(s)) : null;
  const done = new Array<boolean>(B).fill(false);
  const [Vw, H] = model.lmHeadWeight().shape;
  if (Vw !== V) throw new ShapeError(`generate: lmHeadWeight ${fmtShape(model.lmHeadWeight().shape)} does not match vocabSize ${V}`);

  noGrad(() => {
    const cache = r.useCache ? model.createCache(B, S) : null;
    try {
      let cur = L; // columns filled so far
      for (let step = 0; step < maxNew; step++) {
        const active: number[] = [];
        for (let b = 0; b < B; b++) if (!done[b]) active.push(b);
        // Columns fed this step: the whole prompt first, then one column with the cache; all of them without.
        const from = cache && step > 0 ? cur - 1 : 0;
        const T = cur - from;
        const logits: FloatArray = tidy(() => {
          const cols = (src: Int32Array, a: number, n: number): Int32Array => {
            const out = new Int32Array(B * n);
            for (let b = 0; b < B; b++) out.set(src.subarray(b * S + a, b * S + a + n), b * n);
            return out;
          };
          const attentionMask = intTensor(cols(mask, 0, cur), [B, cur]);
          const posAll = positionIdsFromMask(attentionMask).data as Int32Array;
          const positionIds = intTensor(
            (() => {
              const out = new Int32Array(B * T);
              for (let b = 0; b < B; b++) out.set(posAll.subarray(b * cur + from, b * cur + cur), b * T);
              return out;
            })(),
            [B, T],
          );
          const ids = intTensor(cols(grid, from, T), [B, T]);
          const hidden = model.forward(ids, { attentionMask, positionIds, cache });
          if (hidden.rank !== 3 || hidden.shape[0] !== B || hidden.shape[1] !== T || hidden.shape[2] !== H)
            throw new ShapeError(`generate: model.forward returned ${fmtShape(hidden.shape)}, expected [${B}, ${T}, ${H}]`);
          let last: Tensor = reshape(narrow(hidden, 1, T - 1, 1), [B, H]); // [B, H]
          if (active.length < B) last = indexSelect(last, 0, intTensor(active));
          const lg = linear(last, model.lmHeadWeight(), model.lmHeadBias()); // [active, V]
          return (lg.data as FloatArray).slice(0, active.length * V); // a copy in the backend's own precision
        });
        for (let k = 0; k < active.length; k++) {
          const b = active[k];
          const raw = logits.subarray(k * V, (k + 1) * V);
          const nanAt = (v: number): never => {
            throw new RangeError(`generate: the model produced NaN logits (row ${b}, step ${step}, token ${v})`);
          };
          let tok: number;
          let work: Float64Array | null = null;
          if (!gens && sampling.repetitionPenalty === 1) {
            // Plain greedy: no processor changes the logits, so the argmax is taken on them directly, in the
            // same pass as the NaN check (the same choice as argmaxIndex on a float64 copy: the widening is exact).
            let best = -Infinity;
            tok = 0;
            for (let v = 0; v < V; v++) {
              const z = raw[v];
              if (z > best) {
                best = z;
                tok = v;
              } else if (z !== z) nanAt(v);
            }
          } else {
            for (let v = 0; v < V; v++) if (Number.isNaN(raw[v])) nanAt(v);
            work = Float64Array.from(raw);
            processLogits(work, sampling, seen ? seen[b] : []);
            if (gens) {
              const u = tidy(() => rand([1], { generator: gens[b] }).item());
              tok = sampleIndex(work, u);
            } else tok = argmaxIndex(work);
          }
          const res = results[b];
          res.ids.push(tok);
          if (r.returnLogprobs) {
            res.logprobs?.push(logprobAt(raw, tok, r.logprobTemperature));
            res.sampledLogprobs?.push(gens && work ? logprobAt(work, tok) : 0);
          }
          seen?.[b].add(tok);
          grid[b * S + cur] = tok;
          mask[b * S + cur] = 1;
          if (r.stopIds.has(tok)) {
            res.finishReason = 'eos';
            done[b] = true;
          } else if (r.stopStrings.length && r.decode) {
            const text = r.decode(res.ids);
            const hit = r.stopStrings.find((s) => text.includes(s));
            if (hit !== undefined) {
              res.finishReason = 'stop_string';
              res.stopString = hit;
              done[b] = true;
            }
          }
        }
        cur++;
        if (done.every((d) => d)) break;
      }
    } finally {
      cache?.dispose();
    }
  });
  return results;
}
