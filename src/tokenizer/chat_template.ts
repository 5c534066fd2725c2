// Chat templates (Jinja, as in tokenizer_config.json's "chat_template" or chat_template.jinja) rendered with
// @huggingface/jinja, and the assistant-token mask used for completion-only SFT loss.
//
// The mask is computed from character spans, never by looking for token strings in the output:
//   - templates with {% generation %} … {% endgeneration %} blocks: the blocks mark the spans directly;
//   - otherwise, prefix renders: for each assistant message i, render the conversation up to message i with and
//     without it (and with the message's content swapped for a sentinel) to learn where its content sits in the
//     full render and where its turn ends; the content, plus the template's end-of-turn token (the first special
//     token after the content within the turn, e.g. </s>, <|im_end|>, <|eot_id|>), is what the model must learn.
// Character spans become token positions through Tokenizer.encodeWithOffsets.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jinja from '@huggingface/jinja';
import type { Tokenizer } from './tokenizer.ts';

/** A part of a multi-modal message ({type: 'text', text} / {type: 'image'} …). */
export interface ChatContentPart {
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface ChatMessage {
  role: string;
  content?: string | null | ChatContentPart[];
  [key: string]: unknown;
}

/** One named template of a tokenizer_config that holds several (e.g. 'default' and 'tool_use'). */
export interface NamedChatTemplate {
  name: string;
  template: string;
}

export type ChatTemplate = string | readonly NamedChatTemplate[];

export interface ChatTemplateOptions {
  /** End with the header of a new assistant turn. When omitted the variable is undefined, which templates
   *  treat as false unless they test `add_generation_prompt is defined` (AI21 Jamba then defaults to true). */
  addGenerationPrompt?: boolean;
  bosToken?: string | null;
  eosToken?: string | null;
  /** Tool / function definitions (JSON schemas) passed as `tools`. */
  tools?: readonly unknown[];
  /** Retrieval documents passed as `documents`. */
  documents?: readonly unknown[];
  /** Any other template variables (enable_thinking, date_string, …). */
  extra?: Readonly<Record<string, unknown>>;
  /** Which template of a named list to use. Default: 'tool_use' when tools are given and present, else 'default'. */
  templateName?: string;
  /** The time strftime_now() formats (default: now). */
  now?: Date;
}

/** The template called raise_exception(msg), or could not be parsed / rendered. */
export class ChatTemplateError extends Error {
  override name = 'ChatTemplateError';
}

/** Picks one template source out of a string or a named list. */
export function selectChatTemplate(template: ChatTemplate, name?: string, hasTools = false): string {
  if (typeof template === 'string') return template;
  const byName = new Map(template.map((t) => [t.name, t.template]));
  const want = name ?? (hasTools && byName.has('tool_use') ? 'tool_use' : 'default');
  const t = byName.get(want);
  if (t === undefined) throw new ChatTemplateError(`chat template '${want}' not found (have: ${[...byName.keys()].join(', ') || 'none'})`);
  return t;
}

function asTemplate(v: unknown): ChatTemplate | null {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const list: NamedChatTemplate[] = [];
    for (const x of v) {
      if (typeof x === 'object' && x !== null && typeof (x as NamedChatTemplate).name === 'string' && typeof (x as NamedChatTemplate).template === 'string') {
        list.push({ name: (x as NamedChatTemplate).name, template: (x as NamedChatTemplate).template });
      }
    }
    return list.length ? list : null;
  }
  if (typeof v === 'object' && v !== null) {
    // Some exports store {name: template}.
    const list = Object.entries(v as Record<string, unknown>)
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .map(([name, template]) => ({ name, template }));
    return list.length ? list : null;
  }
  return null;
}

function readJsonFile(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/**
 * The chat template of a model folder: chat_template.jinja (plus additional_chat_templates/*.jinja as named
 * templates), else tokenizer_config.json's chat_template, else chat_template.json's. Null when there is none.
 */
export function loadChatTemplate(dir: string): ChatTemplate | null {
  if (!existsSync(dir)) throw new Error(`${dir}: no such directory`);
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) {
    const main = readFileSync(jinja, 'utf8');
    const extraDir = join(dir, 'additional_chat_templates');
    if (!existsSync(extraDir)) return main;
    const named: NamedChatTemplate[] = [{ name: 'default', template: main }];
    for (const f of readdirSync(extraDir).sort()) {
      if (f.endsWith('.jinja')) named.push({ name: f.slice(0, -'.jinja'.length), template: readFileSync(join(extraDir, f), 'utf8') });
    }
    return named;
  }
  for (const file of ['tokenizer_config.json', 'chat_template.json']) {
    const p = join(dir, file);
    if (!existsSync(p)) continue;
    const cfg = readJsonFile(p);
    if (typeof cfg === 'object' && cfg !== null) {
      const t = asTemplate((cfg as Record<string, unknown>).chat_template);
      if (t !== null) return t;
    }
  }
  return null;
}

