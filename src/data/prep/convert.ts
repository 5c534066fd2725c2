// Conversion between the data set layouts the trainers accept (`alignkit data convert --to FORMAT`).
//
// Every row is read into one of three canonical shapes, then written in the target layout:
//   sft         a conversation: [{role, content}], roles system / user / assistant / tool
//   preference  prompt messages + a chosen and a rejected continuation (lists of messages)
//   kto         prompt messages + one completion + a boolean label (desirable or not)
//
// Layouts read (detected per row from its keys, or forced with `from`):
//   messages           {messages: [{role, content}]}                                        (TRL / OpenAI)
//   sharegpt           {conversations: [{from: human|gpt|system|..., value}], system?}      (ShareGPT, LLaMA-Factory)
//   alpaca             {instruction, input?, output, system?, history?: [[query, answer], ...]}
//   prompt_completion  {prompt, completion}: strings, or lists of messages (TRL conversational)
//   preference         {prompt?, chosen, rejected}: strings, messages or message lists (TRL; the prompt may be
//                      implicit as the common start of chosen and rejected); {conversations, chosen: {from, value},
//                      rejected: {...}} (LLaMA-Factory); Anthropic HH-RLHF "\n\nHuman: ... \n\nAssistant: ..." strings
//   kto                {prompt, completion, label: bool} (TRL) or {messages, label} (LLaMA-Factory: the last
//                      assistant message is the completion)
//
// Layouts written:
//   messages           {messages}
//   sharegpt           {conversations: [{from, value}]} with from = system | human | gpt | observation
//   alpaca             {instruction, input: "", output, system?, history?} (the conversation must alternate
//                      user / assistant after an optional system message and end with the assistant)
//   prompt_completion  strings {prompt, completion} for one user turn and one answer without a system message,
//                      otherwise TRL's conversational form {prompt: [messages], completion: [last message]}
//   preference         {prompt, chosen, rejected}: strings when the prompt is one user turn and each answer one
//                      assistant message, otherwise TRL's conversational lists
//   kto                {prompt, completion, label}, strings or conversational by the same rule
//
// Conversions that lose or invent information are explicit: preference -> an SFT layout keeps the chosen answer
// (SFT on preferred responses); preference -> kto gives two rows (chosen: label true, rejected: label false);
// kto -> an SFT layout keeps only rows labelled true (the others are dropped and counted); sft -> preference and
// kto -> preference are refused (there is no rejected answer to pair). Every other field of the row is dropped.

export const FORMATS = ['messages', 'sharegpt', 'alpaca', 'prompt_completion', 'preference', 'kto'] as const;
export type Format = (typeof FORMATS)[number];

export type Role = 'system' | 'user' | 'assistant' | 'tool';
export interface Message {
  role: Role;
  content: string;
}

export type Example =
  | { kind: 'sft'; messages: Message[] }
  | { kind: 'preference'; prompt: Message[]; chosen: Message[]; rejected: Message[] }
  | { kind: 'kto'; prompt: Message[]; completion: Message[]; label: boolean };

/** A conversion problem in one row; `field` names where (the caller adds file and line). */
export class ConvertError extends Error {
  constructor(
    readonly field: string | null,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

const ROLE_ALIASES: Record<string, Role> = {
  system: 'system',
  user: 'user', human: 'user', prompter: 'user',
  assistant: 'assistant', gpt: 'assistant', model: 'assistant', bot: 'assistant', chatgpt: 'assistant', function_call: 'assistant',
  tool: 'tool', observation: 'tool', function: 'tool', ipython: 'tool',
};

function roleOf(v: unknown, field: string): Role {
  if (typeof v !== 'string' || !(v.toLowerCase() in ROLE_ALIASES)) throw new ConvertError(field, `unknown role ${JSON.stringify(v)} (known: ${Object.keys(ROLE_ALIASES).join(', ')})`);
  return ROLE_ALIASES[v.toLowerCase()];
}

/** A message's text: a string, or content parts of type text (joined without separator). */
function contentOf(v: unknown, field: string): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((p, i) => {
        if (typeof p === 'string') return p;
        if (isObj(p) && (p.type === undefined || p.type === 'text')) {
          const t = p.text ?? p.value;
          if (typeof t === 'string') return t;
        }
        throw new ConvertError(`${field}[${i}]`, `only text content can be converted, got ${JSON.stringify(p).slice(0, 80)}`);
      })
      .join('');
  }
  throw new ConvertError(field, `message content must be a string or a list of text parts, got ${v === null ? 'null' : typeof v}`);
}

