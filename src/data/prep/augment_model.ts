// Model-based text augmentation: paraphrase and back-translation through a prompt template, and contextual
// word replacement with a causal language model.
//
// Text comes from a TextGenerator:
//   - LocalModelGenerator: any model folder alignkit can load (src/models loadModel, src/generate generate),
//     prompts tokenized with the folder's tokenizer (optionally wrapped in its chat template as one user
//     turn), seeded sampling with the HF logits processors. Prompts of a batch run as one generate() call,
//     each with its own seed, so a prompt's output does not depend on which others share its batch.
//   - EndpointGenerator: an OpenAI-compatible chat endpoint (POST .../v1/chat/completions with fetch), one
//     user message per prompt, requests in parallel up to a concurrency limit. Every request has a timeout;
//     an HTTP error, a timeout, a refused connection or a malformed answer is returned as that prompt's
//     error (the caller reports it with the row and field), never thrown.
//
// Contextual augmentation (Kobayashi 2018 replaces words by sampling a bidirectional LM at their position;
// with a causal LM only the left context is available). For a chosen word at position i:
//   1. the prompt is the text before the word with its trailing whitespace removed (so a BPE tokenizer sees
//      the space as part of the next word, as in training), tokenized with the tokenizer's special tokens
//      (a model whose tokenizer adds BOS can therefore replace the first word; otherwise the first word of a
//      text, which has no left context, is never chosen);
//   2. K continuations of at most maxWordTokens tokens are sampled (seeded, one seed per candidate);
//   3. each continuation, with leading whitespace removed, proposes the word it starts with (WORD_PATTERN of
//      augment_text.ts); a proposal is accepted when it is a word, differs from the original (case-insensitive)
//      and is not a stop word;
//   4. the first accepted proposal in candidate order replaces the word (gaps untouched); when none is
//      accepted the word stays.
// Positions are processed left to right and each sees the replacements made before it.
import { chatCompletionsUrl as resolveChatUrl } from '../../io/endpoint.ts';
import { generate, rowSeed, type SamplingOptions } from '../../generate/index.ts';
import { loadModel, type PretrainedLM } from '../../models/index.ts';
import { applyChatTemplate, encodeChatText, loadChatTemplate, loadTokenizer, type ChatTemplate, type Tokenizer } from '../../tokenizer/index.ts';
import { edaCount, isStopWord, join, segment, wordKey, WORD_PATTERN } from './augment_text.ts';
import { PrepConfigError } from './errors.ts';
import { Rng } from './rng.ts';

export interface GenRequest {
  prompt: string;
  /** Seed of this prompt's sampling (a safe integer). */
  seed: number;
}

export type GenResult = { ok: true; text: string } | { ok: false; error: string };

export interface TextGenerator {
  /** 'model' or 'endpoint', and what to record in the augmentation params. */
  describe(): Record<string, unknown>;
  generate(requests: readonly GenRequest[]): Promise<GenResult[]>;
  close(): void;
}

/** Replaces every "{text}" in a template; a template without "{text}" is refused. */
export function renderTemplate(template: string, text: string): string {
  return template.split('{text}').join(text);
}

export function checkTemplate(template: string, flag: string): void {
  if (!template.includes('{text}')) throw new PrepConfigError(`${flag} must contain {text} (where the row's text goes), got ${JSON.stringify(template)}`);
}

/** Command-line escapes in a template: \n, \t, \\ (a shell passes "a\nb" as backslash + n). */
export function unescapeCli(s: string): string {
  return s.replace(/\\(n|t|r|\\)/g, (_m, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c === 'r' ? '\r' : '\\'));
}

/** Cuts text at the first stop string (the stop string and what follows go). */
export function cutAtStop(text: string, stops: readonly string[]): string {
  let end = text.length;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && i < end) end = i;
  }
  return text.slice(0, end);
}

// ------------------------------------------------------------------------------------------ local model

export interface LocalGenOptions extends SamplingOptions {
  /** Tokens generated at most per prompt. */
  maxNewTokens: number;
  /** The output is cut at the first of these (generation also stops there). */
  stop: readonly string[];
  /** Wrap the prompt in the model's chat template as one user turn, with the generation prompt. */
  chat: boolean;
  /** Trim whitespace around the output (paraphrases: yes; contextual continuations: no). */
  trim: boolean;
}

