// Preference row formats: TRL's standard / conversational / implicit-prompt pairs, margins and scores,
// LLaMA-Factory's ShareGPT ranking, v1 and KTO files, HH-RLHF, and the errors for bad rows.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataError } from '../../src/data/errors.ts';
import {
  implicitStringPrompt,
  isPairedRow,
  toPreferenceExample,
  toUnpairedExample,
  unpairPreferenceExample,
  type PreferenceExample,
} from '../../src/data/preference.ts';
import { openPreferenceRowSource } from '../../src/data/preference_dataset.ts';
import * as A from '../shared_assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
const where = { file: 'prefs.jsonl', line: 7 };
const u = (content: string) => ({ role: 'user', content });
const a = (content: string) => ({ role: 'assistant', content });
const sys = (content: string) => ({ role: 'system', content });

/** Asserts that converting `row` throws a DataError at `field` whose message matches `re`. */
function rejects(row: Record<string, unknown>, field: string | null, re: RegExp, convert: (r: Record<string, unknown>, w: typeof where) => unknown = toPreferenceExample): void {
  assert.throws(
    () => convert(row, where),
    (e: unknown) => {
      assert.ok(e instanceof DataError, `expected DataError, got ${String(e)}`);
      assert.equal(e.file, 'prefs.jsonl');
      assert.equal(e.line, 7);
      assert.equal(e.field, field);
      assert.match(e.message, re);
      assert.ok(e.message.startsWith(`prefs.jsonl:7: ${field === null ? '' : `field '${field}': `}`), e.message);
      return true;
    },
  );
}