// ------------------------------------------------------------------------------------------ rendering

// @huggingface/jinja's .d.ts re-exports cannot be followed under NodeNext resolution; type what is used here.
interface JinjaTemplate {
  parsed: unknown;
}
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
const J = jinja as unknown as {
  Template: new (source: string) => JinjaTemplate;
  Environment: new () => JinjaEnvironment;
  Interpreter: new (env: JinjaEnvironment) => { run(program: unknown): { value: unknown } };
};

const compiled = new Map<string, JinjaTemplate>();

function compile(source: string): JinjaTemplate {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new J.Template(source);
    } catch (e) {
      throw new ChatTemplateError(`chat template does not parse: ${(e as Error).message}`);
    }
    if (compiled.size > 64) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

/** Python's time.strftime for the common directives, in local time (as datetime.now() in transformers). */
export function strftime(date: Date, format: string): string {
  const p2 = (n: number): string => String(n).padStart(2, '0');
  const start = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.floor((date.getTime() - start.getTime()) / 86400000) + 1;
  return format.replace(/%[a-zA-Z%]/g, (d) => {
    switch (d) {
      case '%Y': return String(date.getFullYear());
      case '%y': return p2(date.getFullYear() % 100);
      case '%m': return p2(date.getMonth() + 1);
      case '%d': return p2(date.getDate());
      case '%e': return String(date.getDate()).padStart(2, ' ');
      case '%B': return MONTHS[date.getMonth()];
      case '%b': case '%h': return MONTHS[date.getMonth()].slice(0, 3);
      case '%A': return DAYS[date.getDay()];
      case '%a': return DAYS[date.getDay()].slice(0, 3);
      case '%H': return p2(date.getHours());
      case '%I': return p2(date.getHours() % 12 || 12);
      case '%p': return date.getHours() < 12 ? 'AM' : 'PM';
      case '%M': return p2(date.getMinutes());
      case '%S': return p2(date.getSeconds());
      case '%j': return String(dayOfYear).padStart(3, '0');
      case '%w': return String(date.getDay());
      case '%%': return '%';
      default: return d;
    }
  });
}

/** Python's range() as Jinja templates call it. */
function jinjaRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const out: number[] = [];
  if (step > 0) for (let i = start; i < stop; i += step) out.push(i);
  else for (let i = start; i > stop; i += step) out.push(i);
  return out;
}

/** Renders messages with a chat template. */
export function applyChatTemplate(template: ChatTemplate, messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
  const source = selectChatTemplate(template, options.templateName, (options.tools?.length ?? 0) > 0);
  const now = options.now;
  // Template.render() would declare the library's own raise_exception / strftime_now (the latter reads the clock),
  // so the environment is set up here: Jinja's constants, range, and our two functions, then the variables.
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range: jinjaRange,
    raise_exception: (msg: unknown): never => {
      throw new ChatTemplateError(`chat template raised: ${String(msg)}`);
    },
    strftime_now: (format: unknown): string => strftime(now ?? new Date(), String(format)),
  };
  const vars: Record<string, unknown> = {
    ...(options.extra ?? {}),
    messages,
  };
  // Left undefined when not given: most templates read that as false; a few (AI21 Jamba) default it to true.
  if (options.addGenerationPrompt !== undefined) vars.add_generation_prompt = options.addGenerationPrompt;
  if (options.bosToken != null) vars.bos_token = options.bosToken;
  if (options.eosToken != null) vars.eos_token = options.eosToken;
  if (options.tools !== undefined) vars.tools = options.tools;
  if (options.documents !== undefined) vars.documents = options.documents;
  const program = compile(source);
  const env = new J.Environment();
  for (const [k, v] of Object.entries(globals)) env.set(k, v);
  for (const [k, v] of Object.entries(vars)) if (!(k in globals) && v !== undefined) env.set(k, v);
  try {
    const out = new J.Interpreter(env).run(program.parsed).value;
    return typeof out === 'string' ? out : String(out);
  } catch (e) {
    if (e instanceof ChatTemplateError) throw e;
    throw new ChatTemplateError(`chat template failed to render: ${(e as Error).message}`);
  }
}

