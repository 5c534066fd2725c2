// SFT tokenisation: the axolotl Llama-2-chat ground truth, BOS/EOS rules, loss masks, truncation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { collate } from '../../src/data/collate.ts';
import { DataError } from '../../src/data/errors.ts';
import { toSftExample, type SftExample } from '../../src/data/formats.ts';
import { IGNORE_INDEX, tokenizeSftExample, type SftTokenizeOptions, type TokenizedExample } from '../../src/data/sft_tokenize.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';
import { Tokenizer, loadChatTemplate, type ChatMessage } from '../../src/tokenizer/index.ts';
import * as A from '../tokenizer/assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
const where = { file: 'train.jsonl', line: 3 };

/**
 * The Llama-2 chat template of transformers' LlamaTokenizer.default_chat_template, as stored in the
 * huggingface.js jinja end-to-end tests (assets: chat_templates/hfjs/jinja_e2e_cases.json, "default_templates"
 * → "llama"). With an explicit system message it renders
 *   <s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s><s>[INST] {user} [/INST] ...
 * which is Meta's reference Llama-2-chat format.
 */
function llama2ChatTemplate(): string {
  const cases = A.readAssetJson('chat_templates', 'hfjs', 'jinja_e2e_cases.json') as { default_templates: { llama: { chat_template: string } } };
  return cases.default_templates.llama.chat_template;
}

/** GPT-2's tokenizer plus ChatML's two special tokens (no Qwen tokenizer.json is among the assets); pad = EOS. */
function chatmlTokenizer(): Tokenizer {
  const j = A.readAssetJson('tokenizers', 'gpt2-gpt-neox-tests', 'tokenizer.json') as { added_tokens: unknown[] };
  const tok = (id: number, content: string) => ({ id, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false });
  return Tokenizer.fromFiles({
    tokenizerJson: { ...j, added_tokens: [...j.added_tokens, tok(50257, '<|im_start|>'), tok(50258, '<|im_end|>')] },
    tokenizerConfig: { eos_token: '<|im_end|>', pad_token: '<|endoftext|>', bos_token: null },
    source: 'gpt2 + ChatML tokens',
  });
}

/** The labelled tokens, run by run, as token strings joined with '|'. */
function labelledRuns(tok: Tokenizer, ex: TokenizedExample): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i <= ex.labels.length; i++) {
    if (i < ex.labels.length && ex.labels[i] !== IGNORE_INDEX) cur.push(ex.labels[i]);
    else if (cur.length) {
      runs.push(tok.tokens(cur).join('|'));
      cur = [];
    }
  }
  return runs;
}

const count = (a: ArrayLike<number>, x: number): number => Array.from(a).filter((v) => v === x).length;

