// The row formats an SFT dataset may use, converted to one of three example kinds. The formats are TRL's
// (text, prompt/completion, conversational messages and conversational prompt/completion) plus the two most
// common community layouts (ShareGPT conversations, Alpaca instruction/input/output), which are converted to
// messages here so the chat template decides how they look to the model.
//
// Which format a row is in is decided by its fields, in this order (a field holding null counts as absent):
//   messages                    -> messages
//   prompt / completion         -> prompt_completion (strings, or message lists = conversational)
//   conversations               -> ShareGPT ({from, value} turns) or messages ({role, content} turns)
//   text                        -> text
//   instruction / output        -> Alpaca, converted to messages
// Every problem is a DataError naming the file, the line and the field (`messages[2].role`).
import type { ChatMessage } from '../tokenizer/index.ts';
import { DataError, quote, typeName, type RowLocation } from './errors.ts';

export type SftExample =
  | { kind: 'text'; text: string }
  | { kind: 'prompt_completion'; prompt: string | ChatMessage[]; completion: string | ChatMessage[] }
  | { kind: 'messages'; messages: ChatMessage[] };

/** Roles a message may have after conversion (what chat templates understand). */
export const VALID_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

/**
 * ShareGPT speaker names (compared lower-cased) and the role each becomes. 'function_call' is LLaMA-Factory's
 * name for the assistant's tool call, 'observation' / 'function' / 'tool' the tool's answer.
 */
export const SHAREGPT_ROLES: Readonly<Record<string, string>> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  chatgpt: 'assistant',
  bing: 'assistant',
  function_call: 'assistant',
  system: 'system',
  tool: 'tool',
  function: 'tool',
  observation: 'tool',
};

const present = (row: Record<string, unknown>, key: string): boolean => row[key] !== undefined && row[key] !== null;

/** Converts one dataset row to an SFT example, or throws a DataError that says what is wrong and where. */
export function toSftExample(row: Record<string, unknown>, where: RowLocation): SftExample {
  const fail = (field: string | null, reason: string): never => {
    throw new DataError(where.file, where.line, field, reason);
  };
  if (present(row, 'messages')) {
    const messages = parseMessages(row.messages, 'messages', fail);
    checkAssistantTurns(messages, 'messages', fail);
    return { kind: 'messages', messages };
  }
  if (present(row, 'prompt') || present(row, 'completion')) return promptCompletion(row, fail);
  if (present(row, 'conversations')) return conversations(row, fail);
  if (present(row, 'text')) {
    const text = row.text;
    if (typeof text !== 'string') return fail('text', `expected a string, got ${typeName(text)}`);
    if (text.trim() === '') return fail('text', 'empty text: nothing to learn');
    return { kind: 'text', text };
  }
  if (present(row, 'instruction') || present(row, 'output')) return alpaca(row, fail);
  const keys = Object.keys(row);
  return fail(
    null,
    `no SFT fields: expected 'text', 'prompt'+'completion', 'messages', 'conversations' or 'instruction'+'output'; ` +
      `the row has ${keys.length === 0 ? 'no fields' : keys.slice(0, 10).map((k) => quote(k)).join(', ')}`,
  );
}

/** Throws the DataError of one row: the field path (`messages[2].role`, or null for the whole row) and why. */
export type Fail = (field: string | null, reason: string) => never;

