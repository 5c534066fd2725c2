// Layout conversion: literal rows, round trips, and real third-party files (LLaMA-Factory DPO / KTO / Alpaca demo
// sets, Anthropic HH-RLHF) from the shared assets.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConvertError, convertRow, detectFormat, toExample, parseHhTranscript } from '../../../src/data/prep/convert.ts';
import { readRows, type Row } from '../../../src/data/prep/stream.ts';
import { SKIP_NO_ASSETS, asset, assetsDir } from '../../shared_assets.ts';

async function rowsOf(p: string): Promise<Row[]> {
  const out: Row[] = [];
  for await (const { row } of readRows(p)) out.push(row);
  return out;
}

describe('convert: SFT layouts', () => {
  it('alpaca -> messages puts the input after the instruction; system and history become turns', () => {
    assert.deepEqual(convertRow({ instruction: 'Add the numbers.', input: '2 + 2', output: '4' }, 'messages'), [
      { messages: [{ role: 'user', content: 'Add the numbers.\n\n2 + 2' }, { role: 'assistant', content: '4' }] },
    ]);
    assert.deepEqual(convertRow({ instruction: 'And 3+3?', input: '', output: '6', system: 'Be brief.', history: [['1+1?', '2']] }, 'messages'), [
      { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '1+1?' }, { role: 'assistant', content: '2' }, { role: 'user', content: 'And 3+3?' }, { role: 'assistant', content: '6' }] },
    ]);
  });

  it('messages -> alpaca -> messages round-trips a multi-turn conversation', () => {
    const m = { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'q1' }, { role: 'assistant', content: 'a1' }, { role: 'user', content: 'q2' }, { role: 'assistant', content: 'a2' }] };
    const [alpaca] = convertRow(m, 'alpaca');
    assert.deepEqual(alpaca, { instruction: 'q2', input: '', output: 'a2', system: 'S', history: [['q1', 'a1']] });
    assert.deepEqual(convertRow(alpaca, 'messages'), [m]);
  });

  it('sharegpt <-> messages maps roles (human/gpt/system/observation) and the system field', () => {
    assert.deepEqual(convertRow({ system: 'S', conversations: [{ from: 'human', value: 'hi' }, { from: 'gpt', value: 'yo' }] }, 'messages'), [
      { messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }] },
    ]);
    assert.deepEqual(convertRow({ messages: [{ role: 'user', content: 'x' }, { role: 'tool', content: 'r' }, { role: 'assistant', content: [{ type: 'text', text: 'y' }] }] }, 'sharegpt'), [
      { conversations: [{ from: 'human', value: 'x' }, { from: 'observation', value: 'r' }, { from: 'gpt', value: 'y' }] },
    ]);
  });

  it('prompt_completion: strings for one plain turn, TRL conversational lists otherwise', () => {
    assert.deepEqual(convertRow({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }, 'prompt_completion'), [{ prompt: 'q', completion: 'a' }]);
    assert.deepEqual(convertRow({ messages: [{ role: 'system', content: 'S' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }, 'prompt_completion'), [
      { prompt: [{ role: 'system', content: 'S' }, { role: 'user', content: 'q' }], completion: [{ role: 'assistant', content: 'a' }] },
    ]);
    assert.deepEqual(convertRow({ prompt: 'q', completion: 'a' }, 'sharegpt'), [{ conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] }]);
  });

  it('refuses what cannot be converted, naming the field', () => {
    assert.throws(() => convertRow({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }, 'preference'), /no rejected answer/);
    assert.throws(() => convertRow({ messages: [{ role: 'user', content: 'q' }, { role: 'user', content: 'q2' }] }, 'alpaca'), /alternating user\/assistant/);
    assert.throws(() => convertRow({ messages: [{ role: 'wizard', content: 'q' }] }, 'sharegpt'), (e: Error) => e instanceof ConvertError && e.field === 'messages[0].role');
    assert.throws(() => convertRow({ messages: [{ role: 'user', content: [{ type: 'image', url: 'u' }] }] }, 'sharegpt'), (e: Error) => e instanceof ConvertError && e.field === 'messages[0].content[0]');
    assert.throws(() => detectFormat({ foo: 1 }), /cannot tell the layout/);
  });
});

