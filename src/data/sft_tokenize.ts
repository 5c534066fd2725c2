// SFT examples -> token ids and labels. The labels say which tokens the model is trained to predict; they are
// aligned with the input (labels[t] belongs to inputIds[t]) and NOT shifted: the loss predicts labels[t + 1]
// from position t. -100 means "no loss".
//
// Rules (each has a test in test/data/sft_tokenize.test.ts):
//   - Exactly one BOS. Rendered chat text that already starts with the BOS token's text is encoded without the
//     post-processor's special tokens; plain text likewise when it starts with BOS.
//   - Which tokens are learned is decided from structure, never by searching for token strings: the character
//     offset where the prompt ends (prompt/completion), or the chat template's assistant spans
//     (renderWithAssistantMask).
//   - prompt + completion strings are tokenised as ONE string and split at the prompt's last character. Encoding
//     the completion on its own would change its tokens: a SentencePiece tokenizer puts a '▁' in front of every
//     text it encodes, so " Paris." alone is ['▁', '▁Paris', '.'] but after the prompt it is ['▁Paris', '.'] —
//     the model would be trained on a token sequence it never produces at inference.
//   - EOS keeps its label (it is how the model learns to stop). Padding is marked by the attention mask, so a
//     pad token that equals EOS does not matter here.
//   - An example longer than maxLength is an error unless truncation is asked for (silent truncation loses data).
import {
  ChatTemplateError,
  applyChatTemplate,
  encodeChatText,
  renderWithAssistantMask,
  type ChatMessage,
  type ChatTemplate,
  type Tokenizer,
} from '../tokenizer/index.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { DataError, type RowLocation } from './errors.ts';
import type { SftExample } from './formats.ts';

/** Label of a token that carries no loss (PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

export interface SftTokenizeOptions {
  /** Longest example in tokens. */
  maxLength: number;
  /** What to do with a longer example: 'error' (default; a DataError naming file and line), cut the end
   *  ('right'), or cut the start ('left', keeping a leading BOS). */
  truncation?: 'error' | 'right' | 'left';
  /** prompt_completion: prompt tokens get no loss. Default true. */
  completionOnlyLoss?: boolean;
  /** messages and conversational prompt_completion: only assistant turns (content + end-of-turn token) get loss,
   *  as marked by the chat template's structure. Default true. */
  assistantOnlyLoss?: boolean;
  /** Template for conversational rows; default (undefined or null) the tokenizer's chat_template. */
  chatTemplate?: ChatTemplate | null;
  /** text and prompt/completion strings: append EOS unless it is already the last token. Default true. */
  addEos?: boolean;
}

export interface TokenizedExample {
  /** [T] token ids. */
  inputIds: Int32Array;
  /** [T] the token to learn at each position, or -100; aligned with inputIds, not shifted (the loss shifts). */
  labels: Int32Array;
  /** The example was cut to maxLength. */
  truncated: boolean;
  /** Where the example came from. */
  source?: RowLocation;
}

/** The tokenizer's own chat template (tokenizer_config.json's chat_template), or null. */
export function tokenizerChatTemplate(tok: Tokenizer): ChatTemplate | null {
  const t = tok.config.chat_template;
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const list = t.filter(
      (x): x is { name: string; template: string } =>
        typeof x === 'object' && x !== null && typeof (x as { name?: unknown }).name === 'string' && typeof (x as { template?: unknown }).template === 'string',
    );
    if (list.length > 0) return list.map((x) => ({ name: x.name, template: x.template }));
  }
  return null;
}

export function validateTokenizeOptions(opts: SftTokenizeOptions): void {
  if (!Number.isInteger(opts.maxLength) || opts.maxLength < 2) throw new AlignkitError(`SFT: maxLength must be an integer >= 2, got ${opts.maxLength}`);
  const t = opts.truncation ?? 'error';
  if (t !== 'error' && t !== 'right' && t !== 'left') throw new AlignkitError(`SFT: truncation must be 'error', 'right' or 'left', got '${String(t)}'`);
}

const startsWithBos = (tok: Tokenizer, text: string): boolean => tok.bosToken !== null && tok.bosToken !== '' && text.startsWith(tok.bosToken);

/** Tokenises one example (see the rules at the top of this file). */
export function tokenizeSftExample(tok: Tokenizer, ex: SftExample, opts: SftTokenizeOptions, where?: RowLocation): TokenizedExample {
  validateTokenizeOptions(opts);
  const loc = where ?? { file: '(example)', line: 1 };
  let ids: number[];
  let labels: number[];
  if (ex.kind === 'text') {
    ids = tok.encode(ex.text, { addSpecialTokens: !startsWithBos(tok, ex.text) });
    if (opts.addEos ?? true) appendEos(tok, ids);
    labels = ids.slice();
  } else if (ex.kind === 'prompt_completion' && typeof ex.prompt === 'string' && typeof ex.completion === 'string') {
    ({ ids, labels } = promptCompletionStrings(tok, ex.prompt, ex.completion, opts));
  } else {
    ({ ids, labels } = conversational(tok, ex, opts, loc));
  }

  let truncated = false;
  if (ids.length > opts.maxLength) {
    const mode = opts.truncation ?? 'error';
    if (mode === 'error') {
      throw new DataError(loc.file, loc.line, null, `example has ${ids.length} tokens, more than max_length ${opts.maxLength} (raise max_length, or set truncation to 'right' or 'left')`);
    }
    truncated = true;
    const n = opts.maxLength;
    if (mode === 'right') {
      ids = ids.slice(0, n);
      labels = labels.slice(0, n);
    } else {
      // Cut from the start, but a leading BOS stays: the model has always seen sequences start with it.
      const keep = tok.bosId !== null && ids[0] === tok.bosId ? 1 : 0;
      ids = [...ids.slice(0, keep), ...ids.slice(ids.length - (n - keep))];
      labels = [...labels.slice(0, keep), ...labels.slice(labels.length - (n - keep))];
    }
  }
  // labels[0] is never a target (nothing precedes it), so something after it must carry a label.
  if (!labels.some((l, t) => t > 0 && l !== IGNORE_INDEX)) {
    throw new DataError(loc.file, loc.line, null, truncated ? `no token left to learn after truncation to ${opts.maxLength} tokens` : 'no token to learn');
  }
  const out: TokenizedExample = { inputIds: Int32Array.from(ids), labels: Int32Array.from(labels), truncated };
  if (where) out.source = { file: where.file, line: where.line };
  return out;
}