/** A message list in the {role, content} form (TRL's conversational format). */
export function parseMessages(value: unknown, field: string, fail: Fail): ChatMessage[] {
  if (!Array.isArray(value)) return fail(field, `expected a list of {role, content} messages, got ${typeName(value)}`);
  if (value.length === 0) return fail(field, 'empty message list');
  return value.map((m: unknown, i): ChatMessage => {
    const at = `${field}[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) return fail(at, `expected a {role, content} object, got ${typeName(m)}`);
    const msg = m as Record<string, unknown>;
    if (msg.role === undefined) return fail(`${at}.role`, 'missing');
    if (typeof msg.role !== 'string') return fail(`${at}.role`, `expected a string, got ${typeName(msg.role)}`);
    if (!VALID_ROLES.includes(msg.role)) return fail(`${at}.role`, `unknown role ${quote(msg.role)} (valid: ${VALID_ROLES.join(', ')})`);
    checkContent(msg, at, fail);
    return { ...msg, role: msg.role } as ChatMessage;
  });
}

/** Content must be a string; an assistant message that only calls tools may have none. */
function checkContent(msg: Record<string, unknown>, at: string, fail: Fail): void {
  const c = msg.content;
  if (typeof c === 'string') return;
  const callsTools = Array.isArray(msg.tool_calls) && msg.tool_calls.length > 0;
  if ((c === undefined || c === null) && msg.role === 'assistant' && callsTools) return;
  if (c === undefined) return fail(`${at}.content`, 'missing');
  if (Array.isArray(c)) return fail(`${at}.content`, 'multi-part (list) content is not supported; use a string');
  return fail(`${at}.content`, `expected a string, got ${typeName(c)}`);
}

const isEmptyAssistant = (m: ChatMessage): boolean =>
  (typeof m.content !== 'string' || m.content.trim() === '') && !(Array.isArray(m.tool_calls) && m.tool_calls.length > 0);

/** At least one assistant turn, and none of them empty (an empty reply teaches the model to say nothing). */
function checkAssistantTurns(messages: readonly ChatMessage[], field: string, fail: Fail): void {
  let any = false;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    any = true;
    if (isEmptyAssistant(m)) fail(`${field}[${i}].content`, 'empty assistant message: nothing to learn');
  });
  if (!any) fail(field, 'no assistant turn: nothing to learn');
}

function promptCompletion(row: Record<string, unknown>, fail: Fail): SftExample {
  if (!present(row, 'prompt')) return fail('prompt', `missing (the row has 'completion' but no 'prompt')`);
  if (!present(row, 'completion')) return fail('completion', `missing (the row has 'prompt' but no 'completion')`);
  const { prompt, completion } = row;
  if (typeof prompt === 'string') {
    if (typeof completion !== 'string') {
      return fail('completion', `expected a string like 'prompt', got ${typeName(completion)} (prompt and completion must both be strings or both message lists)`);
    }
    if (completion.trim() === '') return fail('completion', 'empty completion: nothing to learn');
    return { kind: 'prompt_completion', prompt, completion };
  }
  if (Array.isArray(prompt)) {
    if (!Array.isArray(completion)) {
      return fail('completion', `expected a message list like 'prompt', got ${typeName(completion)} (prompt and completion must both be strings or both message lists)`);
    }
    const p = parseMessages(prompt, 'prompt', fail);
    const c = parseMessages(completion, 'completion', fail);
    checkAssistantTurns(c, 'completion', fail);
    return { kind: 'prompt_completion', prompt: p, completion: c };
  }
  return fail('prompt', `expected a string or a message list, got ${typeName(prompt)}`);
}

/** ShareGPT ({from, value}) or, when the turns use {role, content}, plain messages under another name. */
function conversations(row: Record<string, unknown>, fail: Fail): SftExample {
  const conv = row.conversations;
  if (!Array.isArray(conv)) return fail('conversations', `expected a list of {from, value} turns, got ${typeName(conv)}`);
  const first = conv[0] as Record<string, unknown> | undefined;
  if (typeof first === 'object' && first !== null && !('from' in first) && 'role' in first) {
    const messages = parseMessages(conv, 'conversations', fail);
    checkAssistantTurns(messages, 'conversations', fail);
    return { kind: 'messages', messages };
  }
  if (conv.length === 0) return fail('conversations', 'empty conversation');
  const messages = shareGptTurns(conv, 'conversations', fail);
  // LLaMA-Factory's ShareGPT layout keeps the system prompt in a top-level 'system' field.
  if (present(row, 'system')) {
    if (typeof row.system !== 'string') return fail('system', `expected a string, got ${typeName(row.system)}`);
    if (row.system !== '' && messages[0].role !== 'system') messages.unshift({ role: 'system', content: row.system });
  }
  const fieldOf = (i: number): string => (messages.length > conv.length ? i - 1 : i).toString();
  let any = false;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    any = true;
    if (isEmptyAssistant(m)) fail(`conversations[${fieldOf(i)}].value`, 'empty assistant message: nothing to learn');
  });
  if (!any) fail('conversations', 'no assistant turn (gpt/assistant): nothing to learn');
  return { kind: 'messages', messages };
}

/** ShareGPT {from, value} turns as {role, content} messages (speaker names through SHAREGPT_ROLES). */
export function shareGptTurns(conv: readonly unknown[], field: string, fail: Fail): ChatMessage[] {
  return conv.map((turn: unknown, i): ChatMessage => {
    const at = `${field}[${i}]`;
    if (typeof turn !== 'object' || turn === null || Array.isArray(turn)) return fail(at, `expected a {from, value} object, got ${typeName(turn)}`);
    const t = turn as Record<string, unknown>;
    if (t.from === undefined) return fail(`${at}.from`, 'missing');
    if (typeof t.from !== 'string') return fail(`${at}.from`, `expected a string, got ${typeName(t.from)}`);
    const role = SHAREGPT_ROLES[t.from.toLowerCase()];
    if (role === undefined) return fail(`${at}.from`, `unknown role ${quote(t.from)} (valid: ${Object.keys(SHAREGPT_ROLES).join(', ')})`);
    if (t.value === undefined) return fail(`${at}.value`, 'missing');
    if (typeof t.value !== 'string') return fail(`${at}.value`, `expected a string, got ${typeName(t.value)}`);
    return { role, content: t.value };
  });
}

/**
 * Alpaca {instruction, input?, output, system?, history?} as messages:
 *   system    = `system` (when a non-empty string),
 *   history   = LLaMA-Factory's earlier turns [[user, assistant], ...], in order,
 *   user      = instruction, followed by "\n\n" + input when input is a string that is not blank
 *               (the input itself is not trimmed),
 *   assistant = output.
 */
function alpaca(row: Record<string, unknown>, fail: Fail): SftExample {
  const { instruction, input, output, system, history } = row;
  if (!present(row, 'instruction')) return fail('instruction', `missing (the row has 'output' but no 'instruction')`);
  if (typeof instruction !== 'string') return fail('instruction', `expected a string, got ${typeName(instruction)}`);
  if (!present(row, 'output')) return fail('output', `missing (the row has 'instruction' but no 'output')`);
  if (typeof output !== 'string') return fail('output', `expected a string, got ${typeName(output)}`);
  if (output.trim() === '') return fail('output', 'empty output: nothing to learn');
  if (present(row, 'input') && typeof input !== 'string') return fail('input', `expected a string, got ${typeName(input)}`);
  const messages: ChatMessage[] = [];
  if (present(row, 'system')) {
    if (typeof system !== 'string') return fail('system', `expected a string, got ${typeName(system)}`);
    if (system !== '') messages.push({ role: 'system', content: system });
  }
  if (present(row, 'history')) {
    if (!Array.isArray(history)) return fail('history', `expected a list of [user, assistant] pairs, got ${typeName(history)}`);
    history.forEach((pair: unknown, i) => {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        fail(`history[${i}]`, `expected a [user, assistant] pair of strings, got ${quote(pair)}`);
      }
      const [u, a] = pair as [string, string];
      messages.push({ role: 'user', content: u }, { role: 'assistant', content: a });
    });
  }
  const extra = typeof input === 'string' && input.trim() !== '' ? `\n\n${input}` : '';
  messages.push({ role: 'user', content: instruction + extra }, { role: 'assistant', content: output });
  return { kind: 'messages', messages };
}
