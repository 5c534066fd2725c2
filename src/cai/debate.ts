// Debate / iterative refinement: two roles, a proposer (the policy) and a critic, for up to N turns.
//   turn 0: the proposer answers the prompt;
//   turn t: the critic reviews the current answer (with a sampled principle's critique request when a
//           constitution is given, else a general review request) and may reply "NO ISSUES"; otherwise the
//           proposer, who sees the whole conversation so far (its answers, the critiques as user turns), gives
//           an improved answer.
// A row stops early when its critic says the stop phrase (converged). The output row holds the final answer as
// `completion` (so the file is also SFT data) and the full transcript.

import path from 'node:path';
import { AlignkitError } from '../tensor/errors.ts';
import type { ChatMessage } from '../tokenizer/index.ts';
import { fillTemplate, loadConstitution, PrincipleSampler, type Constitution } from './constitution.ts';
import { deriveSeed, LocalChatModel, openChatModel, type ChatModel, type ChatSampling, type EndpointChatOptions } from './chat.ts';
import { readRows, writeJsonl } from './io.ts';
import { resolveSampling, type CaiSamplingOptions } from './revise.ts';

export const DEFAULT_STOP_PHRASE = 'NO ISSUES';

export const DEFAULT_CRITIC_TEMPLATE = 'Question: {prompt}\n\nProposed answer: {response}\n\nYou are the critic. Point out the mistakes and weaknesses of the proposed answer.';

export const DEFAULT_FOLLOWUP_TEMPLATE = 'A critic reviewed your answer:\n{critique}\n\nGive an improved answer to the original question.';

export interface DebateTurn {
  turn: number;
  role: 'proposer' | 'critic';
  content: string;
  /** The principle the critic applied (with a constitution). */
  principle?: string;
}

export interface DebateResult {
  index: number;
  prompt: string;
  /** The proposer's last non-empty answer. */
  final: string;
  /** Critic turns taken. */
  turns: number;
  /** The critic said the stop phrase. */
  converged: boolean;
  transcript: DebateTurn[];
}

export interface DebateRun {
  proposer: ChatModel;
  /** Default: the proposer plays the critic too. */
  critic?: ChatModel;
  prompts: readonly string[];
  /** Critic turns at most (>= 1). */
  turns: number;
  seed: number;
  sampling: ChatSampling;
  constitution?: Constitution;
  stopPhrase?: string;
}

/** Runs the debate for every prompt, rows advancing together turn by turn. */
export async function runDebate(r: DebateRun): Promise<DebateResult[]> {
  if (!Number.isInteger(r.turns) || r.turns < 1) throw new AlignkitError(`cai debate: turns must be an integer >= 1, got ${r.turns}`);
  const critic = r.critic ?? r.proposer;
  const stop = r.stopPhrase ?? DEFAULT_STOP_PHRASE;
  const sampler = r.constitution ? new PrincipleSampler(r.constitution, r.seed) : null;
  const first = await r.proposer.chat(r.prompts.map((p, i) => ({ messages: [{ role: 'user', content: p }], seed: deriveSeed(r.seed, i, 0, 0) })), r.sampling);
  const rows = r.prompts.map((prompt, index) => ({
    res: { index, prompt, final: first[index], turns: 0, converged: false, transcript: [{ turn: 0, role: 'proposer', content: first[index] }] } as DebateResult,
    history: [{ role: 'user', content: prompt }, { role: 'assistant', content: first[index] }] as ChatMessage[],
  }));
  for (let turn = 1; turn <= r.turns; turn++) {
    const active = rows.filter((x) => !x.res.converged);
    if (active.length === 0) break;
    const principles = active.map(() => sampler?.next() ?? null);
    const requests = active.map((x, k) => {
      const tpl = principles[k]?.critiqueRequest ?? DEFAULT_CRITIC_TEMPLATE;
      return `${fillTemplate(tpl, { prompt: x.res.prompt, response: x.res.final })}\nIf the answer needs no changes, reply exactly: ${stop}`;
    });
    const critiques = await critic.chat(requests.map((c, k) => ({ messages: [{ role: 'user', content: c }], seed: deriveSeed(r.seed, active[k].res.index, turn, 1) })), r.sampling);
    const go: number[] = [];
    active.forEach((x, k) => {
      x.res.turns = turn;
      x.res.transcript.push({ turn, role: 'critic', content: critiques[k], ...(principles[k] ? { principle: principles[k].name } : {}) });
      if (critiques[k].trim().toUpperCase().startsWith(stop.toUpperCase())) x.res.converged = true;
      else {
        x.history.push({ role: 'user', content: fillTemplate(DEFAULT_FOLLOWUP_TEMPLATE, { critique: critiques[k] }) });
        go.push(k);
      }
    });
    const answers = await r.proposer.chat(go.map((k) => ({ messages: active[k].history, seed: deriveSeed(r.seed, active[k].res.index, turn, 2) })), r.sampling);
    go.forEach((k, j) => {
      const x = active[k];
      x.history.push({ role: 'assistant', content: answers[j] });
      x.res.transcript.push({ turn, role: 'proposer', content: answers[j] });
      if (answers[j].trim() !== '') x.res.final = answers[j];
    });
  }
  return rows.map((x) => x.res);
}

export interface CaiDebateOptions extends CaiSamplingOptions {
  /** The proposer: a model folder. */
  model: string;
  /** The critic: a model folder or an OpenAI-compatible URL; default the proposer. */
  critic?: string;
  criticEndpoint?: EndpointChatOptions;
  prompts: string;
  /** JSONL: {prompt, completion (the final answer), turns, converged, transcript}. */
  output: string;
  /** Critic turns at most. Default 2. */
  turns?: number;
  /** Critique with the principles of this constitution (sampled per turn). */
  constitution?: string;
  stopPhrase?: string;
  seed?: number;
}

export interface CaiDebateResult {
  path: string;
  count: number;
  /** Rows whose critic said the stop phrase. */
  converged: number;
  meanTurns: number;
}

/** `alignkit cai debate`. */
export async function caiDebate(o: CaiDebateOptions): Promise<CaiDebateResult> {
  const constitution = o.constitution !== undefined ? loadConstitution(o.constitution) : undefined;
  const prompts = await readRows(o.prompts);
  const turns = o.turns ?? 2;
  if (!Number.isInteger(turns) || turns < 1) throw new AlignkitError(`cai debate: turns must be an integer >= 1, got ${turns}`);
  const critic = o.critic !== undefined && path.resolve(o.critic) !== path.resolve(o.model) ? await openChatModel(o.critic, o.criticEndpoint) : undefined;
  let proposer: ChatModel | undefined;
  try {
    proposer = LocalChatModel.load(o.model);
    const res = await runDebate({ proposer, critic, prompts: prompts.map((p) => p.prompt), turns, seed: o.seed ?? 0, sampling: resolveSampling(o), constitution, stopPhrase: o.stopPhrase });
    writeJsonl(o.output, res.map((d, i) => ({ prompt: d.prompt, completion: d.final, turns: d.turns, converged: d.converged, transcript: d.transcript, line: prompts[i].line })));
    return { path: path.resolve(o.output), count: res.length, converged: res.filter((d) => d.converged).length, meanTurns: res.reduce((s, d) => s + d.turns, 0) / res.length };
  } finally {
    proposer?.dispose();
    critic?.dispose();
  }
}
