// Preference data (reward modelling, DPO, ORPO, SimPO) and unpaired preference data (KTO): dataset rows ->
// examples -> token ids, following TRL's data handling for decoder-only models.
//
// Row formats (a field holding null counts as absent), decided in this order:
//   chosen_messages / rejected_messages   LLaMA-Factory v1 (`v1_dpo_demo.jsonl`): two full conversations whose
//                                         content may be a list of {type: 'text', value | text} parts; the prompt
//                                         is implicit (below)
//   conversations + chosen / rejected     LLaMA-Factory ShareGPT ranking (`dpo_en_demo.json`): the prompt is the
//                                         conversation ({from, value} or {role, content} turns, plus a top-level
//                                         `system`); chosen / rejected are one turn object, a list of turns, or a
//                                         string (the assistant's reply)
//   prompt + chosen / rejected            TRL's explicit prompt: three strings ("standard"), or three message lists
//                                         ("conversational": the prompt ends with a non-assistant turn, chosen and
//                                         rejected start with an assistant turn)
//   chosen / rejected                     TRL's implicit prompt: two full texts or two full conversations that
//                                         share the prompt as a prefix (HH-RLHF: "\n\nHuman: ...\n\nAssistant: ...")
// plus an optional `margin`, or `score_chosen` and `score_rejected` (margin = score_chosen - score_rejected), as
// TRL's RewardTrainer reads them.
//
// Implicit prompts. Conversations: the longest run of identical leading messages, cut back until the next message
// of both is an assistant turn (so both completions start with the assistant's reply). Strings: the common prefix,
// cut after the last "\n\nAssistant:" that lies entirely inside it (HH-RLHF's turn marker, so the prompt ends with
// the marker and each completion starts with the reply's leading space); without such a marker the whole common
// prefix is the prompt, minus a trailing space, which goes to the completions (TRL's extract_prompt does the
// same character-level split, with that space rule, for every string pair; the marker rule keeps a shared first
// word of the two replies, "\n\nAssistant: I ...", in the completions where it belongs).
//
// Unpaired rows (KTO): TRL's prompt + completion + boolean `label`, or LLaMA-Factory's `messages` / `conversations`
// whose last message is the assistant's completion, with a boolean `label` or `kto_tag`. A paired row can be
// unpaired into (prompt, chosen, true) and (prompt, rejected, false), as TRL's unpair_preference_dataset does.
//
// Tokenisation (TRL's DPOTrainer / KTOTrainer / RewardTrainer for decoder-only models):
//   - Conversational rows are rendered with the chat template: the prompt with the generation prompt, and
//     prompt + completion without it; the completion is the text after the rendered prompt (TRL's
//     apply_chat_template; a template that renders the prompt differently once the completion follows is an error).
//   - prompt + completion is tokenised as ONE text and split where the prompt's characters end (TRL's
//     build_tokenized_answer: a SentencePiece tokenizer would otherwise start the completion with a lone '▁'); a
//     token straddling the boundary belongs to the completion. The post-processor's special tokens (Llama: BOS)
//     are added, except when the text already starts with the BOS token's text (a chat template that writes BOS):
//     BOS appears once. (TRL's KTOTrainer and older DPOTrainers do the same — the latter's add_bos_token_if_needed;
//     current DPOTrainer versions encode plain-string prompts without special tokens, so a Llama model sees no BOS.)
//   - EOS is appended to each completion unless it already ends with EOS (possibly followed by whitespace, as in
//     ChatML's "<|im_end|>\n" turn end). EOS is a completion token, so it is learned.
//   - Too long (see PreferenceTokenizeOptions): an error unless truncation is asked for; then the prompt is cut
//     first, then the completions (always keeping their start).
import {
  ChatTemplateError,
  applyChatTemplate,
  type ChatMessage,
  type ChatTemplate,
  type Tokenizer,
} from '../tokenizer/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { DataError, quote, typeName, type RowLocation } from './errors.ts';
import { parseMessages, shareGptTurns, type Fail } from './formats.ts';
import { tokenizerChatTemplate } from './sft_tokenize.ts';

/** A prompt or a completion: plain text, or chat messages. */
export type Turns = string | ChatMessage[];

