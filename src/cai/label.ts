// AI feedback (RLAIF): a judge compares two responses to a prompt under a sampled principle and the more
// constitutional one becomes `chosen`. The output is preference JSONL ({prompt, chosen, rejected}) that the DPO
// and reward-model loaders read, with per-row metadata: the principle, the order the responses were shown in,
// the judge's probability that the first input response is better, and the confidence (the probability of the
// chosen one, in [0.5, 1]).
//
// Position bias: judges favour a position. Each pair is shown as (a, b) or (b, a) at random (seeded), so the
// bias averages out over the dataset; `order` records which.
// Confidence: a local judge gives σ(log p("A") − log p("B")) from its next-token log-probs; an endpoint gives its
// parsed answer (confidence 1) or, when it returns top logprobs, their normalised ratio. A 'tie' answer drops the
// pair (counted).

import path from 'node:path';
import { Xoshiro128 } from '../data/loader.ts';
import { DataError, typeName } from '../data/errors.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { fillTemplate, loadConstitution, PrincipleSampler, type Constitution } from './constitution.ts';
import { deriveSeed, isUrl, LocalChatModel, openChatModel, type ChatModel, type ChatSampling, type EndpointChatOptions } from './chat.ts';
import { readRows, writeJsonl } from './io.ts';
import { resolveSampling, type CaiSamplingOptions } from './revise.ts';

export interface LabelItem {
  prompt: string;
  /** The two responses, in input order. */
  a: string;
  b: string;
}

export interface LabelledPair {
  prompt: string;
  chosen: string;
  rejected: string;
  principle: string;
  /** 'ab': the judge saw a as response A; 'ba': b as response A. */
  order: 'ab' | 'ba';
  /** The judge's probability that input response a is the better one. */
  pA: number;
  /** The probability of the chosen response (>= 0.5). */
  confidence: number;
  source: 'logprobs' | 'answer';
}

export interface LabelRun {
  judge: ChatModel;
  items: readonly LabelItem[];
  constitution: Constitution;
  seed: number;
}

export interface LabelOutcome {
  pairs: (LabelledPair & { index: number })[];
  /** Items whose two responses are identical (nothing to compare). */
  identical: number;
  /** Items the judge called a tie. */
  ties: number;
}

/** Judges every item (see the file comment). Principles and orders come from two seeded streams, item by item. */
export async function labelPairs(r: LabelRun): Promise<LabelOutcome> {
  const sampler = new PrincipleSampler(r.constitution, r.seed);
  const orderRng = Xoshiro128.fromSeed([r.seed, 0x0ab]);
  const plan = r.items.map((it) => {
    const principle = sampler.next();
    const swap = (orderRng.next() & 1) === 1;
    const [first, second] = swap ? [it.b, it.a] : [it.a, it.b];
    const question = fillTemplate(r.constitution.judgeTemplate, { prompt: it.prompt, response_a: first, response_b: second, principle: principle.description });
    return { principle, swap, question };
  });
  const todo = r.items.map((it, i) => i).filter((i) => r.items[i].a !== r.items[i].b);
  const choices = await r.judge.choose(todo.map((i) => [{ role: 'user', content: plan[i].question }]), ['A', 'B']);
  const out: LabelOutcome = { pairs: [], identical: r.items.length - todo.length, ties: 0 };
  todo.forEach((i, k) => {
    const c = choices[k];
    if (c.source === 'tie') {
      out.ties++;
      return;
    }
    const it = r.items[i];
    const pA = plan[i].swap ? 1 - c.pFirst : c.pFirst;
    const aWins = pA >= 0.5;
    out.pairs.push({
      index: i, prompt: it.prompt, chosen: aWins ? it.a : it.b, rejected: aWins ? it.b : it.a, principle: plan[i].principle.name,
      order: plan[i].swap ? 'ba' : 'ab', pA, confidence: aWins ? pA : 1 - pA, source: c.source,
    });
  });
  return out;
}

/** A labelled pair as a preference row: conversational for chat models, plain strings otherwise. */
export function preferenceRow(p: LabelledPair, chatFormat: boolean): Record<string, unknown> {
  const meta = { principle: p.principle, order: p.order, p_a: p.pA, confidence: p.confidence, confidence_source: p.source };
  return chatFormat
    ? { prompt: [{ role: 'user', content: p.prompt }], chosen: [{ role: 'assistant', content: p.chosen }], rejected: [{ role: 'assistant', content: p.rejected }], ...meta }
    : { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, ...meta };
}