describe('axolotl Llama-2-chat ground truth', { skip }, () => {
  it('ShareGPT conversation -> input_ids, labels and attention mask of axolotl tests/fixtures/conversation.tokenized_llama2chat.json', (t: TestContext) => {
    // Produced by axolotl's LLama2ChatTokenizingStrategy with NousResearch/Llama-2-7b-hf's tokenizer, sequence_len
    // 4096, padding to max_length with id 0 (see the assets' MANIFEST: axolotl @ 067b021c, tests/fixtures/).
    // A.llama2() is that tokenizer (Llama-2 vocabulary and merges, legacy SentencePiece normalizer, BOS
    // post-processor). axolotl's prompter uses Llama-2's default system prompt when the conversation has none;
    // it is read back from the fixture's own tokens rather than copied here.
    const tok = A.llama2();
    const fx = A.readAssetJson('sft', 'axolotl', 'conversation.tokenized_llama2chat.json') as { input_ids: number[]; labels: number[]; attention_mask: boolean[] };
    const conversation = A.readAssetJson('sft', 'axolotl', 'conversation.json') as Record<string, unknown>;
    const sys = /<<SYS>>\n([\s\S]*?)\n<<\/SYS>>/.exec(tok.decode(fx.input_ids.slice(0, 200)));
    assert.ok(sys, 'system prompt in the fixture');

    const ex = toSftExample({ system: sys[1], ...conversation }, { file: 'conversation.json', line: 1 });
    assert.equal(ex.kind, 'messages');
    const got = tokenizeSftExample(tok, ex, { maxLength: 4096, chatTemplate: llama2ChatTemplate() });
    const batch = collate([got], { padTokenId: 0, padToMultipleOf: 4096 });
    assert.equal(batch.seq, fx.input_ids.length);

    const differing = (a: ArrayLike<number>, b: ArrayLike<number>): number[] => Array.from(a).flatMap((x, i) => (x === b[i] ? [] : [i]));
    const mask = fx.attention_mask.map((m) => (m ? 1 : 0));
    // Exactly one position differs, in every field: 2055. axolotl builds its text with FastChat's Llama-2 separator
    // " </s><s>", which it appends after EVERY assistant reply, the last one included, so its sequence ends
    // "... </s><s>" and that trailing <s> is labelled (label 1: the model is taught to emit BOS after EOS). The
    // chat template ends the conversation at the last </s>, so position 2055 is padding here. This is axolotl's
    // quirk, not a tokenisation difference: all 2055 real tokens and their labels are identical.
    assert.deepEqual(differing(batch.inputIds, fx.input_ids), [2055]);
    assert.deepEqual(differing(batch.labels, fx.labels), [2055]);
    assert.deepEqual(differing(batch.attentionMask, mask), [2055]);
    assert.deepEqual([fx.input_ids[2055], fx.labels[2055], fx.attention_mask[2055]], [tok.bosId, tok.bosId, true]);
    assert.deepEqual([batch.inputIds[2055], batch.labels[2055], batch.attentionMask[2055]], [0, IGNORE_INDEX, 0]);
    assert.equal(got.inputIds.length, 2055);
    assert.equal(fx.input_ids[2054], tok.eosId);

    // What is learned: the six replies, each with its " </s>" ('▁', '</s>'); no <s> is doubled.
    const learned = labelledRuns(tok, got);
    assert.equal(learned.length, 6);
    for (const run of learned) assert.ok(run.endsWith('|▁|</s>'), run.slice(-40));
    assert.equal(got.inputIds[0], tok.bosId);
    assert.notEqual(got.inputIds[1], tok.bosId);
    assert.equal(count(got.inputIds, tok.bosId ?? -1), 6);
    t.diagnostic(`2055/2055 real tokens and labels equal axolotl's; ${batch.numLossTokens} loss targets`);
  });
});

describe('BOS appears once', { skip }, () => {
  const opts: SftTokenizeOptions = { maxLength: 512 };

  it('text: the post-processor adds BOS, unless the text already starts with it', () => {
    const tok = A.llama2();
    const a = tokenizeSftExample(tok, { kind: 'text', text: 'Hello world' }, opts);
    const b = tokenizeSftExample(tok, { kind: 'text', text: '<s>Hello world' }, opts);
    assert.deepEqual(Array.from(a.inputIds), [1, 15043, 3186, 2]);
    assert.deepEqual(Array.from(b.inputIds), Array.from(a.inputIds));
    // text trains on every token (position 0 is never a target after the shift)
    assert.deepEqual(Array.from(a.labels), Array.from(a.inputIds));
  });

  it('prompt + completion strings: one encoding of the whole text, BOS once, prompt tokens masked', () => {
    const tok = A.llama2();
    const prompt = 'Question: What is the capital of France?\nAnswer:';
    const ex = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt, completion: ' Paris.' }, opts);
    const whole = tok.encode(`${prompt} Paris.`);
    assert.deepEqual(Array.from(ex.inputIds), [...whole, tok.eosId]);
    assert.equal(count(ex.inputIds, 1), 1);
    assert.deepEqual(labelledRuns(tok, ex), ['▁Paris|.|</s>']);
    // Why one encoding: on its own the completion would get SentencePiece's leading '▁' as an extra token.
    assert.deepEqual(tok.tokens(tok.encode(' Paris.', { addSpecialTokens: false })), ['▁', '▁Paris', '.']);
    // A prompt that already starts with <s>: still one BOS.
    const ex2 = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: `<s>${prompt}`, completion: ' Paris.' }, opts);
    assert.deepEqual(Array.from(ex2.inputIds), Array.from(ex.inputIds));
  });

  it('a chat template that writes <s> itself is not given a second one; one that does not gets it from the post-processor', () => {
    const tok = A.llama2();
    const tpl = llama2ChatTemplate();
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello!' },
      { role: 'user', content: 'Bye' },
      { role: 'assistant', content: 'Goodbye!' },
    ];
    const withBos = tokenizeSftExample(tok, { kind: 'messages', messages }, { ...opts, chatTemplate: tpl });
    assert.equal(withBos.inputIds[0], 1);
    assert.notEqual(withBos.inputIds[1], 1);
    assert.equal(count(withBos.inputIds, 1), 2, 'one <s> per [INST] turn');
    const noBos = tokenizeSftExample(tok, { kind: 'messages', messages }, { ...opts, chatTemplate: tpl.replace(/bos_token \+ /g, '') });
    assert.equal(noBos.inputIds[0], 1);
    assert.equal(count(noBos.inputIds, 1), 1);
    assert.deepEqual(labelledRuns(tok, withBos), ['▁Hello|!|▁|</s>', '▁Good|bye|!|▁|</s>']);
  });
});