export class LocalModelGenerator implements TextGenerator {
  private readonly template: ChatTemplate | null;

  constructor(
    readonly model: PretrainedLM,
    readonly tokenizer: Tokenizer,
    readonly options: LocalGenOptions,
    readonly modelName: string,
    chatTemplate: ChatTemplate | null = null,
  ) {
    this.template = chatTemplate;
    if (options.chat && !chatTemplate) throw new PrepConfigError(`${modelName}: --chat needs a chat template in the model folder (tokenizer_config.json or chat_template.jinja)`);
    if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1) throw new PrepConfigError(`max new tokens must be an integer >= 1, got ${options.maxNewTokens}`);
  }

  /** Loads a model folder (weights, tokenizer, chat template). */
  static load(dir: string, options: LocalGenOptions): LocalModelGenerator {
    const tokenizer = loadTokenizer(dir, { requireConfig: false });
    const template = loadChatTemplate(dir);
    const model = loadModel(dir, { trainable: false });
    try {
      return new LocalModelGenerator(model, tokenizer, options, dir, template);
    } catch (e) {
      model.dispose();
      throw e;
    }
  }

  /** The same model with other generation options (contextual augmentation samples raw continuations). */
  withOptions(o: Partial<LocalGenOptions>): LocalModelGenerator {
    return new LocalModelGenerator(this.model, this.tokenizer, { ...this.options, ...o }, this.modelName, this.template);
  }

  describe(): Record<string, unknown> {
    const o = this.options;
    return { backend: 'model', model: this.modelName, max_new_tokens: o.maxNewTokens, temperature: o.temperature ?? 1, top_k: o.topK ?? 0, top_p: o.topP ?? 1, min_p: o.minP ?? 0, repetition_penalty: o.repetitionPenalty ?? 1, stop: o.stop, chat: o.chat };
  }

  /** Token ids of a prompt (through the chat template when chat is on). */
  encode(prompt: string): number[] {
    if (!this.options.chat) return this.tokenizer.encode(prompt);
    const text = applyChatTemplate(this.template!, [{ role: 'user', content: prompt }], { addGenerationPrompt: true, bosToken: this.tokenizer.bosToken, eosToken: this.tokenizer.eosToken });
    return encodeChatText(this.tokenizer, text).ids;
  }

  async generate(requests: readonly GenRequest[]): Promise<GenResult[]> {
    const o = this.options;
    const results: GenResult[] = requests.map(() => ({ ok: false, error: 'not generated' }));
    const batch: { i: number; ids: number[]; seed: number }[] = [];
    const limit = this.model.config.maxPositions;
    requests.forEach((r, i) => {
      const ids = this.encode(r.prompt);
      if (ids.length === 0) results[i] = { ok: false, error: 'the prompt is empty after tokenization (the model needs at least one token)' };
      else if (ids.length + o.maxNewTokens > limit) results[i] = { ok: false, error: `the prompt has ${ids.length} tokens; with ${o.maxNewTokens} new tokens that exceeds the model's ${limit} positions` };
      else batch.push({ i, ids, seed: r.seed });
    });
    if (batch.length === 0) return results;
    const decode = (ids: readonly number[]): string => this.tokenizer.decode(ids, { skipSpecialTokens: true });
    const out = generate(this.model, {
      inputIds: batch.map((b) => b.ids),
      seed: batch.map((b) => b.seed),
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, repetitionPenalty: o.repetitionPenalty,
      stopTokenIds: this.tokenizer.stopIds.length ? this.tokenizer.stopIds : undefined,
      ...(o.stop.length ? { stopStrings: o.stop, decode } : {}),
    });
    batch.forEach((b, k) => {
      let text = cutAtStop(decode(out[k].ids), o.stop);
      if (o.trim) text = text.trim();
      results[b.i] = { ok: true, text };
    });
    // Let other work (timers, I/O) run between batches: generate() is synchronous.
    await new Promise((r) => setImmediate(r));
    return results;
  }

  close(): void {
    this.model.dispose();
  }
}

// ---------------------------------------------------------------------------------------------- endpoint