function appendEos(tok: Tokenizer, ids: number[]): void {
  if (tok.eosId !== null && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
}

/** prompt + completion strings: one encoding of the whole text; tokens that end after the prompt are the
 *  completion (a token straddling the boundary belongs to the completion, so it is learned). */
function promptCompletionStrings(tok: Tokenizer, prompt: string, completion: string, opts: SftTokenizeOptions): { ids: number[]; labels: number[] } {
  const text = prompt + completion;
  const add = !startsWithBos(tok, text);
  let ids: number[];
  let isCompletion: boolean[];
  try {
    const enc = tok.encodeWithOffsets(text, { addSpecialTokens: add });
    ids = enc.ids;
    isCompletion = enc.offsets.map(([, end]) => end > prompt.length);
  } catch {
    // A tokenizer whose tokens cannot be aligned with the text (exotic normalizers): encode the two parts
    // separately, BOS on the prompt only.
    const p = tok.encode(prompt, { addSpecialTokens: add });
    const c = tok.encode(completion, { addSpecialTokens: false });
    ids = [...p, ...c];
    isCompletion = ids.map((_, i) => i >= p.length);
  }
  if (opts.addEos ?? true) {
    const before = ids.length;
    appendEos(tok, ids);
    if (ids.length > before) isCompletion.push(true);
  }
  const completionOnly = opts.completionOnlyLoss ?? true;
  const labels = ids.map((id, i) => (!completionOnly || isCompletion[i] ? id : IGNORE_INDEX));
  return { ids, labels };
}

/** Rendered-chat rows: messages, and prompt/completion message lists. */
function conversational(tok: Tokenizer, ex: SftExample, opts: SftTokenizeOptions, loc: RowLocation): { ids: number[]; labels: number[] } {
  const template = opts.chatTemplate ?? tokenizerChatTemplate(tok);
  if (template === null) {
    throw new AlignkitError(`SFT: ${loc.file} has conversational rows but the tokenizer has no chat template; pass chatTemplate`);
  }
  const assistantOnly = opts.assistantOnlyLoss ?? true;
  const field = ex.kind === 'messages' ? 'messages' : 'prompt';
  const render = { bosToken: tok.bosToken, eosToken: tok.eosToken };
  try {
    if (ex.kind === 'text') throw new AlignkitError('SFT: internal: text example in the conversational path');
    if (ex.kind === 'prompt_completion' && (!Array.isArray(ex.prompt) || !Array.isArray(ex.completion))) {
      throw new DataError(loc.file, loc.line, 'completion', 'prompt and completion must both be strings or both message lists');
    }
    const messages: ChatMessage[] = ex.kind === 'messages' ? ex.messages : [...(ex.prompt as ChatMessage[]), ...(ex.completion as ChatMessage[])];
    let text: string;
    let ids: number[];
    let mask: number[] | null = null;
    if (assistantOnly) {
      const r = renderWithAssistantMask(tok, template, messages, render);
      ({ text, ids } = r);
      mask = r.assistantMask;
    } else {
      text = applyChatTemplate(template, messages, { ...render, addGenerationPrompt: false });
      ids = encodeChatText(tok, text).ids;
    }
    let learnable = ids.map((_, i) => (mask === null ? true : mask[i] === 1));
    if (ex.kind === 'prompt_completion' && (opts.completionOnlyLoss ?? true)) {
      const promptText = applyChatTemplate(template, ex.prompt as ChatMessage[], { ...render, addGenerationPrompt: true });
      if (!text.startsWith(promptText)) {
        throw new DataError(loc.file, loc.line, 'prompt', 'the chat template renders the prompt differently once the completion follows it, so the prompt/completion boundary is undefined');
      }
      const enc = encodeChatText(tok, text);
      const P = promptText.length;
      learnable = learnable.map((l, i) => l && enc.offsets[i][1] > P);
    }
    const labels = ids.map((id, i) => (learnable[i] ? id : IGNORE_INDEX));
    return { ids, labels };
  } catch (e) {
    // A template that refuses the conversation (raise_exception: "roles must alternate", ...) is a problem of
    // this row; a template that does not parse is a configuration problem and stays as it is.
    if (e instanceof ChatTemplateError && !/does not parse/.test(e.message)) throw new DataError(loc.file, loc.line, field, e.message);
    throw e;
  }
}