function message(v: unknown, field: string): Message {
  if (!isObj(v)) throw new ConvertError(field, 'a message must be an object with role/content or from/value');
  if ('role' in v) return { role: roleOf(v.role, `${field}.role`), content: contentOf(v.content, `${field}.content`) };
  if ('from' in v) return { role: roleOf(v.from, `${field}.from`), content: contentOf(v.value, `${field}.value`) };
  throw new ConvertError(field, 'a message needs role + content or from + value');
}

function messages(v: unknown, field: string): Message[] {
  if (!Array.isArray(v)) throw new ConvertError(field, 'expected a list of messages');
  return v.map((m, i) => message(m, `${field}[${i}]`));
}

/** A string (one user turn), a message, or a list of messages. */
function turns(v: unknown, field: string, stringRole: Role): Message[] {
  if (typeof v === 'string') return [{ role: stringRole, content: v }];
  if (Array.isArray(v)) return messages(v, field);
  if (isObj(v)) return [message(v, field)];
  throw new ConvertError(field, `expected a string or messages, got ${v === null ? 'null' : typeof v}`);
}

function str(row: Obj, key: string, required: boolean): string | undefined {
  const v = row[key];
  if (v === undefined || v === null) {
    if (required) throw new ConvertError(key, 'missing field');
    return undefined;
  }
  if (typeof v !== 'string') throw new ConvertError(key, `expected a string, got ${typeof v}`);
  return v;
}

/** Anthropic HH-RLHF transcript "\n\nHuman: ...\n\nAssistant: ..." as messages. */
export function parseHhTranscript(s: string, field: string): Message[] {
  const parts = s.split(/\n\n(Human|Assistant): ?/);
  if (parts.length < 3 || parts[0].trim() !== '') throw new ConvertError(field, 'not an HH-RLHF transcript (expected "\\n\\nHuman: ...\\n\\nAssistant: ...")');
  const out: Message[] = [];
  for (let i = 1; i < parts.length; i += 2) out.push({ role: parts[i] === 'Human' ? 'user' : 'assistant', content: parts[i + 1] ?? '' });
  return out;
}

const isHh = (v: unknown): v is string => typeof v === 'string' && /^\n\nHuman: /.test(v);

function sameMessage(a: Message, b: Message): boolean {
  return a.role === b.role && a.content === b.content;
}

/** Splits an implicit-prompt pair: the common leading messages are the prompt. */
function splitImplicitPrompt(chosen: Message[], rejected: Message[]): { prompt: Message[]; chosen: Message[]; rejected: Message[] } {
  let k = 0;
  while (k < chosen.length - 1 && k < rejected.length - 1 && sameMessage(chosen[k], rejected[k])) k++;
  return { prompt: chosen.slice(0, k), chosen: chosen.slice(k), rejected: rejected.slice(k) };
}

/** Which layout a row is in, from its keys. */
export function detectFormat(row: Obj): Format {
  if ('chosen' in row && 'rejected' in row) return 'preference';
  if (typeof row.label === 'boolean' && ('completion' in row || 'messages' in row)) return 'kto';
  if (Array.isArray(row.messages)) return 'messages';
  if (Array.isArray(row.conversations)) return 'sharegpt';
  if ('instruction' in row && 'output' in row) return 'alpaca';
  if ('prompt' in row && 'completion' in row) return 'prompt_completion';
  throw new ConvertError(null, `cannot tell the layout from the fields (${Object.keys(row).join(', ') || 'none'}); expected one of: messages, conversations, instruction/output, prompt/completion, chosen/rejected, label`);
}