export interface PreferenceExample {
  prompt: Turns;
  chosen: Turns;
  rejected: Turns;
  /** How much better chosen is than rejected (RewardTrainer's margin), or null. */
  margin: number | null;
  scoreChosen: number | null;
  scoreRejected: number | null;
}

export interface UnpairedExample {
  prompt: Turns;
  completion: Turns;
  /** true = desirable. */
  label: boolean;
}

/** HH-RLHF's assistant turn marker; an implicit string prompt ends with the last one both texts share. */
export const HH_ASSISTANT_MARKER = '\n\nAssistant:';

const present = (row: Record<string, unknown>, key: string): boolean => row[key] !== undefined && row[key] !== null;

function failAt(where: RowLocation): Fail {
  return (field, reason) => {
    throw new DataError(where.file, where.line, field, reason);
  };
}

// ------------------------------------------------------------------------------------------------ row formats

/** Converts one dataset row to a preference pair, or throws a DataError that says what is wrong and where. */
export function toPreferenceExample(row: Record<string, unknown>, where: RowLocation): PreferenceExample {
  const fail = failAt(where);
  let pair: { prompt: Turns; chosen: Turns; rejected: Turns };
  if (present(row, 'chosen_messages') || present(row, 'rejected_messages')) {
    pair = llamaFactoryV1(row, fail);
  } else if (present(row, 'chosen') || present(row, 'rejected')) {
    if (!present(row, 'chosen')) return fail('chosen', `missing (the row has 'rejected' but no 'chosen')`);
    if (!present(row, 'rejected')) return fail('rejected', `missing (the row has 'chosen' but no 'rejected')`);
    if (present(row, 'conversations')) pair = shareGptRanking(row, fail);
    else if (present(row, 'prompt')) pair = explicitPrompt(row, fail);
    else pair = implicitPrompt(row.chosen, row.rejected, 'chosen', 'rejected', fail);
  } else {
    const keys = Object.keys(row);
    return fail(
      null,
      `no preference fields: expected 'chosen' + 'rejected' (with 'prompt', 'conversations', or a shared prefix as the prompt) ` +
        `or 'chosen_messages' + 'rejected_messages'; the row has ${keys.length === 0 ? 'no fields' : keys.slice(0, 10).map((k) => quote(k)).join(', ')}`,
    );
  }
  if (sameTurns(pair.chosen, pair.rejected)) return fail('rejected', `same as 'chosen': a pair needs two different responses`);
  return { ...pair, ...scores(row, fail) };
}

/** Converts one unpaired (KTO) row, or throws a DataError. */
export function toUnpairedExample(row: Record<string, unknown>, where: RowLocation): UnpairedExample {
  const fail = failAt(where);
  let prompt: Turns;
  let completion: Turns;
  if (present(row, 'prompt') || present(row, 'completion')) {
    if (!present(row, 'prompt')) return fail('prompt', `missing (the row has 'completion' but no 'prompt')`);
    if (!present(row, 'completion')) return fail('completion', `missing (the row has 'prompt' but no 'completion')`);
    prompt = parsePrompt(row.prompt, 'prompt', fail);
    completion = parseCompletion(row.completion, 'completion', typeof prompt === 'string' ? 'string' : 'messages', fail);
  } else if (present(row, 'messages') || present(row, 'conversations')) {
    const field = present(row, 'messages') ? 'messages' : 'conversations';
    const { messages, fileFail } = conversation(row, field, fail);
    const last = messages[messages.length - 1];
    if (last.role !== 'assistant') return fileFail(`${field}[${messages.length - 1}]`, `the last message must be the assistant's completion, got role ${quote(last.role)}`);
    if (messages.length < 2) return fail(field, 'no prompt before the completion');
    prompt = messages.slice(0, -1);
    checkMessagePrompt(prompt, field, fileFail);
    completion = [last];
  } else {
    const keys = Object.keys(row);
    return fail(
      null,
      `no unpaired preference fields: expected 'prompt' + 'completion' + 'label', or 'messages' / 'conversations' + 'label' (or 'kto_tag'); ` +
        `the row has ${keys.length === 0 ? 'no fields' : keys.slice(0, 10).map((k) => quote(k)).join(', ')}`,
    );
  }
  const labelField = present(row, 'label') ? 'label' : present(row, 'kto_tag') ? 'kto_tag' : null;
  if (labelField === null) return fail('label', `missing: an unpaired (KTO) row needs a boolean 'label' (or LLaMA-Factory's 'kto_tag')`);
  const label = row[labelField];
  if (typeof label !== 'boolean') return fail(labelField, `expected true or false, got ${typeName(label)} ${quote(label)}`);
  return { prompt, completion, label };
}

