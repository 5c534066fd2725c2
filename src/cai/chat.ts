// The models Constitutional AI talks to: a policy that answers and revises, a critic, a judge. Each is a
// ChatModel — a local model folder (src/models + src/generate) or an OpenAI-compatible chat endpoint (llama.cpp
// server, ollama, vLLM: POST {base}/v1/chat/completions) — so the CAI loops never care which one they hold, and
// tests can hand them a scripted stand-in.
//
// Endpoints: every request has a timeout; connection errors, timeouts and HTTP 5xx are retried with exponential
// backoff, then stop the run with an error naming the URL (a half-critiqued dataset is worse than none). An
// endpoint is probed with a one-token request when it is opened, so an unreachable server is reported before any
// generation starts.
//
// Judging: `choose` asks a two-way question (A or B, Yes or No) and returns the probability of the first option.
// A local model gives it from its own log-probs: p = σ(log p(option 1 | prompt) − log p(option 2 | prompt)),
// through the same scoring code as the trainers (completionLogprobs). An endpoint gives the parsed answer
// (probability 1 or 0), or the normalised top-logprobs of the first answer token when the server returns them.

import { completionLogprobs, generate, rowSeed, type SamplingOptions } from '../generate/index.ts';
import { loadModel, type PretrainedLM } from '../models/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { chatCompletionsUrl } from '../io/endpoint.ts';
import { applyChatTemplate, encodeChatText, loadChatTemplate, loadTokenizer, type ChatMessage, type ChatTemplate, type Tokenizer } from '../tokenizer/index.ts';

export interface ChatRequest {
  messages: ChatMessage[];
  /** Seed of this request's sampling (a safe integer). */
  seed: number;
}

export interface ChatSampling extends SamplingOptions {
  /** Tokens generated at most per reply. */
  maxNewTokens: number;
}

/** How a two-way question was answered. */
export interface Choice {
  /** Probability of the first option (in [0, 1]). */
  pFirst: number;
  /** 'logprobs': from the model's log-probs; 'answer': parsed from a reply (0 or 1); 'tie': the reply said tie. */
  source: 'logprobs' | 'answer' | 'tie';
  /** The judge's raw reply (endpoints only). */
  reply?: string;
}

export interface ChatModel {
  /** For traces and messages: the folder or URL. */
  readonly name: string;
  /** True when the model renders conversations with a chat template (or is an endpoint). */
  readonly chatFormat: boolean;
  /** One reply per request, in order. */
  chat(requests: readonly ChatRequest[], sampling: ChatSampling): Promise<string[]>;
  /** For each conversation: the probability that the next reply is options[0] rather than options[1]. */
  choose(conversations: readonly ChatMessage[][], options: readonly [string, string]): Promise<Choice[]>;
  dispose(): void;
}

/** A seed for (base seed, path of indices): distinct, repeatable streams per prompt, round and role. */
export function deriveSeed(seed: number, ...path: number[]): number {
  let s = seed;
  for (const p of path) s = rowSeed(s, p);
  return s;
}

// ------------------------------------------------------------------------------------------------ local model

export class LocalChatModel implements ChatModel {
  readonly chatFormat: boolean;
  /** Rows per generate()/scoring call. */
  batchSize = 16;

  constructor(
    readonly name: string,
    readonly model: PretrainedLM,
    readonly tokenizer: Tokenizer,
    readonly template: ChatTemplate | null,
  ) {
    this.chatFormat = template !== null;
  }

  static load(dir: string): LocalChatModel {
    const tokenizer = loadTokenizer(dir, { requireConfig: false });
    const template = loadChatTemplate(dir);
    const model = loadModel(dir, { trainable: false });
    return new LocalChatModel(dir, model, tokenizer, template);
  }