/** Reads a row in layout `from` (detected when omitted) into its canonical shape. */
export function toExample(row: Obj, from: Format = detectFormat(row)): Example {
  switch (from) {
    case 'messages':
      return { kind: 'sft', messages: messages(row.messages, 'messages') };
    case 'sharegpt': {
      const conv = messages(row.conversations, 'conversations');
      const system = str(row, 'system', false);
      return { kind: 'sft', messages: system ? [{ role: 'system', content: system }, ...conv] : conv };
    }
    case 'alpaca': {
      const instruction = str(row, 'instruction', true)!;
      const input = str(row, 'input', false) ?? '';
      const output = str(row, 'output', true)!;
      const system = str(row, 'system', false);
      const out: Message[] = system ? [{ role: 'system', content: system }] : [];
      if (row.history !== undefined && row.history !== null) {
        if (!Array.isArray(row.history)) throw new ConvertError('history', 'expected a list of [query, answer] pairs');
        row.history.forEach((h, i) => {
          if (!Array.isArray(h) || h.length !== 2 || typeof h[0] !== 'string' || typeof h[1] !== 'string') throw new ConvertError(`history[${i}]`, 'expected a [query, answer] pair of strings');
          out.push({ role: 'user', content: h[0] }, { role: 'assistant', content: h[1] });
        });
      }
      // Alpaca's own template puts the input after the instruction, separated by a blank line.
      out.push({ role: 'user', content: input ? `${instruction}\n\n${input}` : instruction }, { role: 'assistant', content: output });
      return { kind: 'sft', messages: out };
    }
    case 'prompt_completion': {
      const prompt = turns(row.prompt, 'prompt', 'user');
      const completion = turns(row.completion, 'completion', 'assistant');
      return { kind: 'sft', messages: [...prompt, ...completion] };
    }
    case 'preference': {
      if (isHh(row.chosen) && isHh(row.rejected)) return { kind: 'preference', ...splitImplicitPrompt(parseHhTranscript(row.chosen, 'chosen'), parseHhTranscript(row.rejected, 'rejected')) };
      const chosen = turns(row.chosen, 'chosen', 'assistant');
      const rejected = turns(row.rejected, 'rejected', 'assistant');
      const promptSrc = row.prompt ?? row.conversations ?? row.messages;
      if (promptSrc === undefined) return { kind: 'preference', ...splitImplicitPrompt(chosen, rejected) };
      const promptField = row.prompt !== undefined ? 'prompt' : row.conversations !== undefined ? 'conversations' : 'messages';
      return { kind: 'preference', prompt: turns(promptSrc, promptField, 'user'), chosen, rejected };
    }
    case 'kto': {
      if (typeof row.label !== 'boolean') throw new ConvertError('label', `expected true or false, got ${JSON.stringify(row.label)}`);
      if (row.completion !== undefined) return { kind: 'kto', prompt: turns(row.prompt, 'prompt', 'user'), completion: turns(row.completion, 'completion', 'assistant'), label: row.label };
      const all = messages(row.messages, 'messages');
      if (all.length < 2 || all[all.length - 1].role !== 'assistant') throw new ConvertError('messages', 'a KTO conversation must end with an assistant message (the completion)');
      return { kind: 'kto', prompt: all.slice(0, -1), completion: all.slice(-1), label: row.label };
    }
  }
}

const SHAREGPT_FROM: Record<Role, string> = { system: 'system', user: 'human', assistant: 'gpt', tool: 'observation' };

/** One user turn (no system) and one assistant answer can be written as plain strings. */
function simplePrompt(prompt: Message[]): boolean {
  return prompt.length === 1 && prompt[0].role === 'user';
}
function simpleAnswer(a: Message[]): boolean {
  return a.length === 1 && a[0].role === 'assistant';
}