/** Whether a row holds a pair (chosen / rejected) rather than one labelled completion. */
export function isPairedRow(row: Record<string, unknown>): boolean {
  return present(row, 'chosen') || present(row, 'rejected') || present(row, 'chosen_messages') || present(row, 'rejected_messages');
}

/** A pair as two unpaired examples, chosen (desirable) first (TRL's unpair_preference_dataset). */
export function unpairPreferenceExample(ex: PreferenceExample): [UnpairedExample, UnpairedExample] {
  return [
    { prompt: ex.prompt, completion: ex.chosen, label: true },
    { prompt: ex.prompt, completion: ex.rejected, label: false },
  ];
}

/** A prompt: a non-blank string, or a message list ending with a non-assistant turn. */
function parsePrompt(value: unknown, field: string, fail: Fail): Turns {
  if (typeof value === 'string') {
    if (value.trim() === '') return fail(field, 'empty prompt');
    return value;
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return fail(field, 'empty prompt (no messages)');
    const messages = parseMessages(value, field, fail);
    checkMessagePrompt(messages, field, fail);
    return messages;
  }
  return fail(field, `expected a string or a message list, got ${typeName(value)}`);
}

/** The prompt is rendered with the generation prompt, which must follow a user / system / tool turn. */
function checkMessagePrompt(messages: readonly ChatMessage[], field: string, fail: Fail): void {
  const last = messages[messages.length - 1];
  if (last.role === 'assistant') {
    fail(`${field}[${messages.length - 1}].role`, `the prompt ends with an assistant turn; it must end with the turn the completion answers (continuing an assistant message is not supported)`);
  }
  if (!messages.some((m) => typeof m.content === 'string' && m.content.trim() !== '')) fail(field, 'empty prompt (every message is blank)');
}

/** A completion of the prompt's kind: any string (an empty reply is a valid answer: EOS alone), or messages
 *  that start with the assistant's turn. */
function parseCompletion(value: unknown, field: string, kind: 'string' | 'messages', fail: Fail): Turns {
  if (kind === 'string') {
    if (typeof value !== 'string') return fail(field, `expected a string like 'prompt', got ${typeName(value)} (prompt and responses must all be strings or all message lists)`);
    return value;
  }
  if (!Array.isArray(value)) return fail(field, `expected a message list like 'prompt', got ${typeName(value)} (prompt and responses must all be strings or all message lists)`);
  const messages = parseMessages(value, field, fail);
  if (messages[0].role !== 'assistant') return fail(`${field}[0].role`, `a response must start with the assistant's turn, got ${quote(messages[0].role)}`);
  return messages;
}

function explicitPrompt(row: Record<string, unknown>, fail: Fail): { prompt: Turns; chosen: Turns; rejected: Turns } {
  const prompt = parsePrompt(row.prompt, 'prompt', fail);
  const kind = typeof prompt === 'string' ? 'string' : 'messages';
  return { prompt, chosen: parseCompletion(row.chosen, 'chosen', kind, fail), rejected: parseCompletion(row.rejected, 'rejected', kind, fail) };
}

/**
 * `messages` / `conversations` of LLaMA-Factory: ShareGPT {from, value} turns or {role, content} messages, plus a
 * top-level `system` string (put in front as a system message). `fileFail` reports `field[i]` paths of the
 * returned list as positions in the file's list (without the added system message).
 */