  /**
   * A conversation as the token ids the model continues: through its chat template with the assistant header,
   * or, without a template, the turns as plain "User: … / Assistant: …" text ending with "Assistant:".
   */
  encode(messages: readonly ChatMessage[]): number[] {
    if (this.template) {
      const text = applyChatTemplate(this.template, messages, { addGenerationPrompt: true, bosToken: this.tokenizer.bosToken, eosToken: this.tokenizer.eosToken });
      return encodeChatText(this.tokenizer, text).ids;
    }
    if (messages.length === 1 && messages[0].role === 'user') return this.tokenizer.encode(String(messages[0].content));
    const label = (r: string) => (r === 'assistant' ? 'Assistant' : r === 'system' ? 'System' : 'User');
    return this.tokenizer.encode(`${messages.map((m) => `${label(m.role)}: ${String(m.content)}`).join('\n\n')}\n\nAssistant:`);
  }

  private checkFits(ids: readonly number[], extra: number, what: string): void {
    const limit = this.model.config.maxPositions;
    if (ids.length === 0) throw new AlignkitError(`${this.name}: ${what} is empty after tokenization`);
    if (ids.length + extra > limit)
      throw new AlignkitError(`${this.name}: ${what} has ${ids.length} tokens; with ${extra} more it exceeds the model's ${limit} positions (shorten the prompts or templates, or lower --max-new-tokens)`);
  }

  async chat(requests: readonly ChatRequest[], s: ChatSampling): Promise<string[]> {
    if (!Number.isInteger(s.maxNewTokens) || s.maxNewTokens < 1) throw new AlignkitError(`max new tokens must be an integer >= 1, got ${s.maxNewTokens}`);
    const out: string[] = [];
    const decode = (ids: readonly number[]) => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    for (let i = 0; i < requests.length; i += this.batchSize) {
      const part = requests.slice(i, i + this.batchSize);
      const ids = part.map((r, k) => {
        const e = this.encode(r.messages);
        this.checkFits(e, s.maxNewTokens, `request ${i + k + 1}`);
        return e;
      });
      const gens = generate(this.model, {
        inputIds: ids,
        seed: part.map((r) => r.seed),
        maxNewTokens: s.maxNewTokens,
        temperature: s.temperature, topK: s.topK, topP: s.topP, minP: s.minP, repetitionPenalty: s.repetitionPenalty,
        stopTokenIds: this.tokenizer.stopIds.length ? this.tokenizer.stopIds : undefined,
      });
      for (const g of gens) out.push(decode(g.ids).trim());
      await new Promise((r) => setImmediate(r)); // generate() is synchronous: let timers and I/O run between batches
    }
    return out;
  }

  /** log p(option | conversation) for each conversation and option: the option's tokens summed. */
  optionLogprobs(conversations: readonly ChatMessage[][], options: readonly string[]): number[][] {
    const optIds = options.map((o) => {
      const ids = this.tokenizer.encode(o, { addSpecialTokens: false });
      if (ids.length === 0) throw new AlignkitError(`${this.name}: the answer option ${JSON.stringify(o)} is empty after tokenization`);
      return ids;
    });
    const out: number[][] = [];
    const per = Math.max(1, Math.floor(this.batchSize / options.length));
    for (let i = 0; i < conversations.length; i += per) {
      const part = conversations.slice(i, i + per).map((c, k) => {
        const e = this.encode(c);
        this.checkFits(e, Math.max(...optIds.map((o) => o.length)), `judge prompt ${i + k + 1}`);
        return e;
      });
      const prompts = part.flatMap((p) => optIds.map(() => p));
      const completions = part.flatMap(() => optIds);
      const lp = completionLogprobs(this.model, prompts, completions, { padTokenId: this.tokenizer.padId ?? undefined });
      part.forEach((_, k) => out.push(optIds.map((_o, j) => lp[k * optIds.length + j].reduce((a, b) => a + b, 0))));
    }
    return out;
  }

  async choose(conversations: readonly ChatMessage[][], options: readonly [string, string]): Promise<Choice[]> {
    return this.optionLogprobs(conversations, options).map(([a, b]) => ({ pFirst: 1 / (1 + Math.exp(b - a)), source: 'logprobs' as const }));
  }