export interface EndpointOptions {
  /** Base URL (http://host:8000, .../v1) or the full .../chat/completions URL. */
  url: string;
  /** The model name sent in the request. */
  model: string;
  /** Sent as "Authorization: Bearer KEY" when given. */
  apiKey?: string;
  /** Per request. */
  timeoutMs: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Sent only when > 0 (not an OpenAI parameter; vLLM and llama.cpp servers accept it). */
  topK: number;
  /** Sent as "stop" when not empty. */
  stop: readonly string[];
  /** Requests in flight at once. */
  concurrency: number;
  /** An optional system message before the prompt. */
  system?: string;
}

/** The chat-completions URL for a base URL (see io/endpoint.ts); a bad URL is a PrepConfigError naming --endpoint. */
export function chatCompletionsUrl(url: string): string {
  try {
    return resolveChatUrl(url, '--endpoint');
  } catch (e) {
    throw new PrepConfigError(e instanceof Error ? e.message : String(e));
  }
}

function snippet(s: string, n = 200): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return one.length > n ? `${one.slice(0, n)}...` : one;
}

export class EndpointGenerator implements TextGenerator {
  readonly url: string;

  constructor(readonly options: EndpointOptions) {
    this.url = chatCompletionsUrl(options.url);
    if (!options.model) throw new PrepConfigError('--endpoint needs --endpoint-model NAME');
  }

  describe(): Record<string, unknown> {
    const o = this.options;
    return { backend: 'endpoint', endpoint: this.url, model: o.model, max_tokens: o.maxTokens, temperature: o.temperature, top_p: o.topP, ...(o.topK > 0 ? { top_k: o.topK } : {}), stop: o.stop, ...(o.system ? { system: o.system } : {}) };
  }