function conversation(row: Record<string, unknown>, field: string, fail: Fail): { messages: ChatMessage[]; fileFail: Fail } {
  const conv = row[field];
  if (!Array.isArray(conv)) return fail(field, `expected a list of turns, got ${typeName(conv)}`);
  if (conv.length === 0) return fail(field, 'empty conversation');
  const first = conv[0] as Record<string, unknown>;
  const roleStyle = typeof first === 'object' && first !== null && !('from' in first) && 'role' in first;
  const messages = roleStyle ? parseMessages(conv, field, fail) : shareGptTurns(conv, field, fail);
  let shift = 0;
  if (present(row, 'system')) {
    if (typeof row.system !== 'string') return fail('system', `expected a string, got ${typeName(row.system)}`);
    if (row.system !== '' && messages[0].role !== 'system') {
      messages.unshift({ role: 'system', content: row.system });
      shift = 1;
    }
  }
  const prefix = `${field}[`;
  const fileFail: Fail = (f, reason) => {
    if (shift === 0 || f === null || !f.startsWith(prefix)) return fail(f, reason);
    const close = f.indexOf(']', prefix.length);
    const k = Number(f.slice(prefix.length, close));
    return fail(k >= shift ? `${prefix}${k - shift}${f.slice(close)}` : 'system', reason);
  };
  return { messages, fileFail };
}

/** LLaMA-Factory's ShareGPT ranking format: prompt = the conversation, chosen / rejected = the next turn. */
function shareGptRanking(row: Record<string, unknown>, fail: Fail): { prompt: Turns; chosen: Turns; rejected: Turns } {
  const { messages: prompt, fileFail } = conversation(row, 'conversations', fail);
  checkMessagePrompt(prompt, 'conversations', fileFail);
  return { prompt, chosen: rankingReply(row.chosen, 'chosen', fail), rejected: rankingReply(row.rejected, 'rejected', fail) };
}

/** One reply of the ShareGPT ranking format: a {from, value} / {role, content} object, a list of them, or a string. */
function rankingReply(value: unknown, field: string, fail: Fail): ChatMessage[] {
  let messages: ChatMessage[];
  if (typeof value === 'string') messages = [{ role: 'assistant', content: value }];
  else if (Array.isArray(value)) {
    if (value.length === 0) return fail(field, 'empty reply (no turns)');
    const first = value[0] as Record<string, unknown>;
    const roleStyle = typeof first === 'object' && first !== null && !('from' in first) && 'role' in first;
    messages = roleStyle ? parseMessages(value, field, fail) : shareGptTurns(value, field, fail);
  } else if (typeof value === 'object' && value !== null) {
    // A single turn object: report its fields as `chosen.value`, not `chosen[0].value`.
    const single: Fail = (f, reason) => fail(f === null ? null : f.replace(`${field}[0]`, field), reason);
    messages = 'role' in value && !('from' in value) ? parseMessages([value], field, single) : shareGptTurns([value], field, single);
  } else {
    return fail(field, `expected a {from, value} turn, a list of turns or a string, got ${typeName(value)}`);
  }
  if (messages[0].role !== 'assistant') return fail(field, `a reply must be the assistant's turn (from 'gpt'), got role ${quote(messages[0].role)}`);
  return messages;
}

/** LLaMA-Factory v1: chosen_messages / rejected_messages, content as a string or a list of text parts. */
function llamaFactoryV1(row: Record<string, unknown>, fail: Fail): { prompt: Turns; chosen: Turns; rejected: Turns } {
  if (!present(row, 'chosen_messages')) return fail('chosen_messages', `missing (the row has 'rejected_messages' but no 'chosen_messages')`);
  if (!present(row, 'rejected_messages')) return fail('rejected_messages', `missing (the row has 'chosen_messages' but no 'rejected_messages')`);
  const flat = (field: string): ChatMessage[] => {
    const v = row[field];
    if (!Array.isArray(v)) return fail(field, `expected a list of {role, content} messages, got ${typeName(v)}`);
    const plain = v.map((m: unknown, i) => {
      if (typeof m !== 'object' || m === null || Array.isArray(m)) return m;
      const msg = m as Record<string, unknown>;
      const content = Array.isArray(msg.content) ? textOfParts(msg.content, `${field}[${i}].content`, fail) : msg.content;
      return { role: msg.role, content };
    });
    return parseMessages(plain, field, fail);
  };
  return implicitPrompt(flat('chosen_messages'), flat('rejected_messages'), 'chosen_messages', 'rejected_messages', fail);
}

