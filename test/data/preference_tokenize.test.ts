// Preference tokenisation: prompt / completion split, BOS once, EOS appended and kept, chat templates, the shared
// prompt when a token straddles the boundary, truncation modes, and option / row errors.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.ts';
import {
  toPreferenceExample,
  toUnpairedExample,
  tokenizePreference,
  tokenizeUnpaired,
  type PreferenceExample,
  type PreferenceTokenizeOptions,
} from '../../src/data/preference.ts';
import { CHATML_TEMPLATE, writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import * as A from '../tokenizer/assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
const dir = mkdtempSync(join(tmpdir(), 'alignkit-preftok-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The tiny chat model's byte-level tokenizer: id = byte value; 256 <|endoftext|> (pad), 257 <|im_start|>,
 *  258 <|im_end|> (EOS); no BOS. */
let tinyTok: Tokenizer | null = null;
function tiny(): Tokenizer {
  tinyTok ??= loadTokenizer(writeTinyChatModel(join(dir, 'tiny')));
  return tinyTok;
}
const IM_START = 257;
const IM_END = 258;
const bytes = (s: string): number[] => Array.from(new TextEncoder().encode(s));
const ids = (a: Int32Array): number[] => Array.from(a);
const pair = (prompt: PreferenceExample['prompt'], chosen: PreferenceExample['chosen'], rejected: PreferenceExample['rejected']): PreferenceExample => ({
  prompt,
  chosen,
  rejected,
  margin: null,
  scoreChosen: null,
  scoreRejected: null,
});
const where = { file: 'pairs.jsonl', line: 4 };

describe('byte-level tokenizer (tiny chat model)', () => {
  it('standard strings: prompt bytes, completion bytes + EOS; margin and source pass through', () => {
    const tok = tiny();
    const got = tokenizePreference(tok, { ...pair('Hi:', ' A', ' B!'), margin: 1.5 }, { maxLength: 64 }, where);
    assert.deepEqual(ids(got.promptIds), [72, 105, 58]);
    assert.deepEqual(ids(got.chosenIds), [32, 65, IM_END]);
    assert.deepEqual(ids(got.rejectedIds), [32, 66, 33, IM_END]);
    assert.equal(got.margin, 1.5);
    assert.equal(got.truncated, false);
    assert.deepEqual(got.source, where);
    assert.equal(tokenizePreference(tok, pair('Hi:', ' A', ' B'), { maxLength: 64 }).source, undefined);
  });

  it('an empty completion is EOS alone; a completion already ending with EOS gets no second one', () => {
    const tok = tiny();
    const got = tokenizePreference(tok, pair('Q:', '', ' x<|im_end|>'), { maxLength: 64 });
    assert.deepEqual(ids(got.chosenIds), [IM_END]);
    assert.deepEqual(ids(got.rejectedIds), [32, 120, IM_END]);
  });

  it('conversational with the ChatML template: generation prompt in the prompt; the turn end "<|im_end|>\\n" counts as EOS', () => {
    const tok = tiny();
    const ex = toPreferenceExample({ prompt: [{ role: 'user', content: 'hi' }], chosen: [{ role: 'assistant', content: 'Yes' }], rejected: [{ role: 'assistant', content: 'No' }] }, where);
    const got = tokenizePreference(tok, ex, { maxLength: 64, chatTemplate: CHATML_TEMPLATE });
    assert.deepEqual(ids(got.promptIds), [IM_START, ...bytes('user\nhi'), IM_END, 10, IM_START, ...bytes('assistant\n')]);
    assert.deepEqual(ids(got.chosenIds), [...bytes('Yes'), IM_END, 10]);
    assert.deepEqual(ids(got.rejectedIds), [...bytes('No'), IM_END, 10]);
    // The tokenizer's own chat_template (the tiny model's is ChatML) is the default.
    assert.deepEqual(tokenizePreference(tok, ex, { maxLength: 64 }), got);
  });

  it('unpaired: same rules, label kept (a kto_en_demo-style row)', () => {
    const tok = tiny();
    const ex = toUnpairedExample({ messages: [{ role: 'user', content: '660-549695?' }, { role: 'assistant', content: '660 - 549695 = -549035' }], label: true }, where);
    const got = tokenizeUnpaired(tok, ex, { maxLength: 128 }, where);
    assert.equal(tok.decode(ids(got.promptIds)), '<|im_start|>user\n660-549695?<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(tok.decode(ids(got.completionIds)), '660 - 549695 = -549035<|im_end|>\n');
    assert.equal(got.label, true);
    assert.deepEqual(got.source, where);
    const s = tokenizeUnpaired(tok, { prompt: 'Q:', completion: ' no', label: false }, { maxLength: 16 });
    assert.deepEqual([ids(s.promptIds), ids(s.completionIds), s.label], [bytes('Q:'), [...bytes(' no'), IM_END], false]);
  });

  it('a template that renders the prompt differently once the response follows: DataError; no template: AlignkitError', () => {
    const tok = tiny();
    const odd = "{% if messages[-1]['role'] == 'assistant' %}A:{% endif %}{% for m in messages %}{{ m['content'] }}\n{% endfor %}";
    const ex = pair([{ role: 'user', content: 'q' }], [{ role: 'assistant', content: 'a' }], [{ role: 'assistant', content: 'b' }]);
    assert.throws(() => tokenizePreference(tok, ex, { maxLength: 64, chatTemplate: odd }, where), (e: unknown) => e instanceof DataError && e.field === 'chosen' && /renders the prompt differently/.test(e.message) && e.line === 4);
    const noTemplate = A.assetsDir === null ? null : A.gpt2();
    if (noTemplate) assert.throws(() => tokenizePreference(noTemplate, ex, { maxLength: 64 }), (e: unknown) => e instanceof AlignkitError && !(e instanceof DataError) && /no chat template/.test(e.message));
  });
});

describe('BOS once (Llama-2 tokenizer, whose post-processor adds BOS)', { skip }, () => {
  it('strings: prompt + completion encoded as one text and split; BOS once; no lone "▁" before the completion', () => {
    const tok = A.llama2();
    const prompt = 'Question: What is the capital of France?\nAnswer:';
    const got = tokenizePreference(tok, pair(prompt, ' Paris.', ' Rome.'), { maxLength: 64 });
    // tokenizer(prompt + completion) + EOS, split where the prompt ends
    assert.deepEqual([...ids(got.promptIds), ...ids(got.chosenIds)], [...tok.encode(`${prompt} Paris.`), 2]);
    assert.deepEqual(ids(got.promptIds), [1, 894, 29901, 1724, 338, 278, 7483, 310, 3444, 29973, 13, 22550, 29901]);
    assert.deepEqual(tok.tokens(ids(got.chosenIds)), ['▁Paris', '.', '</s>']);
    assert.deepEqual(tok.tokens(ids(got.rejectedIds)), ['▁Rome', '.', '</s>']);
    // encoding " Paris." on its own would give ['▁', '▁Paris', '.']: the model would learn a sequence it never emits
    assert.deepEqual(tok.tokens(tok.encode(' Paris.', { addSpecialTokens: false })), ['▁', '▁Paris', '.']);
  });

  it('a prompt that already starts with "<s>" gets no second BOS; a completion ending with "</s>" no second EOS', () => {
    const tok = A.llama2();
    const a = tokenizePreference(tok, pair('<s>Answer:', ' yes</s>', ' no'), { maxLength: 64 });
    assert.equal(a.promptIds[0], 1);
    assert.notEqual(a.promptIds[1], 1);
    assert.deepEqual(tok.tokens(ids(a.chosenIds)), ['▁yes', '</s>']);
    const b = tokenizePreference(tok, pair('Answer:', ' yes', ' no'), { maxLength: 64 });
    assert.deepEqual(ids(a.promptIds), ids(b.promptIds));
  });

  it('conversational with the Llama-2 chat template (which writes bos_token itself): one BOS, EOS from the template', () => {
    const tok = A.llama2();
    const cases = A.readAssetJson('chat_templates', 'hfjs', 'jinja_e2e_cases.json') as { default_templates: { llama: { chat_template: string } } };
    const template = cases.default_templates.llama.chat_template;
    const ex = pair([{ role: 'user', content: 'Hi' }], [{ role: 'assistant', content: 'Hello' }], [{ role: 'assistant', content: 'Go away' }]);
    const got = tokenizePreference(tok, ex, { maxLength: 64, chatTemplate: template });
    assert.equal(tok.decode(ids(got.promptIds)), '<s> [INST] Hi [/INST]');
    assert.equal(ids(got.promptIds).filter((x) => x === 1).length, 1);
    assert.equal(got.promptIds[0], 1);
    assert.deepEqual(tok.tokens(ids(got.chosenIds)), ['▁Hello', '▁', '</s>']);
    assert.equal(ids(got.chosenIds).filter((x) => x === 2).length, 1);
    // a conversation the template refuses ("roles must alternate") is a DataError of the row
    const bad = pair([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }], [{ role: 'assistant', content: 'x' }], [{ role: 'assistant', content: 'y' }]);
    assert.throws(() => tokenizePreference(tok, bad, { maxLength: 64, chatTemplate: template }, where), (e: unknown) => e instanceof DataError && e.field === 'prompt' && /must alternate/.test(e.message));
  });

  it('keep_end truncation keeps the leading BOS', () => {
    const tok = A.llama2();
    const prompt = 'one two three four five six seven eight nine ten:';
    const full = tokenizePreference(tok, pair(prompt, ' yes', ' no'), { maxLength: 64 });
    const cut = tokenizePreference(tok, pair(prompt, ' yes', ' no'), { maxLength: 64, maxPromptLength: 5, truncation: 'keep_end' });
    assert.deepEqual(ids(cut.promptIds), [1, ...ids(full.promptIds).slice(-4)]);
    assert.equal(cut.truncated, true);
    const start = tokenizePreference(tok, pair(prompt, ' yes', ' no'), { maxLength: 64, maxPromptLength: 5, truncation: 'keep_start' });
    assert.deepEqual(ids(start.promptIds), ids(full.promptIds).slice(0, 5));
  });
});

describe('a token straddling the prompt end (GPT-2 byte-level BPE)', { skip }, () => {
  it('moves to the completion, and the prompt is what both encodings share', () => {
    const tok = A.gpt2();
    // "The sky is bl" + "ue." -> The|Ġsky|Ġis|Ġblue|. : 'Ġblue' starts in the prompt and ends in the completion
    const both = tokenizePreference(tok, pair('The sky is bl', 'ue.', 'ack.'), { maxLength: 32 });
    assert.deepEqual(tok.tokens(ids(both.promptIds)), ['The', 'Ġsky', 'Ġis']);
    assert.deepEqual(tok.tokens(ids(both.chosenIds)), ['Ġblue', '.', '<|endoftext|>']);
    assert.deepEqual(tok.tokens(ids(both.rejectedIds)), ['Ġblack', '.', '<|endoftext|>']);
    // Only the chosen side straddles; 'Ġbl' is a whole prompt token for "bl\n", but the prompt must be shared.
    const one = tokenizePreference(tok, pair('The sky is bl', 'ue.', '\n'), { maxLength: 32 });
    assert.deepEqual(tok.tokens(ids(one.promptIds)), ['The', 'Ġsky', 'Ġis']);
    assert.deepEqual(tok.tokens(ids(one.rejectedIds)), ['Ġbl', 'Ċ', '<|endoftext|>']);
  });
});

describe('truncation (one token per byte: lengths are character counts)', () => {
  const ex = pair('abcdefghij', '12', '1234'); // prompt 10, chosen 2 + EOS = 3, rejected 4 + EOS = 5
  const run = (o: PreferenceTokenizeOptions) => {
    const got = tokenizePreference(tiny(), ex, o, where);
    const text = (a: Int32Array): string => tiny().decode(ids(a));
    return { prompt: text(got.promptIds), chosen: text(got.chosenIds), rejected: text(got.rejectedIds), truncated: got.truncated };
  };

  it('fits: nothing is cut', () => {
    assert.deepEqual(run({ maxLength: 15 }), { prompt: 'abcdefghij', chosen: '12<|im_end|>', rejected: '1234<|im_end|>', truncated: false });
  });

  it("'error' (the default): a DataError with the counts and the fix", () => {
    assert.throws(
      () => run({ maxLength: 12 }),
      (e: unknown) =>
        e instanceof DataError &&
        e.message === "pairs.jsonl:4: prompt (10 tokens) + longest response (5 tokens) = 15 tokens, more than max_length 12 (raise the limit, or set truncation to 'keep_end' or 'keep_start')",
    );
    assert.throws(() => run({ maxLength: 100, maxPromptLength: 8 }), (e: unknown) => e instanceof DataError && /prompt has 10 tokens, more than max_prompt_length 8/.test(e.message));
  });

  it('keep_end / keep_start: the prompt gives up tokens first (to fit, keeping at least half of maxLength)', () => {
    assert.deepEqual(run({ maxLength: 12, truncation: 'keep_end' }), { prompt: 'defghij', chosen: '12<|im_end|>', rejected: '1234<|im_end|>', truncated: true });
    assert.deepEqual(run({ maxLength: 12, truncation: 'keep_start' }), { prompt: 'abcdefg', chosen: '12<|im_end|>', rejected: '1234<|im_end|>', truncated: true });
  });

  it('maxPromptLength caps the prompt even when the pair would fit', () => {
    assert.deepEqual(run({ maxLength: 100, maxPromptLength: 4, truncation: 'keep_end' }), { prompt: 'ghij', chosen: '12<|im_end|>', rejected: '1234<|im_end|>', truncated: true });
    assert.deepEqual(run({ maxLength: 100, maxPromptLength: 4, truncation: 'keep_start' }).prompt, 'abcd');
  });

  it('then the completions are cut at their end (EOS may be cut off)', () => {
    // maxLength 8: prompt budget max(8 - 5, 4) = 4, leaving 4 tokens per completion
    assert.deepEqual(run({ maxLength: 8, truncation: 'keep_end' }), { prompt: 'ghij', chosen: '12<|im_end|>', rejected: '1234', truncated: true });
    // with maxPromptLength 6: prompt 6, completions 2
    assert.deepEqual(run({ maxLength: 8, maxPromptLength: 6, truncation: 'keep_start' }), { prompt: 'abcdef', chosen: '12', rejected: '12', truncated: true });
  });

  it('unpaired examples follow the same rules', () => {
    const got = tokenizeUnpaired(tiny(), { prompt: 'abcdefghij', completion: '1234', label: true }, { maxLength: 8, truncation: 'keep_end' });
    assert.deepEqual([tiny().decode(ids(got.promptIds)), tiny().decode(ids(got.completionIds)), got.truncated], ['ghij', '1234', true]);
  });

  it('invalid options are configuration errors (AlignkitError, not DataError)', () => {
    const bad = (o: PreferenceTokenizeOptions, re: RegExp) =>
      assert.throws(() => tokenizePreference(tiny(), ex, o), (e: unknown) => e instanceof AlignkitError && !(e instanceof DataError) && re.test(e.message));
    bad({ maxLength: 1 }, /maxLength must be an integer >= 2/);
    bad({ maxLength: 10, maxPromptLength: 10 }, /maxPromptLength must be an integer in \[1, maxLength - 1 = 9\]/);
    bad({ maxLength: 10, maxPromptLength: 0 }, /maxPromptLength/);
    bad({ maxLength: 10, truncation: 'left' as 'keep_end' }, /truncation must be 'error', 'keep_end' or 'keep_start', got 'left'/);
  });

  it('mixed string / message turns in a hand-built example are a DataError', () => {
    assert.throws(() => tokenizePreference(tiny(), pair('p', [{ role: 'assistant', content: 'x' }], 'y'), { maxLength: 64 }, where), (e: unknown) => e instanceof DataError && /all be strings or all message lists/.test(e.message));
  });
});