export interface CaiLabelOptions extends CaiSamplingOptions {
  /** A local judge model folder (also generates missing responses unless `policy` is given). */
  model?: string;
  /** An OpenAI-compatible judge endpoint URL (instead of `model`). */
  judge?: string;
  judgeEndpoint?: EndpointChatOptions;
  /** Model folder that samples two responses for rows without `responses`; default `model`. */
  policy?: string;
  /** JSONL rows {prompt, responses: [a, b]}, or {prompt} to sample two responses. */
  input: string;
  /** Preference JSONL to write. */
  output: string;
  constitution?: string;
  seed?: number;
  /** Write conversational rows (messages) or plain strings; default: conversational when the judge/policy has a chat template or is an endpoint. */
  chatFormat?: boolean;
}

export interface CaiLabelResult {
  path: string;
  /** Preference rows written. */
  count: number;
  /** Mean confidence of the written rows (NaN when none). */
  meanConfidence: number;
  ties: number;
  identical: number;
}

function responsesOf(file: string, line: number, row: Record<string, unknown>): [string, string] | null {
  const v = row.responses;
  if (v === undefined || v === null) return null;
  if (!Array.isArray(v) || v.length !== 2) throw new DataError(file, line, 'responses', `expected a list of exactly two responses, got ${Array.isArray(v) ? `${v.length} entries` : typeName(v)}`);
  v.forEach((x, k) => {
    if (typeof x !== 'string') throw new DataError(file, line, `responses[${k}]`, `expected a string, got ${typeName(x)}`);
  });
  return [v[0] as string, v[1] as string];
}

/** `alignkit cai label`: reads and checks everything, probes an endpoint judge, then samples missing responses and judges. */
export async function caiLabel(o: CaiLabelOptions): Promise<CaiLabelResult> {
  if ((o.model === undefined) === (o.judge === undefined)) throw new AlignkitError('cai label: give a judge: --model DIR (a local model) or --judge URL (an OpenAI-compatible endpoint), not both');
  if (o.judge !== undefined && !isUrl(o.judge)) throw new AlignkitError(`cai label: --judge expects an http(s):// URL, got ${JSON.stringify(o.judge)} (use --model for a model folder)`);
  const constitution = loadConstitution(o.constitution);
  const rows = await readRows(o.input, 'input');
  const given = rows.map((r) => responsesOf(o.input, r.line, r.row));
  const policyDir = o.policy ?? o.model;
  const missing = given.findIndex((g) => g === null);
  if (missing >= 0 && policyDir === undefined)
    throw new DataError(o.input, rows[missing].line, 'responses', 'missing, and there is no model to sample them: add responses [a, b] or give --policy DIR');
  const seed = o.seed ?? 0;
  const judge = o.judge !== undefined ? await openChatModel(o.judge, o.judgeEndpoint) : LocalChatModel.load(o.model as string);
  let policy: ChatModel | undefined;
  try {
    const sampling: ChatSampling = resolveSampling(o);
    const items: LabelItem[] = [];
    if (missing >= 0) policy = policyDir === o.model && judge instanceof LocalChatModel ? judge : LocalChatModel.load(policyDir as string);
    const need = rows.map((_, i) => i).filter((i) => given[i] === null);
    const sampled = policy
      ? await policy.chat(need.flatMap((i) => [0, 1].map((k) => ({ messages: [{ role: 'user' as const, content: rows[i].prompt }], seed: deriveSeed(seed, i, k) }))), sampling)
      : [];
    const at = new Map(need.map((i, k) => [i, [sampled[2 * k], sampled[2 * k + 1]] as [string, string]]));
    rows.forEach((r, i) => {
      const [a, b] = given[i] ?? (at.get(i) as [string, string]);
      items.push({ prompt: r.prompt, a, b });
    });
    const res = await labelPairs({ judge, items, constitution, seed });
    const chatFormat = o.chatFormat ?? (judge.chatFormat && (policy?.chatFormat ?? true));
    writeJsonl(o.output, res.pairs.map((p) => ({ ...preferenceRow(p, chatFormat), line: rows[p.index].line })));
    const meanConfidence = res.pairs.length ? res.pairs.reduce((s, p) => s + p.confidence, 0) / res.pairs.length : Number.NaN;
    return { path: path.resolve(o.output), count: res.pairs.length, meanConfidence, ties: res.ties, identical: res.identical };
  } finally {
    if (policy && policy !== judge) policy.dispose();
    judge.dispose();
  }
}