/** Multi-part content of text parts only ({type: 'text', value} as LLaMA-Factory v1 writes it, or {type, text}). */
function textOfParts(parts: readonly unknown[], field: string, fail: Fail): string {
  return parts
    .map((p: unknown, j) => {
      const at = `${field}[${j}]`;
      if (typeof p !== 'object' || p === null || Array.isArray(p)) return fail(at, `expected a {type, value} part, got ${typeName(p)}`);
      const part = p as Record<string, unknown>;
      if (part.type !== 'text') return fail(`${at}.type`, `only text parts are supported, got ${quote(part.type)}`);
      const text = part.value ?? part.text;
      if (typeof text !== 'string') return fail(`${at}.value`, `expected a string, got ${typeName(text)}`);
      return text;
    })
    .join('');
}

/** TRL's implicit prompt: the shared beginning of two full texts or conversations (rules at the top). */
function implicitPrompt(chosenIn: unknown, rejectedIn: unknown, cf: string, rf: string, fail: Fail): { prompt: Turns; chosen: Turns; rejected: Turns } {
  if (typeof chosenIn === 'string') {
    if (typeof rejectedIn !== 'string') return fail(rf, `expected a string like '${cf}', got ${typeName(rejectedIn)}`);
    if (chosenIn === rejectedIn) return fail(rf, `same as '${cf}': a pair needs two different responses`);
    const cut = implicitStringPrompt(chosenIn, rejectedIn);
    const prompt = chosenIn.slice(0, cut);
    if (prompt.trim() === '') return fail(cf, `'${cf}' and '${rf}' share no prompt: they differ from the start (add a 'prompt' field)`);
    return { prompt, chosen: chosenIn.slice(cut), rejected: rejectedIn.slice(cut) };
  }
  if (Array.isArray(chosenIn)) {
    if (!Array.isArray(rejectedIn)) return fail(rf, `expected a message list like '${cf}', got ${typeName(rejectedIn)}`);
    const c = parseMessages(chosenIn, cf, fail);
    const r = parseMessages(rejectedIn, rf, fail);
    if (sameTurns(c, r)) return fail(rf, `same as '${cf}': a pair needs two different responses`);
    const k = implicitMessagePrompt(c, r);
    if (k === 0) return fail(cf, `'${cf}' and '${rf}' share no prompt before an assistant turn (add a 'prompt' field)`);
    const prompt = c.slice(0, k);
    checkMessagePrompt(prompt, cf, fail);
    return { prompt, chosen: c.slice(k), rejected: r.slice(k) };
  }
  return fail(cf, `expected a string or a message list, got ${typeName(chosenIn)}`);
}

/** Length of the implicit string prompt of two different texts (rules at the top of the file). */
export function implicitStringPrompt(chosen: string, rejected: string): number {
  const n = Math.min(chosen.length, rejected.length);
  let common = 0;
  while (common < n && chosen.charCodeAt(common) === rejected.charCodeAt(common)) common++;
  const marker = common >= HH_ASSISTANT_MARKER.length ? chosen.lastIndexOf(HH_ASSISTANT_MARKER, common - HH_ASSISTANT_MARKER.length) : -1;
  if (marker >= 0) return marker + HH_ASSISTANT_MARKER.length;
  return common > 0 && chosen[common - 1] === ' ' ? common - 1 : common;
}

/** Number of leading messages that form the implicit prompt of two different conversations (0: none). */
export function implicitMessagePrompt(chosen: readonly ChatMessage[], rejected: readonly ChatMessage[]): number {
  let k = 0;
  while (k < chosen.length && k < rejected.length && sameMessage(chosen[k], rejected[k])) k++;
  while (k > 0 && !(chosen[k]?.role === 'assistant' && rejected[k]?.role === 'assistant')) k--;
  return k;
}

/** Messages compare by what a chat template reads: role, content and tool calls. */
function sameMessage(a: ChatMessage, b: ChatMessage): boolean {
  return a.role === b.role && JSON.stringify(a.content ?? null) === JSON.stringify(b.content ?? null) && JSON.stringify(a.tool_calls ?? null) === JSON.stringify(b.tool_calls ?? null);
}

function sameTurns(a: Turns, b: Turns): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.every((m, i) => sameMessage(m, b[i]));
}