  dispose(): void {
    this.model.dispose();
  }
}

// ------------------------------------------------------------------------------------------------ endpoint

export interface EndpointChatOptions {
  /** The model name sent in requests. Default 'default' (llama.cpp ignores it; ollama/vLLM need the real one). */
  model?: string;
  /** Sent as "Authorization: Bearer KEY". */
  apiKey?: string;
  /** Milliseconds per request. Default 60 000. */
  timeoutMs?: number;
  /** Retries after a network error, timeout or HTTP 5xx. Default 2. */
  retries?: number;
  /** First backoff in ms, doubled per retry. Default 500. */
  backoffMs?: number;
  /** Requests in flight at once. Default 4. */
  concurrency?: number;
}

export { chatCompletionsUrl } from '../io/endpoint.ts';

/** The endpoint could not be reached or answered with an error. */
export class ChatEndpointError extends AlignkitError {}

interface CompletionBody {
  choices?: { message?: { content?: unknown }; logprobs?: { content?: { token?: string; top_logprobs?: { token?: string; logprob?: number }[] }[] } }[];
}

/** Parses a judge's reply to a two-way question: the first option word it starts with, or 'tie'. */
export function parseChoice(reply: string, options: readonly [string, string]): 0 | 1 | 'tie' | null {
  const t = reply.trim().replace(/^[\s*_"'`(\[]+/, '').replace(/^(response|answer|option)\s*[:(]?\s*/i, '');
  for (const [k, o] of options.entries()) if (new RegExp(`^${o.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9])`, 'i').test(t)) return k as 0 | 1;
  if (/^tie\b/i.test(t)) return 'tie';
  return null;
}

export class EndpointChatModel implements ChatModel {
  readonly url: string;
  readonly chatFormat = true;
  private readonly o: Required<Omit<EndpointChatOptions, 'apiKey'>> & { apiKey?: string };

  constructor(
    readonly name: string,
    o: EndpointChatOptions = {},
  ) {
    this.url = chatCompletionsUrl(name);
    this.o = { model: o.model ?? 'default', timeoutMs: o.timeoutMs ?? 60_000, retries: o.retries ?? 2, backoffMs: o.backoffMs ?? 500, concurrency: Math.max(1, o.concurrency ?? 4), apiKey: o.apiKey };
  }

  /** Opens an endpoint and checks that it answers a one-token request (before any work starts). */
  static async open(url: string, o: EndpointChatOptions = {}): Promise<EndpointChatModel> {
    const m = new EndpointChatModel(url, o);
    await m.probe();
    return m;
  }

  async probe(): Promise<void> {
    const body = await this.post({ messages: [{ role: 'user', content: 'Reply with OK.' }], max_tokens: 1, temperature: 0 }, 'probe');
    if (!Array.isArray(body.choices)) throw new ChatEndpointError(`chat endpoint ${this.url} answered the probe without a 'choices' list: is it an OpenAI-compatible /v1/chat/completions server?`);
  }

  private async post(payload: Record<string, unknown>, what: string): Promise<CompletionBody> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.o.apiKey) headers.authorization = `Bearer ${this.o.apiKey}`;
    let last = '';
    for (let attempt = 0; attempt <= this.o.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, this.o.backoffMs * 2 ** (attempt - 1)));
      let res: Response;
      let text: string;
      try {
        res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify({ model: this.o.model, ...payload }), signal: AbortSignal.timeout(this.o.timeoutMs) });
        text = await res.text();
      } catch (e) {
        const err = e as Error & { cause?: { code?: string; message?: string } };
        last = err.name === 'TimeoutError' || err.name === 'AbortError' ? `timed out after ${this.o.timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
        continue;
      }
      if (res.status >= 500) {
        last = `HTTP ${res.status} ${text.slice(0, 120)}`.trim();
        continue;
      }
      if (!res.ok) throw new ChatEndpointError(`chat endpoint ${this.url} (${what}): HTTP ${res.status} ${text.replace(/\s+/g, ' ').slice(0, 200)}`.trim());
      try {
        return JSON.parse(text) as CompletionBody;
      } catch {
        throw new ChatEndpointError(`chat endpoint ${this.url} (${what}): the answer is not JSON: ${JSON.stringify(text.slice(0, 80))}`);
      }
    }
    throw new ChatEndpointError(`chat endpoint ${this.url} is unreachable (${what}): ${this.o.retries + 1} attempt(s) failed, the last with: ${last}`);
  }

  private async pool<T, R>(items: readonly T[], fn: (t: T) => Promise<R>): Promise<R[]> {
    const out: R[] = new Array(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, items.length) }, worker));
    return out;
  }

  private static content(body: CompletionBody, url: string): string {
    const c = body.choices?.[0]?.message?.content;
    if (typeof c !== 'string') throw new ChatEndpointError(`chat endpoint ${url}: the answer has no choices[0].message.content string`);
    return c;
  }

  async chat(requests: readonly ChatRequest[], s: ChatSampling): Promise<string[]> {
    return this.pool(requests, async (r) => {
      const payload: Record<string, unknown> = { messages: r.messages, max_tokens: s.maxNewTokens, temperature: s.temperature ?? 1, top_p: s.topP ?? 1, seed: r.seed, n: 1 };
      if ((s.topK ?? 0) > 0) payload.top_k = s.topK;
      return EndpointChatModel.content(await this.post(payload, 'chat'), this.url).trim();
    });
  }

  /** Servers that refuse the logprobs parameters (HTTP 4xx) are asked again without them, and from then on. */
  private logprobsRefused = false;

  private async judgeRequest(messages: ChatMessage[]): Promise<CompletionBody> {
    const plain = { messages, max_tokens: 8, temperature: 0 };
    if (!this.logprobsRefused) {
      try {
        return await this.post({ ...plain, logprobs: true, top_logprobs: 10 }, 'judge');
      } catch (e) {
        if (!(e instanceof ChatEndpointError && /: HTTP 4\d\d/.test(e.message))) throw e;
        this.logprobsRefused = true;
      }
    }
    return this.post(plain, 'judge');
  }

  async choose(conversations: readonly ChatMessage[][], options: readonly [string, string]): Promise<Choice[]> {
    return this.pool(conversations, async (messages) => {
      const body = await this.judgeRequest(messages);
      const reply = EndpointChatModel.content(body, this.url);
      const parsed = parseChoice(reply, options);
      if (parsed === null) throw new ChatEndpointError(`chat endpoint ${this.url}: the judge should answer ${options[0]} or ${options[1]}, got ${JSON.stringify(reply.slice(0, 60))}`);
      if (parsed === 'tie') return { pFirst: 0.5, source: 'tie', reply };
      // With top logprobs of the first answer token, the confidence is their normalised ratio.
      const top = body.choices?.[0]?.logprobs?.content?.[0]?.top_logprobs;
      if (Array.isArray(top)) {
        const lp = options.map((o) => top.find((t) => typeof t.token === 'string' && t.token.trim().toLowerCase() === o.toLowerCase())?.logprob);
        if (typeof lp[0] === 'number' && typeof lp[1] === 'number') return { pFirst: 1 / (1 + Math.exp(lp[1] - lp[0])), source: 'logprobs', reply };
      }
      return { pFirst: parsed === 0 ? 1 : 0, source: 'answer', reply };
    });
  }

  dispose(): void {}
}

// ------------------------------------------------------------------------------------------------ opening

export const isUrl = (spec: string): boolean => /^https?:\/\//i.test(spec);

/** A model folder or an http(s) URL (probed before returning). */
export async function openChatModel(spec: string, o: EndpointChatOptions = {}): Promise<ChatModel> {
  return isUrl(spec) ? EndpointChatModel.open(spec, o) : LocalChatModel.load(spec);
}
