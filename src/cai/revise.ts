// Critique → revision (Constitutional AI's supervised stage): for every prompt the policy answers; then, for each
// of `rounds` rounds, a principle is sampled (weighted, seeded), the critic critiques the current answer with the
// principle's critique request, and the policy rewrites it with the revision request. The final revisions become
// an SFT dataset; every intermediate text goes to a trace.
//
// Batching and order: all prompts advance together, stage by stage (answers, then round 1 critiques, round 1
// revisions, round 2 ...), so a local model generates a whole stage in a few batched calls. Principles are drawn
// round by round, prompt by prompt in file order, from one PrincipleSampler(seed) stream. Every generation has
// its own seed derived from (seed, prompt index, round, role), so a prompt's texts do not depend on the others.
//
// An empty revision (a model that stops at once) keeps the previous answer (recorded as `kept_previous` in the
// trace); a prompt whose final answer is empty is left out of the SFT data (counted as `skipped`).
//
// Outputs in outputDir: sft.jsonl (chat models: {messages: [user, assistant]}; plain models: {prompt,
// completion}), pairs.jsonl (the final revision as chosen over the first answer, for DPO or a reward model),
// trace.jsonl (one object per prompt with every round) and summary.json.

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError } from '../tensor/errors.ts';
import { loadConstitution, fillTemplate, PrincipleSampler, type Constitution } from './constitution.ts';
import { deriveSeed, LocalChatModel, openChatModel, type ChatModel, type ChatSampling, type EndpointChatOptions } from './chat.ts';
import { readRows, writeJson, writeJsonl } from './io.ts';

export interface RevisionRound {
  round: number;
  principle: string;
  critique_request: string;
  critique: string;
  revision_request: string;
  revision: string;
  /** The revision was empty, so the previous answer was kept. */
  kept_previous: boolean;
}

export interface RevisionTrace {
  index: number;
  prompt: string;
  initial_response: string;
  rounds: RevisionRound[];
  final_response: string;
}

export interface RevisionRun {
  policy: ChatModel;
  /** The critic; the policy itself when absent. */
  critic?: ChatModel;
  prompts: readonly string[];
  constitution: Constitution;
  rounds: number;
  seed: number;
  sampling: ChatSampling;
  /** Called after each stage (progress). */
  onStage?: (stage: string) => void;
}

/** Runs the critique → revision loop in memory (see the file comment). */
export async function runRevision(r: RevisionRun): Promise<RevisionTrace[]> {
  if (!Number.isInteger(r.rounds) || r.rounds < 1) throw new AlignkitError(`cai revise: rounds must be an integer >= 1, got ${r.rounds}`);
  const critic = r.critic ?? r.policy;
  const sampler = new PrincipleSampler(r.constitution, r.seed);
  const initial = await r.policy.chat(r.prompts.map((p, i) => ({ messages: [{ role: 'user', content: p }], seed: deriveSeed(r.seed, i, 0, 0) })), r.sampling);
  r.onStage?.('answers');
  const traces: RevisionTrace[] = r.prompts.map((prompt, index) => ({ index, prompt, initial_response: initial[index], rounds: [], final_response: initial[index] }));
  for (let round = 1; round <= r.rounds; round++) {
    const principles = traces.map(() => sampler.next());
    const critiqueRequests = traces.map((t, i) => fillTemplate(principles[i].critiqueRequest, { prompt: t.prompt, response: t.final_response }));
    const critiques = await critic.chat(critiqueRequests.map((c, i) => ({ messages: [{ role: 'user', content: c }], seed: deriveSeed(r.seed, i, round, 1) })), r.sampling);
    r.onStage?.(`round ${round} critiques`);
    const revisionRequests = traces.map((t, i) => fillTemplate(principles[i].revisionRequest, { prompt: t.prompt, response: t.final_response, critique: critiques[i] }));
    const revisions = await r.policy.chat(revisionRequests.map((c, i) => ({ messages: [{ role: 'user', content: c }], seed: deriveSeed(r.seed, i, round, 2) })), r.sampling);
    r.onStage?.(`round ${round} revisions`);
    traces.forEach((t, i) => {
      const kept = revisions[i].trim() === '';
      t.rounds.push({ round, principle: principles[i].name, critique_request: critiqueRequests[i], critique: critiques[i], revision_request: revisionRequests[i], revision: revisions[i], kept_previous: kept });
      if (!kept) t.final_response = revisions[i];
    });
  }
  return traces;
}

/** SFT rows of the traces: chat format ({messages}) or {prompt, completion}; empty finals are left out. */
export function sftRows(traces: readonly RevisionTrace[], chatFormat: boolean): Record<string, unknown>[] {
  return traces
    .filter((t) => t.final_response.trim() !== '')
    .map((t) => (chatFormat ? { messages: [{ role: 'user', content: t.prompt }, { role: 'assistant', content: t.final_response }] } : { prompt: t.prompt, completion: t.final_response }));
}