describe('EOS keeps its label', { skip }, () => {
  it('GPT-2 (pad = EOS = <|endoftext|>): EOS appended once, labelled, attended; padding is told apart by the mask', () => {
    const tok = A.gpt2();
    const eos = tok.eosId ?? -1;
    const a = tokenizeSftExample(tok, { kind: 'text', text: 'Hello there' }, { maxLength: 64 });
    assert.deepEqual(Array.from(a.inputIds), [15496, 612, eos]);
    const b = tokenizeSftExample(tok, { kind: 'text', text: 'Hello there<|endoftext|>' }, { maxLength: 64 });
    assert.deepEqual(Array.from(b.inputIds), Array.from(a.inputIds), 'EOS already last: not added again');
    const c = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: 'Q: hi\nA:', completion: ' hello' }, { maxLength: 64 });
    assert.equal(c.labels[c.labels.length - 1], eos);
    const noEos = tokenizeSftExample(tok, { kind: 'text', text: 'Hello there' }, { maxLength: 64, addEos: false });
    assert.deepEqual(Array.from(noEos.inputIds), [15496, 612]);

    const batch = collate([a, c], { padTokenId: eos });
    const T = batch.seq;
    // row 0: [Hello, there, EOS, pad...]: the real EOS is attended and labelled, the pads (same id) are not
    assert.equal(batch.inputIds[2], eos);
    assert.equal(batch.attentionMask[2], 1);
    assert.equal(batch.labels[2], eos);
    for (let t = 3; t < T; t++) {
      assert.equal(batch.inputIds[t], eos);
      assert.equal(batch.attentionMask[t], 0);
      assert.equal(batch.labels[t], IGNORE_INDEX);
    }
  });

  it('chat templates: the end-of-turn token is learned (ChatML <|im_end|>)', () => {
    const tok = chatmlTokenizer();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'ortx', 'qwen2.5'));
    assert.ok(tpl);
    const ex = tokenizeSftExample(
      tok,
      {
        kind: 'messages',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Capital of France?' },
          { role: 'assistant', content: 'Paris.' },
          { role: 'user', content: 'And Italy?' },
          { role: 'assistant', content: 'Rome.' },
        ],
      },
      { maxLength: 256, chatTemplate: tpl },
    );
    assert.deepEqual(labelledRuns(tok, ex), ['Paris|.|<|im_end|>', 'R|ome|.|<|im_end|>']);
    // assistantOnlyLoss: false trains on the whole rendered conversation
    const all = tokenizeSftExample(tok, { kind: 'messages', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }, { maxLength: 256, chatTemplate: tpl, assistantOnlyLoss: false });
    assert.deepEqual(Array.from(all.labels), Array.from(all.inputIds));
  });
});