/** `margin`, or `score_chosen` - `score_rejected`. */
function scores(row: Record<string, unknown>, fail: Fail): { margin: number | null; scoreChosen: number | null; scoreRejected: number | null } {
  const num = (field: string): number | null => {
    if (!present(row, field)) return null;
    const v = row[field];
    if (typeof v !== 'number' || !Number.isFinite(v)) return fail(field, `expected a finite number, got ${typeName(v)} ${quote(v)}`);
    return v;
  };
  const margin = num('margin');
  const scoreChosen = num('score_chosen');
  const scoreRejected = num('score_rejected');
  if ((scoreChosen === null) !== (scoreRejected === null)) {
    return scoreChosen === null ? fail('score_chosen', `missing (the row has 'score_rejected')`) : fail('score_rejected', `missing (the row has 'score_chosen')`);
  }
  return { margin: margin ?? (scoreChosen !== null && scoreRejected !== null ? scoreChosen - scoreRejected : null), scoreChosen, scoreRejected };
}

// ---------------------------------------------------------------------------------------------- tokenisation

export interface PreferenceTokenizeOptions {
  /** Longest prompt + completion in tokens (each of prompt+chosen and prompt+rejected). */
  maxLength: number;
  /** Longest prompt in tokens (at most maxLength - 1). Unset: the prompt gives up tokens first when a pair is
   *  too long, but keeps at least half of maxLength (TRL's default max_prompt_length is half its max_length). */
  maxPromptLength?: number | null;
  /** What to do with a longer example (TRL's truncation_mode names): 'error' (default; a DataError naming file
   *  and line), 'keep_end' (cut the prompt's start, keeping a leading BOS) or 'keep_start' (cut the prompt's end).
   *  Completions that still do not fit are cut at their end in both modes (their start is what is compared). */
  truncation?: 'error' | 'keep_end' | 'keep_start';
  /** Template for conversational rows; default (undefined or null) the tokenizer's chat_template. */
  chatTemplate?: ChatTemplate | null;
}

export interface TokenizedPair {
  /** [P] prompt tokens (BOS once, chat template and generation prompt applied). */
  promptIds: Int32Array;
  /** [C] chosen completion tokens, EOS appended (unless cut off by truncation). */
  chosenIds: Int32Array;
  /** [R] rejected completion tokens, EOS appended (unless cut off by truncation). */
  rejectedIds: Int32Array;
  margin: number | null;
  /** The prompt or a completion was cut to fit. */
  truncated: boolean;
  source?: RowLocation;
}

export interface TokenizedUnpaired {
  promptIds: Int32Array;
  /** Completion tokens, EOS appended (unless cut off by truncation). */
  completionIds: Int32Array;
  label: boolean;
  truncated: boolean;
  source?: RowLocation;
}

/** Checks the options once (a configuration problem, not a row problem). */
export function validatePreferenceOptions(o: PreferenceTokenizeOptions): void {
  if (!Number.isInteger(o.maxLength) || o.maxLength < 2) throw new AlignkitError(`preference data: maxLength must be an integer >= 2, got ${o.maxLength}`);
  const p = o.maxPromptLength;
  if (p !== undefined && p !== null && (!Number.isInteger(p) || p < 1 || p >= o.maxLength)) {
    throw new AlignkitError(`preference data: maxPromptLength must be an integer in [1, maxLength - 1 = ${o.maxLength - 1}], got ${p}`);
  }
  const t = o.truncation ?? 'error';
  if (t !== 'error' && t !== 'keep_end' && t !== 'keep_start') throw new AlignkitError(`preference data: truncation must be 'error', 'keep_end' or 'keep_start', got '${String(t)}'`);
}

/** Tokenises a pair (rules at the top of the file). */
export function tokenizePreference(tok: Tokenizer, ex: PreferenceExample, o: PreferenceTokenizeOptions, where?: RowLocation): TokenizedPair {
  validatePreferenceOptions(o);
  const loc = where ?? { file: '(example)', line: 1 };
  const { promptIds, completionIds } = tokenizeTurns(tok, ex.prompt, [ex.chosen, ex.rejected], ['chosen', 'rejected'], o, loc);
  const cut = truncate(tok, promptIds, completionIds, o, loc);
  const out: TokenizedPair = {
    promptIds: Int32Array.from(cut.promptIds),
    chosenIds: Int32Array.from(cut.completionIds[0]),
    rejectedIds: Int32Array.from(cut.completionIds[1]),
    margin: ex.margin,
    truncated: cut.truncated,
  };
  if (where) out.source = { file: where.file, line: where.line };
  return out;
}