/** Preference rows: the final revision chosen over the first answer (when both are non-empty and differ). */
export function revisionPairs(traces: readonly RevisionTrace[], chatFormat: boolean): Record<string, unknown>[] {
  return traces
    .filter((t) => t.final_response.trim() !== '' && t.initial_response.trim() !== '' && t.final_response !== t.initial_response)
    .map((t) =>
      chatFormat
        ? { prompt: [{ role: 'user', content: t.prompt }], chosen: [{ role: 'assistant', content: t.final_response }], rejected: [{ role: 'assistant', content: t.initial_response }] }
        : { prompt: t.prompt, chosen: t.final_response, rejected: t.initial_response },
    );
}

export interface CaiSamplingOptions {
  /** Tokens per generated text. Default 128. */
  maxNewTokens?: number;
  /** Default 0.7 (0 = greedy). */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
}

export interface CaiReviseOptions extends CaiSamplingOptions {
  /** The policy: a model folder. */
  model: string;
  /** Prompts: .jsonl/.json/.parquet with a 'prompt' string per row, or .txt (one per line). */
  prompts: string;
  /** Constitution YAML. Default: data/cai/default_constitution.yaml. */
  constitution?: string;
  outputDir: string;
  /** Critique → revision rounds. Default 1. */
  rounds?: number;
  /** The critic: a model folder or an OpenAI-compatible URL; default the policy. */
  critic?: string;
  /** Options of an endpoint critic (model name, timeout, retries). */
  criticEndpoint?: EndpointChatOptions;
  /** Default 0. */
  seed?: number;
  onStage?: (stage: string) => void;
}

export interface CaiReviseResult {
  /** SFT dataset of (prompt, final revision). */
  sftPath: string;
  /** One object per prompt with every critique and revision. */
  tracePath: string;
  /** Preference pairs: final revision chosen over the first answer. */
  pairsPath: string;
  summaryPath: string;
  /** SFT rows written. */
  count: number;
  /** Prompts left out of the SFT data (empty final answer). */
  skipped: number;
  /** How often each principle was used. */
  principleCounts: Record<string, number>;
}

export function resolveSampling(o: CaiSamplingOptions): ChatSampling {
  return { maxNewTokens: o.maxNewTokens ?? 128, temperature: o.temperature ?? 0.7, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty };
}

/** `alignkit cai revise`: reads the inputs, checks the critic (a URL is probed) before any generation, runs, writes. */
export async function caiRevise(o: CaiReviseOptions): Promise<CaiReviseResult> {
  const constitution = loadConstitution(o.constitution);
  const prompts = await readRows(o.prompts);
  const rounds = o.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1) throw new AlignkitError(`cai revise: rounds must be an integer >= 1, got ${rounds}`);
  const seed = o.seed ?? 0;
  // The critic first: an unreachable endpoint must fail before the policy is even loaded.
  const critic = o.critic !== undefined && path.resolve(o.critic) !== path.resolve(o.model) ? await openChatModel(o.critic, o.criticEndpoint) : undefined;
  let policy: ChatModel | undefined;
  try {
    policy = LocalChatModel.load(o.model);
    const traces = await runRevision({ policy, critic, prompts: prompts.map((p) => p.prompt), constitution, rounds, seed, sampling: resolveSampling(o), onStage: o.onStage });
    fs.mkdirSync(o.outputDir, { recursive: true });
    const sftPath = path.join(o.outputDir, 'sft.jsonl');
    const tracePath = path.join(o.outputDir, 'trace.jsonl');
    const pairsPath = path.join(o.outputDir, 'pairs.jsonl');
    const summaryPath = path.join(o.outputDir, 'summary.json');
    const sft = sftRows(traces, policy.chatFormat);
    writeJsonl(sftPath, sft);
    writeJsonl(tracePath, traces.map((t, i) => ({ ...t, line: prompts[i].line })));
    writeJsonl(pairsPath, revisionPairs(traces, policy.chatFormat));
    const principleCounts: Record<string, number> = Object.fromEntries(constitution.principles.map((p) => [p.name, 0]));
    for (const t of traces) for (const r of t.rounds) principleCounts[r.principle]++;
    const summary = {
      model: o.model, critic: o.critic ?? o.model, prompts: o.prompts, constitution: constitution.file, rounds, seed,
      sampling: resolveSampling(o), count: sft.length, skipped: traces.length - sft.length, principle_counts: principleCounts,
    };
    writeJson(summaryPath, summary);
    return { sftPath, tracePath, pairsPath, summaryPath, count: sft.length, skipped: traces.length - sft.length, principleCounts };
  } finally {
    policy?.dispose();
    critic?.dispose();
  }
}