function writeSft(msgs: Message[], to: Exclude<Format, 'preference' | 'kto'>): Obj {
  switch (to) {
    case 'messages':
      return { messages: msgs.map((m) => ({ role: m.role, content: m.content })) };
    case 'sharegpt':
      return { conversations: msgs.map((m) => ({ from: SHAREGPT_FROM[m.role], value: m.content })) };
    case 'alpaca': {
      let i = 0;
      const out: Obj = {};
      if (msgs[0]?.role === 'system') {
        out.system = msgs[0].content;
        i = 1;
      }
      const body = msgs.slice(i);
      if (body.length < 2 || body.length % 2 !== 0) throw new ConvertError('messages', `alpaca needs user/assistant pairs ending with the assistant; got roles ${msgs.map((m) => m.role).join(', ')}`);
      body.forEach((m, k) => {
        if (m.role !== (k % 2 === 0 ? 'user' : 'assistant')) throw new ConvertError('messages', `alpaca needs alternating user/assistant turns; got roles ${msgs.map((x) => x.role).join(', ')}`);
      });
      const history: [string, string][] = [];
      for (let k = 0; k + 2 < body.length; k += 2) history.push([body[k].content, body[k + 1].content]);
      const result: Obj = { instruction: body[body.length - 2].content, input: '', output: body[body.length - 1].content };
      if (out.system !== undefined) result.system = out.system;
      if (history.length) result.history = history;
      return result;
    }
    case 'prompt_completion': {
      const last = msgs[msgs.length - 1];
      if (!last || last.role !== 'assistant' || msgs.length < 2) throw new ConvertError('messages', 'prompt_completion needs a conversation that ends with an assistant message');
      const prompt = msgs.slice(0, -1);
      if (simplePrompt(prompt)) return { prompt: prompt[0].content, completion: last.content };
      return { prompt: prompt.map((m) => ({ role: m.role, content: m.content })), completion: [{ role: 'assistant', content: last.content }] };
    }
  }
}

function msgList(ms: Message[]): Obj[] {
  return ms.map((m) => ({ role: m.role, content: m.content }));
}

/** Converts one canonical example to rows of layout `to` (0, 1 or 2 rows). */
export function fromExample(ex: Example, to: Format): Obj[] {
  if (to === 'preference') {
    if (ex.kind !== 'preference') throw new ConvertError(null, `cannot convert ${ex.kind === 'sft' ? 'an SFT conversation' : 'a KTO row'} to preference: there is no rejected answer to pair with`);
    const strings = simplePrompt(ex.prompt) && simpleAnswer(ex.chosen) && simpleAnswer(ex.rejected);
    return [strings ? { prompt: ex.prompt[0].content, chosen: ex.chosen[0].content, rejected: ex.rejected[0].content } : { prompt: msgList(ex.prompt), chosen: msgList(ex.chosen), rejected: msgList(ex.rejected) }];
  }
  if (to === 'kto') {
    const one = (prompt: Message[], completion: Message[], label: boolean): Obj =>
      simplePrompt(prompt) && simpleAnswer(completion) ? { prompt: prompt[0].content, completion: completion[0].content, label } : { prompt: msgList(prompt), completion: msgList(completion), label };
    if (ex.kind === 'kto') return [one(ex.prompt, ex.completion, ex.label)];
    if (ex.kind === 'preference') return [one(ex.prompt, ex.chosen, true), one(ex.prompt, ex.rejected, false)];
    throw new ConvertError(null, 'cannot convert an SFT conversation to kto: it has no desirability label');
  }
  if (ex.kind === 'sft') return [writeSft(ex.messages, to)];
  if (ex.kind === 'preference') return [writeSft([...ex.prompt, ...ex.chosen], to)];
  return ex.label ? [writeSft([...ex.prompt, ...ex.completion], to)] : [];
}

/** Converts one row; returns the output rows (possibly none). Throws ConvertError. */
export function convertRow(row: Obj, to: Format, from?: Format): Obj[] {
  return fromExample(toExample(row, from), to);
}