  /** One request; never throws. */
  async complete(req: GenRequest): Promise<GenResult> {
    const o = this.options;
    const messages = [...(o.system ? [{ role: 'system', content: o.system }] : []), { role: 'user', content: req.prompt }];
    const body: Record<string, unknown> = { model: o.model, messages, max_tokens: o.maxTokens, temperature: o.temperature, top_p: o.topP, seed: req.seed, n: 1 };
    if (o.topK > 0) body.top_k = o.topK;
    if (o.stop.length) body.stop = o.stop;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (o.apiKey) headers.authorization = `Bearer ${o.apiKey}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(this.url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(o.timeoutMs) });
      text = await res.text();
    } catch (e) {
      const err = e as Error & { cause?: { code?: string; message?: string } };
      if (err.name === 'TimeoutError' || err.name === 'AbortError') return { ok: false, error: `endpoint timed out after ${o.timeoutMs} ms` };
      return { ok: false, error: `endpoint request failed: ${err.cause?.code ?? err.cause?.message ?? err.message}` };
    }
    if (!res.ok) {
      let detail = snippet(text);
      try {
        const j = JSON.parse(text) as { error?: { message?: unknown } | string };
        const m = typeof j.error === 'string' ? j.error : j.error?.message;
        if (typeof m === 'string') detail = snippet(m);
      } catch {
        // not JSON: keep the raw body
      }
      return { ok: false, error: `endpoint answered HTTP ${res.status}${detail ? `: ${detail}` : ''}` };
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      return { ok: false, error: `endpoint answer is not JSON: ${snippet(text, 80)}` };
    }
    const choices = (j as { choices?: unknown }).choices;
    const content = Array.isArray(choices) ? (choices[0] as { message?: { content?: unknown } } | undefined)?.message?.content : undefined;
    if (typeof content !== 'string') return { ok: false, error: 'endpoint answer has no choices[0].message.content string' };
    return { ok: true, text: cutAtStop(content, o.stop).trim() };
  }

  async generate(requests: readonly GenRequest[]): Promise<GenResult[]> {
    const results: GenResult[] = new Array(requests.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < requests.length) {
        const i = next++;
        results[i] = await this.complete(requests[i]);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(this.options.concurrency, requests.length)) }, worker));
    return results;
  }

  close(): void {}
}

// -------------------------------------------------------------------------------------- seeds, rewriting

/** A seed derived from a base seed and a path of indices (row line, output index, slot, stage, ...). */
export function deriveSeed(seed: number, ...path: number[]): number {
  let s = seed;
  for (const p of path) s = rowSeed(s, p);
  return s;
}

/** Paraphrase: one generation per text from template(text). Returns the outputs in order. */
export async function paraphraseTexts(gen: TextGenerator, template: string, items: readonly { text: string; seed: number }[]): Promise<GenResult[]> {
  return gen.generate(items.map((it) => ({ prompt: renderTemplate(template, it.text), seed: it.seed })));
}

/**
 * Back-translation: pivot = generate(template(text)), then back = generate(backTemplate(pivot)) with the seed
 * + 1 stream. A failure in either pass is that item's failure.
 */
export async function backTranslateTexts(gen: TextGenerator, template: string, backTemplate: string, items: readonly { text: string; seed: number }[]): Promise<{ result: GenResult; pivot: string | null }[]> {
  const first = await gen.generate(items.map((it) => ({ prompt: renderTemplate(template, it.text), seed: it.seed })));
  const second: { i: number; req: GenRequest }[] = [];
  first.forEach((r, i) => {
    if (r.ok && r.text.trim() !== '') second.push({ i, req: { prompt: renderTemplate(backTemplate, r.text), seed: deriveSeed(items[i].seed, 1) } });
  });
  const back = await gen.generate(second.map((s) => s.req));
  const out: { result: GenResult; pivot: string | null }[] = first.map((r) => ({ result: r.ok ? { ok: false, error: 'the translation is empty' } : { ok: false, error: `translation: ${r.error}` }, pivot: r.ok ? r.text : null }));
  second.forEach((s, k) => {
    const b = back[k];
    out[s.i].result = b.ok ? b : { ok: false, error: `back-translation: ${b.error}` };
  });
  return out;
}

export interface ContextualOptions {
  /** Fraction of words replaced: n = max(1, round(alpha * words)) positions. */
  alpha: number;
  /** Continuations sampled per position. */
  candidates: number;
  /** Tokens per continuation. */
  maxWordTokens: number;
  stopWords: ReadonlySet<string>;
}

export interface ContextualEdit {
  /** Word index in the text. */
  at: number;
  word: string;
  with: string | null;
}

/**
 * Contextual replacement of one text (see the file comment). Positions: drawn from the eligible words
 * (non-stop words with a non-empty left-context encoding) by a seeded partial shuffle (Rng(seed)), n of them,
 * processed in text order; candidate c at position i samples with seed deriveSeed(seed, i, c).
 */
export async function contextualReplace(gen: LocalModelGenerator, text: string, o: ContextualOptions, seed: number): Promise<{ text: string; edits: ContextualEdit[] }> {
  const seg = segment(text);
  const eligible: number[] = [];
  for (let i = 0; i < seg.words.length; i++) {
    if (isStopWord(seg.words[i], o.stopWords)) continue;
    if (gen.encode(leftContext(seg, i)).length === 0) continue;
    eligible.push(i);
  }
  if (eligible.length === 0) return { text, edits: [] };
  const n = Math.min(eligible.length, edaCount(o.alpha, seg.words.length));
  const rng = new Rng(seed);
  const chosen = rng.shuffle([...eligible]).slice(0, n).sort((a, b) => a - b);
  const edits: ContextualEdit[] = [];
  for (const i of chosen) {
    const prompt = leftContext(seg, i);
    const reqs = Array.from({ length: o.candidates }, (_x, c) => ({ prompt, seed: deriveSeed(seed, i, c) }));
    const outs = await gen.generate(reqs);
    let pick: string | null = null;
    for (const r of outs) {
      if (!r.ok) continue;
      const w = proposedWord(r.text);
      if (w !== null && wordKey(w) !== wordKey(seg.words[i]) && !isStopWord(w, o.stopWords)) {
        pick = w;
        break;
      }
    }
    edits.push({ at: i, word: seg.words[i], with: pick });
    if (pick !== null) seg.words[i] = pick;
  }
  return { text: join(seg), edits };
}

/** The text before words[i], trailing whitespace removed. */
export function leftContext(seg: { words: string[]; gaps: string[] }, i: number): string {
  let s = seg.gaps[0];
  for (let k = 0; k < i; k++) s += seg.words[k] + seg.gaps[k + 1];
  return s.replace(/\s+$/u, '');
}

/** The word a continuation starts with (after leading whitespace), or null. */
export function proposedWord(continuation: string): string | null {
  const s = continuation.replace(/^\s+/u, '');
  const re = new RegExp(WORD_PATTERN.source, 'uy');
  const m = re.exec(s);
  return m ? m[0] : null;
}
