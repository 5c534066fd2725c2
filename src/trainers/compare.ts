// Inference-time tools around preferences: best-of-n (rejection sampling: n samples per prompt, keep the one a
// scorer likes best — a baseline DPO is compared against, and a way to build SFT data) and pairwise win rates
// between two models' responses under a judge (a reward model, a TypeScript module, or an OpenAI-compatible chat
// endpoint), reported with a Wilson interval and a two-sided sign test.

import { pathToFileURL } from 'node:url';
import path from 'node:path';
import { AlignkitError } from '../tensor/index.ts';
import { generate, type GenerateOptions } from '../generate/index.ts';
import type { PretrainedLM } from '../models/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { signTest, wilsonInterval } from '../eval/stats.ts';
import { RewardScorer } from './reward.ts';
import { EndpointChatModel, parseChoice } from '../cai/chat.ts';

export type SamplingFlags = Pick<GenerateOptions, 'temperature' | 'topK' | 'topP' | 'minP' | 'repetitionPenalty'> & { maxNewTokens: number; seed: number };

/** n responses to one prompt (one batch of n rows; row r is seeded seed + r). */
export function sampleResponses(model: PretrainedLM, tok: Tokenizer, prompt: string, n: number, s: SamplingFlags): string[] {
  const ids = tok.encode(prompt);
  const out = generate(model, {
    inputIds: Array.from({ length: n }, () => ids),
    maxNewTokens: s.maxNewTokens,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    minP: s.minP,
    repetitionPenalty: s.repetitionPenalty,
    seed: Array.from({ length: n }, (_, r) => s.seed + r),
    stopTokenIds: tok.stopIds.length ? tok.stopIds : undefined,
  });
  return out.map((g) => tok.decode(g.ids, { skipSpecialTokens: true }));
}

/** Scores (prompt, response) pairs: higher is better. */
export interface Scorer {
  score(prompt: string, responses: readonly string[]): Promise<number[]>;
  dispose(): void;
}

export function rewardModelScorer(dir: string, tok: Tokenizer): Scorer {
  const rm = new RewardScorer(dir);
  return {
    async score(prompt, responses) {
      const eos = tok.eosId;
      return rm.score(
        responses.map((r) => {
          const ids = tok.encode(prompt + r);
          return eos !== null && ids[ids.length - 1] !== eos ? [...ids, eos] : ids;
        }),
        tok.padId ?? 0,
      );
    },
    dispose: () => rm.dispose(),
  };
}

/** A module exporting `score(prompt, response) => number | Promise<number>` (default export or named). */
export async function moduleScorer(file: string): Promise<Scorer> {
  const mod = (await import(pathToFileURL(path.resolve(file)).href)) as { default?: unknown; score?: unknown };
  const fn = (typeof mod.score === 'function' ? mod.score : mod.default) as ((p: string, r: string) => number | Promise<number>) | undefined;
  if (typeof fn !== 'function') throw new AlignkitError(`${file}: export a function score(prompt, response) => number (or a default export)`);
  return {
    async score(prompt, responses) {
      const out: number[] = [];
      for (const r of responses) {
        const v = Number(await fn(prompt, r));
        if (!Number.isFinite(v)) throw new AlignkitError(`${file}: score() returned ${v} for a response to ${JSON.stringify(prompt.slice(0, 40))}`);
        out.push(v);
      }
      return out;
    },
    dispose: () => {},
  };
}

/**
 * An OpenAI-compatible chat endpoint (llama.cpp server, ollama, vLLM) as a pairwise judge: it is shown the
 * prompt and both responses and must answer A, B or tie. It talks through the shared chat client of
 * src/cai/chat.ts (per-request timeout; `retries` extra attempts with backoff after a network error, timeout or
 * HTTP 5xx, none by default); every failure is reported, never skipped.
 */