/** Tokenises one unpaired (KTO) example (same rules as pairs). */
export function tokenizeUnpaired(tok: Tokenizer, ex: UnpairedExample, o: PreferenceTokenizeOptions, where?: RowLocation): TokenizedUnpaired {
  validatePreferenceOptions(o);
  const loc = where ?? { file: '(example)', line: 1 };
  const { promptIds, completionIds } = tokenizeTurns(tok, ex.prompt, [ex.completion], ['completion'], o, loc);
  const cut = truncate(tok, promptIds, completionIds, o, loc);
  const out: TokenizedUnpaired = { promptIds: Int32Array.from(cut.promptIds), completionIds: Int32Array.from(cut.completionIds[0]), label: ex.label, truncated: cut.truncated };
  if (where) out.source = { file: where.file, line: where.line };
  return out;
}

/** Prompt and completions as text: strings as they are; messages rendered with the chat template. */
function renderTexts(tok: Tokenizer, prompt: Turns, completions: readonly Turns[], fields: readonly string[], o: PreferenceTokenizeOptions, loc: RowLocation): { promptText: string; completionTexts: string[] } {
  const kinds = new Set([prompt, ...completions].map((t) => typeof t === 'string'));
  if (kinds.size !== 1) throw new DataError(loc.file, loc.line, fields[0], 'prompt and responses must all be strings or all message lists');
  if (typeof prompt === 'string') return { promptText: prompt, completionTexts: completions as string[] };
  const template = o.chatTemplate ?? tokenizerChatTemplate(tok);
  if (template === null) throw new AlignkitError(`preference data: ${loc.file} has conversational rows but the tokenizer has no chat template; pass chatTemplate`);
  const render = { bosToken: tok.bosToken, eosToken: tok.eosToken };
  try {
    const promptText = applyChatTemplate(template, prompt, { ...render, addGenerationPrompt: true });
    const completionTexts = completions.map((c, i) => {
      const full = applyChatTemplate(template, [...prompt, ...(c as ChatMessage[])], { ...render, addGenerationPrompt: false });
      if (!full.startsWith(promptText)) {
        throw new DataError(loc.file, loc.line, fields[i], 'the chat template renders the prompt differently once the response follows it, so the prompt/response boundary is undefined');
      }
      return full.slice(promptText.length);
    });
    return { promptText, completionTexts };
  } catch (e) {
    // A template that refuses the conversation (raise_exception) is a problem of this row; one that does not
    // parse is a configuration problem.
    if (e instanceof ChatTemplateError && !/does not parse/.test(e.message)) throw new DataError(loc.file, loc.line, 'prompt', e.message);
    throw e;
  }
}

/** The post-processor's special tokens before and after a text (Llama: [BOS] and []), per tokenizer. */
const affixCache = new WeakMap<Tokenizer, { prefix: number[]; suffix: number[] }>();

function specialAffixes(tok: Tokenizer): { prefix: number[]; suffix: number[] } {
  let a = affixCache.get(tok);
  if (!a) {
    const bare = tok.encode('a', { addSpecialTokens: false });
    const full = tok.encode('a', { addSpecialTokens: true });
    let at = -1;
    for (let i = 0; i + bare.length <= full.length && at < 0; i++) if (bare.every((id, j) => full[i + j] === id)) at = i;
    a = at < 0 ? { prefix: [], suffix: [] } : { prefix: full.slice(0, at), suffix: full.slice(at + bare.length) };
    affixCache.set(tok, a);
  }
  return a;
}

const startsWithBos = (tok: Tokenizer, text: string): boolean => tok.bosToken !== null && tok.bosToken !== '' && text.startsWith(tok.bosToken);