describe('convert: preference and KTO', () => {
  it('TRL preference strings -> kto gives a desirable and an undesirable row', () => {
    assert.deepEqual(convertRow({ prompt: 'q', chosen: 'good', rejected: 'bad' }, 'kto'), [
      { prompt: 'q', completion: 'good', label: true },
      { prompt: 'q', completion: 'bad', label: false },
    ]);
    assert.deepEqual(convertRow({ prompt: 'q', chosen: 'good', rejected: 'bad' }, 'messages'), [{ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'good' }] }]);
  });

  it('an implicit prompt is the common start of chosen and rejected', () => {
    const row = {
      chosen: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'good' }],
      rejected: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'bad' }],
    };
    assert.deepEqual(convertRow(row, 'preference'), [{ prompt: 'q', chosen: 'good', rejected: 'bad' }]);
  });

  it('kto -> SFT keeps only desirable rows', () => {
    assert.deepEqual(convertRow({ prompt: 'q', completion: 'a', label: false }, 'messages'), []);
    assert.deepEqual(convertRow({ prompt: 'q', completion: 'a', label: true }, 'alpaca'), [{ instruction: 'q', input: '', output: 'a' }]);
  });

  it('parses HH-RLHF transcripts', () => {
    assert.deepEqual(parseHhTranscript('\n\nHuman: hi\n\nAssistant: hello\n\nHuman: bye\n\nAssistant: ok', 'chosen'), [
      { role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }, { role: 'user', content: 'bye' }, { role: 'assistant', content: 'ok' },
    ]);
  });
});

describe('convert: real third-party files', () => {
  it('LLaMA-Factory DPO demo (sharegpt + chosen/rejected objects) -> TRL preference, all 300 rows', async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const rows = await rowsOf(asset('sft', 'llama-factory', 'dpo_en_demo.json'));
    assert.equal(rows.length, 300);
    const out = rows.flatMap((r) => convertRow(r, 'preference'));
    assert.equal(out.length, 300);
    const first = rows[0] as { conversations: { value: string }[]; chosen: { value: string }; rejected: { value: string } };
    assert.equal(out[0].prompt, first.conversations[0].value);
    assert.equal(out[0].chosen, first.chosen.value);
    assert.equal(out[0].rejected, first.rejected.value);
    assert.match(String(out[0].prompt), /^Hi! I'd like to create a new language game simulating the first person perspective of a character named Angela\.$/);
  });

  it('LLaMA-Factory KTO demo (messages + bool label) -> TRL kto; Alpaca demo -> messages', async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const kto = await rowsOf(asset('sft', 'llama-factory', 'kto_en_demo.json'));
    const out = kto.flatMap((r) => convertRow(r, 'kto'));
    assert.equal(out.length, kto.length);
    const labels = kto.map((r) => r.label);
    assert.deepEqual(out.map((r) => r.label), labels);
    assert.ok(labels.includes(true) && labels.includes(false));
    const sft = kto.flatMap((r) => convertRow(r, 'messages'));
    assert.equal(sft.length, labels.filter((l) => l === true).length);
    const alpaca = await rowsOf(asset('sft', 'llama-factory', 'alpaca_en_demo.json'));
    const msgs = alpaca.flatMap((r) => convertRow(r, 'messages'));
    assert.equal(msgs.length, alpaca.length);
    assert.equal((msgs[0].messages as { content: string }[])[0].content, 'Describe a process of making crepes.');
  });

  it('Anthropic HH-RLHF (gzip JSONL) -> preference with the shared turns as the prompt', async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const rows = await rowsOf(asset('preference', 'hh-rlhf', 'harmless-base_test.jsonl.gz'));
    assert.equal(rows.length, 2312);
    const ex = toExample(rows[0]);
    assert.equal(ex.kind, 'preference');
    if (ex.kind !== 'preference') return;
    assert.deepEqual(ex.prompt.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user']);
    assert.equal(ex.prompt[0].content, 'what are some pranks with a pen i can do?');
    assert.equal(ex.prompt[2].content, 'yep');
    assert.equal(ex.prompt[4].content, 'okay some of these do not have anything to do with pens');
    assert.deepEqual(ex.chosen, [{ role: 'assistant', content: 'No, sorry!  All of these involve a pen, the point is that you can get funny results by doing pranks with pens.' }]);
    assert.equal(ex.rejected.length, 1);
    assert.match(ex.rejected[0].content, /^There are lots of funny things you can do with pens/);
    let converted = 0;
    for (const r of rows) {
      try {
        convertRow(r, 'preference');
        converted++;
      } catch (e) {
        assert.ok(e instanceof ConvertError);
      }
    }
    assert.ok(converted >= 2300, `${converted} of ${rows.length} converted`);
  });
});