// ------------------------------------------------------------------------------------------ assistant mask

export interface AssistantMaskOptions extends Omit<ChatTemplateOptions, 'addGenerationPrompt'> {
  /** 'generation' uses {% generation %} blocks (required when the template has them and method is 'auto');
   *  'prefix' uses prefix renders. Default 'auto'. */
  method?: 'auto' | 'generation' | 'prefix';
}

export interface AssistantMaskResult {
  /** The rendered conversation. */
  text: string;
  ids: number[];
  /** 1 on tokens the model should learn (assistant content and its end-of-turn token), else 0. */
  assistantMask: number[];
  /** Whether the post-processor's special tokens were added (false when the text already starts with BOS). */
  addedSpecialTokens: boolean;
  /** Character spans [start, end) of `text` that were marked as assistant output. */
  spans: Array<[number, number]>;
}

/**
 * Encodes rendered chat text, avoiding a double BOS: when the text already starts with the BOS token's text the
 * post-processor's special tokens are not added, otherwise they are.
 */
export function encodeChatText(tokenizer: Tokenizer, text: string): { ids: number[]; offsets: Array<[number, number]>; addedSpecialTokens: boolean } {
  const add = !(tokenizer.bosToken !== null && tokenizer.bosToken !== '' && text.startsWith(tokenizer.bosToken));
  const { ids, offsets } = tokenizer.encodeWithOffsets(text, { addSpecialTokens: add });
  return { ids, offsets, addedSpecialTokens: add };
}

const GEN_OPEN = '\uE000';
const GEN_CLOSE = '\uE001';
const GENERATION_TAG = /{%(-?)\s*(end)?generation\s*(-?)%}/g;

/** Replaces {% generation %} / {% endgeneration %} with block tags that emit private-use marker characters,
 *  keeping the tags' whitespace control (and trim_blocks / lstrip_blocks behaviour, which apply to block tags). */
function withGenerationMarkers(source: string): string {
  return source.replace(GENERATION_TAG, (_m, l: string, end: string | undefined, r: string) => `{%${l} if true %}${end ? GEN_CLOSE : GEN_OPEN}{% endif ${r}%}`);
}

function commonPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function commonSuffix(a: string, b: string, limit: number): number {
  let i = 0;
  while (i < limit && a.charCodeAt(a.length - 1 - i) === b.charCodeAt(b.length - 1 - i)) i++;
  return i;
}

function messagesContain(messages: readonly ChatMessage[], chars: string[]): boolean {
  const s = JSON.stringify(messages);
  return chars.some((c) => s.includes(c));
}

/**
 * Renders a conversation (no generation prompt), tokenizes it and marks the tokens of assistant output.
 * Throws ChatTemplateError when the template re-renders earlier turns differently as the conversation grows
 * (then only {% generation %} blocks can say what the assistant wrote).
 */