/** Prompt tokens shared by all completions, and each completion's tokens with EOS. */
function tokenizeTurns(tok: Tokenizer, prompt: Turns, completions: readonly Turns[], fields: readonly string[], o: PreferenceTokenizeOptions, loc: RowLocation): { promptIds: number[]; completionIds: number[][] } {
  const { promptText, completionTexts } = renderTexts(tok, prompt, completions, fields, o, loc);
  // BOS once: the post-processor's tokens are added unless the (rendered) text already starts with BOS.
  const affixes = startsWithBos(tok, promptText) ? { prefix: [], suffix: [] } : specialAffixes(tok);
  const P = promptText.length;
  // Text tokens of prompt + completion, and how many of them lie inside the prompt's characters.
  const parts = completionTexts.map((c) => {
    try {
      const enc = tok.encodeWithOffsets(promptText + c, { addSpecialTokens: false });
      let inPrompt = 0;
      while (inPrompt < enc.ids.length && enc.offsets[inPrompt][1] <= P) inPrompt++;
      return { ids: enc.ids, inPrompt };
    } catch {
      // A tokenizer whose tokens cannot be aligned with the text (exotic normalizers): the parts separately.
      const p = tok.encode(promptText, { addSpecialTokens: false });
      return { ids: [...p, ...tok.encode(c, { addSpecialTokens: false })], inPrompt: p.length };
    }
  });
  // The completions share one prompt: the tokens all encodings agree on (a token straddling the prompt's end in one
  // of them moves to every completion).
  let k = Math.min(...parts.map((x) => x.inPrompt));
  for (let i = 0; i < k; i++) {
    if (parts.some((x) => x.ids[i] !== parts[0].ids[i])) {
      k = i;
      break;
    }
  }
  const promptIds = [...affixes.prefix, ...parts[0].ids.slice(0, k)];
  if (promptIds.length === 0) throw new DataError(loc.file, loc.line, 'prompt', 'the prompt has no token of its own (its text merges into the response tokens)');
  const completionIds = parts.map((x, i) => {
    const ids = [...x.ids.slice(k), ...affixes.suffix];
    if (!endsWithEos(tok, ids)) {
      if (tok.eosId === null) {
        if (ids.length === 0) throw new DataError(loc.file, loc.line, fields[i], 'empty response and the tokenizer has no EOS token: nothing to compare');
      } else ids.push(tok.eosId);
    }
    return ids;
  });
  return { promptIds, completionIds };
}

/** The completion already ends its turn with EOS: EOS last, or EOS followed only by whitespace. */
function endsWithEos(tok: Tokenizer, ids: readonly number[]): boolean {
  if (tok.eosId === null) return false;
  const at = ids.lastIndexOf(tok.eosId);
  if (at < 0) return false;
  return at === ids.length - 1 || tok.decode(ids.slice(at + 1)).trim() === '';
}

/**
 * Fits prompt + each completion into maxLength tokens. The prompt is cut first, to maxPromptLength when set,
 * else only as far as needed but never below half of maxLength; then every completion is cut to what is left.
 */
function truncate(tok: Tokenizer, promptIds: number[], completionIds: number[][], o: PreferenceTokenizeOptions, loc: RowLocation): { promptIds: number[]; completionIds: number[][]; truncated: boolean } {
  const P = promptIds.length;
  const longest = Math.max(...completionIds.map((c) => c.length));
  const maxPrompt = o.maxPromptLength ?? null;
  const promptTooLong = maxPrompt !== null && P > maxPrompt;
  if (!promptTooLong && P + longest <= o.maxLength) return { promptIds, completionIds, truncated: false };
  const mode = o.truncation ?? 'error';
  if (mode === 'error') {
    const what = promptTooLong
      ? `prompt has ${P} tokens, more than max_prompt_length ${maxPrompt}`
      : `prompt (${P} tokens) + longest response (${longest} tokens) = ${P + longest} tokens, more than max_length ${o.maxLength}`;
    throw new DataError(loc.file, loc.line, null, `${what} (raise the limit, or set truncation to 'keep_end' or 'keep_start')`);
  }
  const budget = maxPrompt ?? Math.max(o.maxLength - longest, Math.floor(o.maxLength / 2));
  let prompt = promptIds;
  if (P > budget) {
    if (mode === 'keep_start') prompt = promptIds.slice(0, budget);
    else {
      // Cut from the start, but a leading BOS stays: the model has always seen sequences start with it.
      const keep = tok.bosId !== null && promptIds[0] === tok.bosId && budget > 1 ? 1 : 0;
      prompt = [...promptIds.slice(0, keep), ...promptIds.slice(P - (budget - keep))];
    }
  }
  const room = o.maxLength - prompt.length;
  return { promptIds: prompt, completionIds: completionIds.map((c) => c.slice(0, room)), truncated: true };
}