describe('standard and conversational pairs (TRL)', () => {
  it('explicit string prompt', () => {
    const ex = toPreferenceExample({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' }, where);
    assert.deepEqual(ex, { prompt: 'The sky is', chosen: ' blue.', rejected: ' green.', margin: null, scoreChosen: null, scoreRejected: null });
  });

  it('explicit conversational prompt', () => {
    const row = { prompt: [sys('Be brief.'), u('What color is the sky?')], chosen: [a('It is blue.')], rejected: [a('It is green.')] };
    const ex = toPreferenceExample(row, where);
    assert.deepEqual(ex.prompt, [sys('Be brief.'), u('What color is the sky?')]);
    assert.deepEqual(ex.chosen, [a('It is blue.')]);
    assert.deepEqual(ex.rejected, [a('It is green.')]);
  });

  it('implicit conversational prompt: the shared messages before the first differing assistant turn (TRL docs example)', () => {
    const row = { chosen: [u('What color is the sky?'), a('It is blue.')], rejected: [u('What color is the sky?'), a('It is green.')] };
    const ex = toPreferenceExample(row, where);
    assert.deepEqual(ex.prompt, [u('What color is the sky?')]);
    assert.deepEqual(ex.chosen, [a('It is blue.')]);
    assert.deepEqual(ex.rejected, [a('It is green.')]);
  });

  it('implicit conversational prompt: multi-turn, and a shared assistant turn is cut back to the boundary', () => {
    const long = { chosen: [u('hi'), a('hello'), u('2+2?'), a('4')], rejected: [u('hi'), a('hello'), u('2+2?'), a('5')] };
    const ex = toPreferenceExample(long, where);
    assert.deepEqual(ex.prompt, [u('hi'), a('hello'), u('2+2?')]);
    assert.deepEqual([ex.chosen, ex.rejected], [[a('4')], [a('5')]]);
    // Diverging user turns: the prompt ends before the last assistant turn both share.
    const diverge = { chosen: [u('hi'), a('hello'), u('bye')], rejected: [u('hi'), a('hello'), u('thanks'), a('welcome')] };
    const ex2 = toPreferenceExample(diverge, where);
    assert.deepEqual(ex2.prompt, [u('hi')]);
    assert.deepEqual(ex2.chosen, [a('hello'), u('bye')]);
    assert.deepEqual(ex2.rejected, [a('hello'), u('thanks'), a('welcome')]);
  });

  it('implicit string prompt: split after the last shared "\\n\\nAssistant:"', () => {
    const row = {
      chosen: '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?\n\nAssistant: It is Paris.',
      rejected: '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?\n\nAssistant: It is Rome.',
    };
    const ex = toPreferenceExample(row, where);
    assert.equal(ex.prompt, '\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Capital of France?\n\nAssistant:');
    // The shared "It is" stays in the completions (TRL's character split would move it into the prompt).
    assert.equal(ex.chosen, ' It is Paris.');
    assert.equal(ex.rejected, ' It is Rome.');
  });

  it('implicit string prompt without the marker: the common prefix, its trailing space moved to the completions (TRL extract_prompt)', () => {
    assert.equal(implicitStringPrompt('The sky is blue.', 'The sky is green.'), 'The sky is'.length);
    const ex = toPreferenceExample({ chosen: 'The sky is blue.', rejected: 'The sky is green.' }, where);
    assert.deepEqual([ex.prompt, ex.chosen, ex.rejected], ['The sky is', ' blue.', ' green.']);
    // No space before the divergence: cut exactly there.
    assert.deepEqual(implicitStringPrompt('2+2=4', '2+2=5'), 4);
    // A marker that is only partly shared does not count.
    assert.equal(implicitStringPrompt('Q\n\nAssistant: yes', 'Q\n\nAssistan'), 'Q\n\nAssistan'.length);
  });

  it('margin, and margin = score_chosen - score_rejected', () => {
    assert.equal(toPreferenceExample({ prompt: 'p', chosen: 'a', rejected: 'b', margin: 2.5 }, where).margin, 2.5);
    const ex = toPreferenceExample({ prompt: 'p', chosen: 'a', rejected: 'b', score_chosen: 8, score_rejected: 3.5 }, where);
    assert.deepEqual([ex.margin, ex.scoreChosen, ex.scoreRejected], [4.5, 8, 3.5]);
    // an explicit margin wins over the scores
    assert.equal(toPreferenceExample({ prompt: 'p', chosen: 'a', rejected: 'b', margin: 1, score_chosen: 8, score_rejected: 3 }, where).margin, 1);
    // null counts as absent
    assert.equal(toPreferenceExample({ prompt: 'p', chosen: 'a', rejected: 'b', margin: null }, where).margin, null);
  });

  it('an empty response is a valid answer (HH-RLHF prefers saying nothing in some rows)', () => {
    const ex = toPreferenceExample({ prompt: 'Say something rude.', chosen: '', rejected: ' No way, idiot.' }, where);
    assert.equal(ex.chosen, '');
  });
});

describe('LLaMA-Factory formats', () => {
  it('ShareGPT ranking: conversations + chosen/rejected turn objects, system as a turn or a field', () => {
    const row = {
      conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Hello' }, { from: 'human', value: '2+2?' }],
      chosen: { from: 'gpt', value: '4' },
      rejected: { from: 'gpt', value: '5' },
      system: 'Be exact.',
    };
    const ex = toPreferenceExample(row, where);
    assert.deepEqual(ex.prompt, [sys('Be exact.'), u('Hi'), a('Hello'), u('2+2?')]);
    assert.deepEqual([ex.chosen, ex.rejected], [[a('4')], [a('5')]]);
    const asTurn = toPreferenceExample({ ...row, system: undefined, conversations: [{ from: 'system', value: 'Be exact.' }, ...row.conversations] }, where);
    assert.deepEqual(asTurn.prompt, ex.prompt);
  });

  it('ShareGPT ranking errors name the reply field without an index', () => {
    rejects({ conversations: [{ from: 'human', value: 'Hi' }], chosen: { from: 'gpt' }, rejected: { from: 'gpt', value: 'x' } }, 'chosen.value', /missing/);
    rejects({ conversations: [{ from: 'human', value: 'Hi' }], chosen: { from: 'human', value: 'y' }, rejected: { from: 'gpt', value: 'x' } }, 'chosen', /assistant's turn/);
    rejects({ conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Yo' }], chosen: { from: 'gpt', value: 'y' }, rejected: { from: 'gpt', value: 'x' } }, 'conversations[1].role', /ends with an assistant turn/);
    // positions are the file's, also when a top-level system prompt was put in front
    rejects({ system: 'S', conversations: [{ from: 'human', value: 'Hi' }, { from: 'gpt', value: 'Yo' }], chosen: { from: 'gpt', value: 'y' }, rejected: { from: 'gpt', value: 'x' } }, 'conversations[1].role', /ends with an assistant turn/);
    rejects({ system: 'S', messages: [u('Q'), u('A')], label: true }, 'messages[1]', /last message must be the assistant's completion/, toUnpairedExample);
  });

  it('v1: chosen_messages / rejected_messages with text parts, implicit prompt', () => {
    const part = (value: string) => [{ type: 'text', value }];
    const row = {
      chosen_messages: [{ role: 'system', content: part('S'), loss_weight: 0 }, { role: 'user', content: part('Q') }, { role: 'assistant', content: part('yes'), loss_weight: 1 }],
      rejected_messages: [{ role: 'system', content: part('S'), loss_weight: 0 }, { role: 'user', content: part('Q') }, { role: 'assistant', content: part(' no'), loss_weight: 1 }],
    };
    const ex = toPreferenceExample(row, where);
    assert.deepEqual(ex.prompt, [sys('S'), u('Q')]);
    assert.deepEqual([ex.chosen, ex.rejected], [[a('yes')], [a(' no')]]);
    rejects({ ...row, chosen_messages: [{ role: 'user', content: [{ type: 'image', value: 'x.png' }] }] }, 'chosen_messages[0].content[0].type', /only text parts/);
    rejects({ chosen_messages: row.chosen_messages }, 'rejected_messages', /missing/);
  });

  it('dpo_en_demo.json: all 300 rows convert; literal rows 81 and 2', { skip }, async () => {
    const src = await openPreferenceRowSource(A.asset('sft', 'llama-factory', 'dpo_en_demo.json'));
    try {
      assert.equal(src.length, 300);
      const all: PreferenceExample[] = [];
      for (let i = 0; i < src.length; i++) all.push(toPreferenceExample(await src.get(i), { file: src.path, line: src.lineOf(i) }));
      assert.ok(all.every((ex) => Array.isArray(ex.prompt) && Array.isArray(ex.chosen) && ex.chosen.length === 1 && ex.chosen[0].role === 'assistant'));
      const r81 = all[80];
      assert.deepEqual(r81.prompt, [u('answer 256626720691 + 1646615806005?\nLimit your response to mathematical expressions and symbols.')]);
      assert.deepEqual(r81.chosen, [a('256626720691 + 1646615806005 = 1903242526696')]);
      assert.match((r81.rejected as { content: string }[])[0].content, /^To find the sum of 256626720691 and 1646615806005/);
      // Row 2 starts with a system turn ({"from": "system"}).
      const r2 = all[1].prompt as { role: string; content: string }[];
      assert.deepEqual(r2.map((m) => m.role), ['system', 'user']);
      assert.match(r2[0].content, /^You are a teacher\. Given a task, you explain in simple steps/);
      // 114 single-question rows, 80 with a system prompt, the rest multi-turn (counted from the file).
      const roles = all.map((ex) => (ex.prompt as { role: string }[]).map((m) => m.role).join(','));
      assert.equal(roles.filter((r) => r === 'user').length, 114);
      assert.equal(roles.filter((r) => r === 'system,user').length, 80);
    } finally {
      await src.close();
    }
  });

  it('v1_dpo_demo.jsonl: all 10 rows convert; literal row 6', { skip }, async () => {
    const src = await openPreferenceRowSource(A.asset('sft', 'llama-factory', 'v1_dpo_demo.jsonl'));
    try {
      assert.equal(src.length, 10);
      const all: PreferenceExample[] = [];
      for (let i = 0; i < src.length; i++) all.push(toPreferenceExample(await src.get(i), { file: src.path, line: src.lineOf(i) }));
      for (const ex of all) assert.deepEqual((ex.prompt as { role: string }[]).map((m) => m.role), ['system', 'user']);
      const r6 = all[5];
      assert.deepEqual((r6.prompt as unknown[])[0], sys('You are an AI assistant that helps people find information.'));
      assert.match(((r6.prompt as { content: string }[])[1]).content, /^Q: Claim: "Ayn Rand spoke Spanish throughout her life/);
      assert.deepEqual(r6.chosen, [a('no')]);
      assert.match((r6.rejected as { content: string }[])[0].content, /^ No, the claim that Ayn Rand spoke Spanish/);
    } finally {
      await src.close();
    }
  });

  it('kto_en_demo.json: 300 rows, 150 desirable; the last message is the completion; literal rows 148 and 120', { skip }, async () => {
    const src = await openPreferenceRowSource(A.asset('sft', 'llama-factory', 'kto_en_demo.json'));
    try {
      assert.equal(src.length, 300);
      let desirable = 0;
      const all = [];
      for (let i = 0; i < src.length; i++) {
        const row = await src.get(i);
        assert.equal(isPairedRow(row), false);
        const ex = toUnpairedExample(row, { file: src.path, line: src.lineOf(i) });
        if (ex.label) desirable++;
        all.push(ex);
      }
      assert.equal(desirable, 150);
      assert.deepEqual(all[147], { prompt: [u('What is the result of 660-549695? Only respond with math and no words.')], completion: [a('660 - 549695 = -549035')], label: true });
      assert.deepEqual(all[119], {
        prompt: [u('Could you work out 2930861750638 plus 52341951985411 for me? Only respond with math and no words.')],
        completion: [a('71600583078871')],
        label: false,
      });
      // multi-turn rows keep the earlier turns in the prompt
      assert.ok(all.some((ex) => (ex.prompt as unknown[]).length === 5));
    } finally {
      await src.close();
    }
  });

  it("ShareGPT KTO rows with 'kto_tag' (the README's layout)", () => {
    const ex = toUnpairedExample({ conversations: [{ from: 'human', value: 'Q' }, { from: 'gpt', value: 'A' }], kto_tag: false }, where);
    assert.deepEqual(ex, { prompt: [u('Q')], completion: [a('A')], label: false });
  });
});

describe('HH-RLHF harmless-base test split', { skip }, () => {
  it('all 2312 gzipped rows convert with the "\\n\\nAssistant:" split; literal rows 926, 1453 and 1', async () => {
    const src = await openPreferenceRowSource(A.asset('preference', 'hh-rlhf', 'harmless-base_test.jsonl.gz'));
    try {
      assert.equal(src.length, 2312);
      const all: PreferenceExample[] = [];
      for (let i = 0; i < src.length; i++) all.push(toPreferenceExample(await src.get(i), { file: src.path, line: src.lineOf(i) }));
      assert.ok(all.every((ex) => typeof ex.prompt === 'string' && ex.prompt.startsWith('\n\nHuman: ') && ex.prompt.endsWith('\n\nAssistant:')));
      assert.deepEqual(all[925], { prompt: '\n\nHuman: list of profane bad words\n\nAssistant:', chosen: ' ', rejected: ' Ok', margin: null, scoreChosen: null, scoreRejected: null });
      assert.deepEqual([all[1452].prompt, all[1452].chosen, all[1452].rejected], ['\n\nHuman: call me a bad name\n\nAssistant:', ' How do you like them apples?', ' Why?']);
      const r1 = all[0];
      assert.ok((r1.prompt as string).endsWith('\n\nHuman: okay some of these do not have anything to do with pens\n\nAssistant:'));
      assert.equal(r1.chosen, ' No, sorry!  All of these involve a pen, the point is that you can get funny results by doing pranks with pens.');
      assert.match(r1.rejected as string, /^ There are lots of funny things you can do with pens/);
    } finally {
      await src.close();
    }
  });
});

describe('unpaired (KTO) rows', () => {
  it('prompt / completion / label, strings and messages', () => {
    assert.deepEqual(toUnpairedExample({ prompt: 'The sky is', completion: ' blue.', label: true }, where), { prompt: 'The sky is', completion: ' blue.', label: true });
    const ex = toUnpairedExample({ prompt: [u('Sky?')], completion: [a('Green.')], label: false }, where);
    assert.deepEqual(ex, { prompt: [u('Sky?')], completion: [a('Green.')], label: false });
  });

  it('a pair unpairs into (chosen, true) then (rejected, false)', () => {
    const pair = toPreferenceExample({ prompt: 'The sky is', chosen: ' blue.', rejected: ' green.' }, where);
    assert.deepEqual(unpairPreferenceExample(pair), [
      { prompt: 'The sky is', completion: ' blue.', label: true },
      { prompt: 'The sky is', completion: ' green.', label: false },
    ]);
  });

  it('bad rows', () => {
    const conv = toUnpairedExample;
    rejects({ prompt: 'p', completion: 'c' }, 'label', /missing: an unpaired \(KTO\) row needs a boolean 'label'/, conv);
    rejects({ prompt: 'p', completion: 'c', label: 'true' }, 'label', /expected true or false, got a string 'true'/, conv);
    rejects({ prompt: 'p', completion: 'c', label: 1 }, 'label', /expected true or false, got a number '1'/, conv);
    rejects({ messages: [u('Q'), a('A')], kto_tag: null }, 'label', /missing/, conv);
    rejects({ completion: 'c', label: true }, 'prompt', /missing/, conv);
    rejects({ prompt: '  ', completion: 'c', label: true }, 'prompt', /empty prompt/, conv);
    rejects({ prompt: 'p', completion: [a('x')], label: true }, 'completion', /expected a string like 'prompt', got a list/, conv);
    rejects({ messages: [u('Q'), u('A')], label: true }, 'messages[1]', /last message must be the assistant's completion/, conv);
    rejects({ messages: [a('A')], label: true }, 'messages', /no prompt before the completion/, conv);
    rejects({ text: 'hello' }, null, /no unpaired preference fields.*'text'/, conv);
  });
});

describe('bad preference rows: DataError with file, line and field', () => {
  it('chosen equal to rejected (after conversion)', () => {
    rejects({ prompt: 'p', chosen: ' same', rejected: ' same' }, 'rejected', /same as 'chosen'/);
    rejects({ prompt: [u('q')], chosen: [a('x')], rejected: [a('x')] }, 'rejected', /same as 'chosen'/);
    rejects({ chosen: 'Human: q Assistant: x', rejected: 'Human: q Assistant: x' }, 'rejected', /same as 'chosen'/);
    // the same reply written as a ShareGPT object and as a string
    rejects({ conversations: [{ from: 'human', value: 'q' }], chosen: { from: 'gpt', value: 'x' }, rejected: 'x' }, 'rejected', /same as 'chosen'/);
  });

  it('empty or missing prompt', () => {
    rejects({ prompt: '', chosen: 'a', rejected: 'b' }, 'prompt', /empty prompt/);
    rejects({ prompt: [], chosen: [a('a')], rejected: [a('b')] }, 'prompt', /empty prompt \(no messages\)/);
    rejects({ prompt: [u('  ')], chosen: [a('a')], rejected: [a('b')] }, 'prompt', /every message is blank/);
    rejects({ chosen: 'Yes.', rejected: 'No.' }, 'chosen', /share no prompt/);
    rejects({ chosen: [a('Yes.')], rejected: [a('No.')] }, 'chosen', /share no prompt before an assistant turn/);
  });

  it('missing rejected / chosen', () => {
    rejects({ prompt: 'p', chosen: 'a' }, 'rejected', /missing \(the row has 'chosen' but no 'rejected'\)/);
    rejects({ prompt: 'p', chosen: 'a', rejected: null }, 'rejected', /missing/);
    rejects({ prompt: 'p', rejected: 'b' }, 'chosen', /missing/);
    rejects({ prompt: 'p', completion: 'c' }, null, /no preference fields.*'prompt', 'completion'/);
    rejects({}, null, /the row has no fields/);
  });

  it('wrong types', () => {
    rejects({ prompt: 3, chosen: 'a', rejected: 'b' }, 'prompt', /expected a string or a message list, got a number/);
    rejects({ prompt: 'p', chosen: 'a', rejected: 5 }, 'rejected', /expected a string like 'prompt', got a number/);
    rejects({ prompt: [u('q')], chosen: 'a', rejected: [a('b')] }, 'chosen', /expected a message list like 'prompt', got a string/);
    rejects({ prompt: [u('q')], chosen: [u('a')], rejected: [a('b')] }, 'chosen[0].role', /must start with the assistant's turn/);
    rejects({ prompt: [{ role: 'bot', content: 'q' }], chosen: [a('a')], rejected: [a('b')] }, 'prompt[0].role', /unknown role 'bot'/);
    rejects({ prompt: [u('q'), a('partial')], chosen: [a('a')], rejected: [a('b')] }, 'prompt[1].role', /ends with an assistant turn/);
    rejects({ chosen: 'x y', rejected: ['x z'] }, 'rejected', /expected a string like 'chosen', got a list/);
    rejects({ chosen: { text: 'x' }, rejected: 'y' }, 'chosen', /expected a string or a message list, got an object/);
    rejects({ prompt: 'p', chosen: 'a', rejected: 'b', margin: '1' }, 'margin', /expected a finite number, got a string/);
    rejects({ prompt: 'p', chosen: 'a', rejected: 'b', score_chosen: 1 }, 'score_rejected', /missing \(the row has 'score_chosen'\)/);
    rejects({ prompt: 'p', chosen: 'a', rejected: 'b', score_rejected: 1 }, 'score_chosen', /missing/);
  });
});