export function renderWithAssistantMask(tokenizer: Tokenizer, template: ChatTemplate, messages: readonly ChatMessage[], options: AssistantMaskOptions = {}): AssistantMaskResult {
  const source = selectChatTemplate(template, options.templateName, (options.tools?.length ?? 0) > 0);
  const base: ChatTemplateOptions = {
    ...options,
    bosToken: options.bosToken !== undefined ? options.bosToken : tokenizer.bosToken,
    eosToken: options.eosToken !== undefined ? options.eosToken : tokenizer.eosToken,
  };
  const method = options.method ?? 'auto';
  const hasGeneration = GENERATION_TAG.test(source);
  GENERATION_TAG.lastIndex = 0;
  if (method === 'generation' && !hasGeneration) throw new ChatTemplateError('renderWithAssistantMask: the template has no {% generation %} blocks');

  let text: string;
  let contentSpans: Array<[number, number]>; // assistant content (mask: overlap)
  let turnEnds: number[]; // per content span, where its turn ends (end-of-turn token must start before this)
  if (hasGeneration && method !== 'prefix') {
    if (messagesContain(messages, [GEN_OPEN, GEN_CLOSE])) throw new ChatTemplateError('renderWithAssistantMask: messages contain U+E000/U+E001, used as generation markers');
    const marked = applyChatTemplate(withGenerationMarkers(source), messages, base);
    contentSpans = [];
    let out = '';
    let open = -1;
    for (const ch of marked) {
      if (ch === GEN_OPEN) open = out.length;
      else if (ch === GEN_CLOSE) {
        if (open >= 0 && out.length > open) contentSpans.push([open, out.length]);
        open = -1;
      } else out += ch;
    }
    text = out;
    turnEnds = contentSpans.map(([, e]) => e); // the template's block already says what to learn
  } else {
    ({ text, contentSpans, turnEnds } = prefixSpans(source, messages, base));
  }

  const { ids, offsets, addedSpecialTokens } = encodeChatText(tokenizer, text);
  const mask = new Array<number>(ids.length).fill(0);
  const spans: Array<[number, number]> = [];
  // End-of-turn candidates: special tokens and stop ids (not plain added tokens such as <tool_call>).
  const isEndOfTurn = (id: number): boolean => tokenizer.isSpecial(id) || tokenizer.stopIds.includes(id);
  let k = 0;
  for (let s = 0; s < contentSpans.length; s++) {
    const [cs, ce] = contentSpans[s];
    const turnEnd = turnEnds[s];
    let markedEnd = ce;
    // Content tokens: every token overlapping [cs, ce) (an empty-span token counts when it sits inside).
    let q = k;
    for (; q < ids.length && offsets[q][0] < ce; q++) {
      const [a, b] = offsets[q];
      if (a < b ? b > cs : a >= cs) {
        mask[q] = 1;
        markedEnd = Math.max(markedEnd, b);
      }
    }
    // End of turn: the tokens after the content, within the turn, up to and including the first special one.
    for (let r = q; r < ids.length && offsets[r][0] < turnEnd; r++) {
      if (isEndOfTurn(ids[r])) {
        for (let x = q; x <= r; x++) mask[x] = 1;
        markedEnd = Math.max(markedEnd, offsets[r][1]);
        q = r + 1;
        break;
      }
    }
    spans.push([cs, markedEnd]);
    k = q;
  }
  return { text, ids, assistantMask: mask, addedSpecialTokens, spans };
}

/** Prefix renders: where each assistant message's content sits in the full render, and where its turn ends. */
function prefixSpans(source: string, messages: readonly ChatMessage[], base: ChatTemplateOptions): { text: string; contentSpans: Array<[number, number]>; turnEnds: number[] } {
  const render = (msgs: readonly ChatMessage[], gen: boolean): string => applyChatTemplate(source, msgs, { ...base, addGenerationPrompt: gen });
  const full = render(messages, false);
  const contentSpans: Array<[number, number]> = [];
  const turnEnds: number[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (m.role !== 'assistant') continue;
    const upto = render(messages.slice(0, i + 1), false);
    // The turn (as far as the full render agrees with the render that ends with this message).
    const turnEnd = commonPrefix(upto, full);
    // Where the turn starts: after the prompt with its generation header.
    let prompt = '';
    if (i > 0) {
      try {
        prompt = render(messages.slice(0, i), true);
      } catch {
        prompt = render(messages.slice(0, i), false); // templates that refuse a generation prompt here
      }
    }
    const turnStart = Math.min(commonPrefix(prompt, upto), turnEnd);
    // The content inside the turn: what changes when only this message's content changes.
    // Without string content (tool calls only) the turn's output is everything from the turn start up to the
    // end-of-turn token: an empty content span at the turn start, extended below to that token.
    let cs = turnStart;
    let ce = turnStart;
    if (typeof m.content === 'string' && m.content.length > 0) {
      let sentinel = '\uE002';
      while (upto.includes(sentinel)) sentinel = String.fromCharCode(sentinel.charCodeAt(0) + 1);
      const swapped = render([...messages.slice(0, i), { ...m, content: sentinel }], false);
      const pre = commonPrefix(upto, swapped);
      const suf = commonSuffix(upto, swapped, Math.min(upto.length, swapped.length) - pre);
      cs = pre;
      ce = upto.length - suf;
    }
    if (ce > turnEnd || cs > ce) {
      throw new ChatTemplateError(
        `renderWithAssistantMask: assistant message ${i} renders differently once later messages follow it ` +
          `(the template is not prefix-stable); add {% generation %} blocks to the template`,
      );
    }
    if (ce > cs || turnEnd > cs) {
      contentSpans.push([cs, ce]);
      turnEnds.push(turnEnd);
    }
  }
  return { text: full, contentSpans, turnEnds };
}