export function endpointJudge(url: string, model: string, timeoutMs = 60_000, retries = 0): (prompt: string, a: string, b: string) => Promise<'a' | 'b' | 'tie'> {
  const client = new EndpointChatModel(url, { model, timeoutMs, retries, concurrency: 1 });
  return async (prompt, a, b) => {
    const content =
      `Which response answers the prompt better? Reply with exactly one of: A, B, tie.\n\nPrompt:\n${prompt}\n\nResponse A:\n${a}\n\nResponse B:\n${b}`;
    let text: string;
    try {
      [text] = await client.chat([{ messages: [{ role: 'user', content }], seed: 0 }], { maxNewTokens: 8, temperature: 0 });
    } catch (e) {
      throw new AlignkitError(`judge endpoint ${url}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const choice = parseChoice(text, ['A', 'B']);
    if (choice === null) throw new AlignkitError(`judge endpoint ${url}: expected A, B or tie, got ${JSON.stringify(text.toLowerCase().slice(0, 60))}`);
    return choice === 'tie' ? 'tie' : choice === 0 ? 'a' : 'b';
  };
}

export interface BestOfNRow {
  prompt: string;
  /** The best response (SFT data: {prompt, completion}). */
  completion: string;
  score: number;
  candidates: { text: string; score: number }[];
}

export async function bestOfN(model: PretrainedLM, tok: Tokenizer, prompts: readonly string[], n: number, scorer: Scorer, s: SamplingFlags): Promise<BestOfNRow[]> {
  if (!Number.isSafeInteger(n) || n < 1) throw new AlignkitError(`best-of-n: n must be a positive integer, got ${n}`);
  const out: BestOfNRow[] = [];
  for (const [i, prompt] of prompts.entries()) {
    const texts = sampleResponses(model, tok, prompt, n, { ...s, seed: s.seed + i * n });
    const scores = await scorer.score(prompt, texts);
    let best = 0;
    for (let k = 1; k < n; k++) if (scores[k] > scores[best]) best = k;
    out.push({ prompt, completion: texts[best], score: scores[best], candidates: texts.map((text, k) => ({ text, score: scores[k] })) });
  }
  return out;
}

export interface WinRateReport {
  wins: number;
  losses: number;
  ties: number;
  n: number;
  /** (wins + ties/2) / n. */
  winRate: number;
  /** Wilson 95% interval of the win rate (ties counted as half a win). */
  interval: { lower: number; upper: number };
  /** Two-sided exact binomial sign test on wins vs losses (ties dropped). */
  pValue: number;
  rows: { prompt: string; a: string; b: string; winner: 'a' | 'b' | 'tie'; scoreA?: number; scoreB?: number }[];
}

export function summarizeOutcomes(rows: WinRateReport['rows']): WinRateReport {
  const wins = rows.filter((r) => r.winner === 'a').length;
  const losses = rows.filter((r) => r.winner === 'b').length;
  const ties = rows.length - wins - losses;
  const n = rows.length;
  const w = wilsonInterval(wins + ties / 2, n);
  return { wins, losses, ties, n, winRate: n ? (wins + ties / 2) / n : Number.NaN, interval: { lower: w.low, upper: w.high }, pValue: signTest(wins, losses).pValue, rows };
}

/** Responses of models A and B to every prompt, judged pairwise (scorer: higher score wins; equal = tie). */
export async function winRate(
  a: { model: PretrainedLM; tok: Tokenizer },
  b: { model: PretrainedLM; tok: Tokenizer },
  prompts: readonly string[],
  judge: { scorer: Scorer } | { pairwise: (prompt: string, ra: string, rb: string) => Promise<'a' | 'b' | 'tie'> },
  s: SamplingFlags,
): Promise<WinRateReport> {
  const rows: WinRateReport['rows'] = [];
  for (const [i, prompt] of prompts.entries()) {
    const [ra] = sampleResponses(a.model, a.tok, prompt, 1, { ...s, seed: s.seed + i });
    const [rb] = sampleResponses(b.model, b.tok, prompt, 1, { ...s, seed: s.seed + i });
    if ('scorer' in judge) {
      const [sa, sb] = await judge.scorer.score(prompt, [ra, rb]);
      rows.push({ prompt, a: ra, b: rb, winner: sa > sb ? 'a' : sb > sa ? 'b' : 'tie', scoreA: sa, scoreB: sb });
    } else rows.push({ prompt, a: ra, b: rb, winner: await judge.pairwise(prompt, ra, rb) });
  }
  return summarizeOutcomes(rows);
}