describe('loss masks', { skip }, () => {
  it('conversational prompt/completion: only the completion is learned, not an assistant turn inside the prompt', () => {
    const tok = chatmlTokenizer();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'ortx', 'qwen2.5'));
    assert.ok(tpl);
    const prompt: ChatMessage[] = [
      { role: 'user', content: 'Capital of France?' },
      { role: 'assistant', content: 'Paris.' },
      { role: 'user', content: 'And Italy?' },
    ];
    const completion: ChatMessage[] = [{ role: 'assistant', content: 'Rome.' }];
    const ex = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt, completion }, { maxLength: 256, chatTemplate: tpl });
    assert.deepEqual(labelledRuns(tok, ex), ['R|ome|.|<|im_end|>']);
    // the same conversation as messages learns both replies
    const asMessages = tokenizeSftExample(tok, { kind: 'messages', messages: [...prompt, ...completion] }, { maxLength: 256, chatTemplate: tpl });
    assert.deepEqual(Array.from(asMessages.inputIds), Array.from(ex.inputIds));
    assert.deepEqual(labelledRuns(tok, asMessages), ['Paris|.|<|im_end|>', 'R|ome|.|<|im_end|>']);
    // completionOnlyLoss: false -> the assistant turns of the whole conversation
    const both = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt, completion }, { maxLength: 256, chatTemplate: tpl, completionOnlyLoss: false });
    assert.deepEqual(labelledRuns(tok, both), ['Paris|.|<|im_end|>', 'R|ome|.|<|im_end|>']);
    // both off: everything after the prompt's generation header, i.e. the completion and the template's trailing newline
    const rest = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt, completion }, { maxLength: 256, chatTemplate: tpl, assistantOnlyLoss: false });
    assert.deepEqual(labelledRuns(tok, rest), ['R|ome|.|<|im_end|>|Ċ']);
  });

  it('prompt/completion strings: a token that straddles the prompt/completion boundary is learned', () => {
    const tok = A.gpt2();
    const ex = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: 'The answ', completion: 'er is 4' }, { maxLength: 64 });
    assert.deepEqual(tok.tokens(Array.from(ex.inputIds)), ['The', 'Ġanswer', 'Ġis', 'Ġ4', '<|endoftext|>']);
    assert.deepEqual(labelledRuns(tok, ex), ['Ġanswer|Ġis|Ġ4|<|endoftext|>']);
  });

  it('prompt/completion strings with completionOnlyLoss: false train on every token', () => {
    const tok = A.llama2();
    const ex = tokenizeSftExample(tok, { kind: 'prompt_completion', prompt: 'Q:', completion: ' A.' }, { maxLength: 64, completionOnlyLoss: false });
    assert.deepEqual(Array.from(ex.labels), Array.from(ex.inputIds));
  });

  it('a template that refuses the conversation gives a DataError for that row; no template is a configuration error', () => {
    const tok = A.llama2();
    const ex: SftExample = { kind: 'messages', messages: [{ role: 'assistant', content: 'first' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] };
    assert.throws(
      () => tokenizeSftExample(tok, ex, { maxLength: 64, chatTemplate: llama2ChatTemplate() }, where),
      (e: unknown) => e instanceof DataError && e.field === 'messages' && e.message === `train.jsonl:3: field 'messages': chat template raised: Conversation roles must alternate user/assistant/user/assistant/...`,
    );
    assert.throws(
      () => tokenizeSftExample(tok, ex, { maxLength: 64 }, where),
      (e: unknown) => e instanceof AlignkitError && !(e instanceof DataError) && /has conversational rows but the tokenizer has no chat template/.test(e.message),
    );
  });
});

describe('truncation', { skip }, () => {
  const tok = () => A.llama2();
  const ex: SftExample = { kind: 'prompt_completion', prompt: 'one two three four five six', completion: ' seven eight' };
  // <s> ▁one ▁two ▁three ▁four ▁five ▁six | ▁seven ▁eight </s>  = 10 tokens
  const full = () => tokenizeSftExample(tok(), ex, { maxLength: 64 });

  it('default: an over-long example is a DataError naming file and line', () => {
    assert.equal(full().inputIds.length, 10);
    assert.throws(
      () => tokenizeSftExample(tok(), ex, { maxLength: 8 }, where),
      (e: unknown) =>
        e instanceof DataError && e.line === 3 && e.message === `train.jsonl:3: example has 10 tokens, more than max_length 8 (raise max_length, or set truncation to 'right' or 'left')`,
    );
  });

  it("'right' keeps the start, 'left' keeps the end and the leading BOS", () => {
    const f = full();
    const r = tokenizeSftExample(tok(), { ...ex, completion: ' seven eight nine' }, { maxLength: 9, truncation: 'right' });
    assert.equal(r.truncated, true);
    assert.deepEqual(tok().tokens(Array.from(r.inputIds)), ['<s>', '▁one', '▁two', '▁three', '▁four', '▁five', '▁six', '▁seven', '▁eight']);
    assert.deepEqual(Array.from(r.labels).slice(7), [tok().tokenToId('▁seven'), tok().tokenToId('▁eight')]);
    const l = tokenizeSftExample(tok(), ex, { maxLength: 6, truncation: 'left' });
    assert.equal(l.truncated, true);
    assert.deepEqual(Array.from(l.inputIds), [1, ...Array.from(f.inputIds).slice(-5)]);
    assert.deepEqual(Array.from(l.labels), [f.labels[0], ...Array.from(f.labels).slice(-5)]);
    assert.equal(f.truncated, false);
  });

  it('truncation that leaves nothing to learn is an error for that row', () => {
    assert.throws(
      () => tokenizeSftExample(tok(), ex, { maxLength: 5, truncation: 'right' }, where),
      (e: unknown) => e instanceof DataError && e.message === 'train.jsonl:3: no token left to learn after truncation to 5 tokens',
    );
  });

  it('bad options', () => {
    assert.throws(() => tokenizeSftExample(tok(), ex, { maxLength: 1 }), /maxLength must be an integer >= 2/);
    assert.throws(() => tokenizeSftExample(tok(), ex, { maxLength: 8, truncation: 'middle' as 'left' }), /truncation must be/);
  });
});
