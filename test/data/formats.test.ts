// Row formats -> SFT examples: every converter with literal inputs and outputs, every error with its message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DataError } from '../../src/data/errors.ts';
import { toSftExample } from '../../src/data/formats.ts';

const at = { file: 'train.jsonl', line: 7 };
const conv = (row: Record<string, unknown>) => toSftExample(row, at);

/** Asserts that the row fails with exactly this message, and that the error carries file, line and field. */
function fails(row: Record<string, unknown>, field: string | null, message: string): void {
  assert.throws(
    () => conv(row),
    (e: unknown) => {
      assert.ok(e instanceof DataError, String(e));
      assert.equal(e.file, 'train.jsonl');
      assert.equal(e.line, 7);
      assert.equal(e.field, field);
      assert.equal(e.message, message);
      return true;
    },
  );
}

describe('formats: conversions', () => {
  it('text', () => {
    assert.deepEqual(conv({ text: 'Hello world.' }), { kind: 'text', text: 'Hello world.' });
  });

  it('prompt/completion strings (TRL standard prompt-completion)', () => {
    assert.deepEqual(conv({ prompt: 'Q: 2+2?\nA:', completion: ' 4' }), { kind: 'prompt_completion', prompt: 'Q: 2+2?\nA:', completion: ' 4' });
    // an empty prompt is allowed (unconditional completion)
    assert.deepEqual(conv({ prompt: '', completion: 'x' }), { kind: 'prompt_completion', prompt: '', completion: 'x' });
  });

  it('prompt/completion message lists (TRL conversational prompt-completion)', () => {
    const row = {
      prompt: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Capital of France?' }],
      completion: [{ role: 'assistant', content: 'Paris.' }],
    };
    assert.deepEqual(conv(row), { kind: 'prompt_completion', prompt: row.prompt, completion: row.completion });
  });

  it('messages (extra keys such as tool_calls are kept; an assistant tool call may have no content)', () => {
    const call = [{ type: 'function', function: { name: 'f', arguments: {} } }];
    const row = {
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: call },
        { role: 'tool', content: '42', name: 'f' },
        { role: 'assistant', content: 'It is 42.' },
      ],
    };
    assert.deepEqual(conv(row), { kind: 'messages', messages: row.messages });
  });

  it('ShareGPT conversations: speaker names mapped to roles, top-level system prepended', () => {
    const row = {
      system: 'You are terse.',
      conversations: [
        { from: 'human', value: 'a' },
        { from: 'gpt', value: 'b' },
        { from: 'User', value: 'c' },
        { from: 'function_call', value: '{"name":"f"}' },
        { from: 'observation', value: 'r1' },
        { from: 'function', value: 'r2' },
        { from: 'tool', value: 'r3' },
        { from: 'chatgpt', value: 'd' },
        { from: 'bing', value: 'e' },
        { from: 'assistant', value: 'f' },
      ],
    };
    assert.deepEqual(conv(row), {
      kind: 'messages',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'a' },
        { role: 'assistant', content: 'b' },
        { role: 'user', content: 'c' },
        { role: 'assistant', content: '{"name":"f"}' },
        { role: 'tool', content: 'r1' },
        { role: 'tool', content: 'r2' },
        { role: 'tool', content: 'r3' },
        { role: 'assistant', content: 'd' },
        { role: 'assistant', content: 'e' },
        { role: 'assistant', content: 'f' },
      ],
    });
    // a system turn inside the conversation wins over the top-level field
    assert.deepEqual(conv({ system: 'ignored', conversations: [{ from: 'system', value: 's' }, { from: 'human', value: 'q' }, { from: 'gpt', value: 'a' }] }), {
      kind: 'messages',
      messages: [
        { role: 'system', content: 's' },
        { role: 'user', content: 'q' },
        { role: 'assistant', content: 'a' },
      ],
    });
  });

  it('conversations holding {role, content} turns are plain messages', () => {
    const messages = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }];
    assert.deepEqual(conv({ conversations: messages }), { kind: 'messages', messages });
  });

  it('Alpaca: instruction + "\\n\\n" + input as the user turn, output as the assistant turn', () => {
    assert.deepEqual(conv({ instruction: 'Reverse the words.', input: 'hello world', output: 'world hello' }), {
      kind: 'messages',
      messages: [
        { role: 'user', content: 'Reverse the words.\n\nhello world' },
        { role: 'assistant', content: 'world hello' },
      ],
    });
    // empty / blank / missing / null input: the instruction alone
    for (const input of ['', '  ', undefined, null]) {
      assert.deepEqual(conv({ instruction: 'Say hi.', input, output: 'Hi!' }), {
        kind: 'messages',
        messages: [
          { role: 'user', content: 'Say hi.' },
          { role: 'assistant', content: 'Hi!' },
        ],
      });
    }
    // system and LLaMA-Factory history
    assert.deepEqual(conv({ system: 'Be kind.', history: [['q1', 'a1']], instruction: 'q2', input: 'x', output: 'a2' }), {
      kind: 'messages',
      messages: [
        { role: 'system', content: 'Be kind.' },
        { role: 'user', content: 'q1' },
        { role: 'assistant', content: 'a1' },
        { role: 'user', content: 'q2\n\nx' },
        { role: 'assistant', content: 'a2' },
      ],
    });
  });

  it('precedence: messages over prompt/completion over conversations over text over Alpaca; null fields count as absent', () => {
    const messages = [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }];
    assert.equal(conv({ messages, prompt: 'p', completion: 'c', text: 't' }).kind, 'messages');
    assert.equal(conv({ prompt: 'p', completion: 'c', text: 't' }).kind, 'prompt_completion');
    assert.deepEqual(conv({ messages: null, text: 't' }), { kind: 'text', text: 't' });
  });
});

describe('formats: errors name file, line and field', () => {
  it('no known fields', () => {
    fails({ question: 'q', answer: 'a' }, null, `train.jsonl:7: no SFT fields: expected 'text', 'prompt'+'completion', 'messages', 'conversations' or 'instruction'+'output'; the row has 'question', 'answer'`);
  });

  it('missing fields', () => {
    fails({ prompt: 'p' }, 'completion', `train.jsonl:7: field 'completion': missing (the row has 'prompt' but no 'completion')`);
    fails({ completion: 'c' }, 'prompt', `train.jsonl:7: field 'prompt': missing (the row has 'completion' but no 'prompt')`);
    fails({ instruction: 'i' }, 'output', `train.jsonl:7: field 'output': missing (the row has 'instruction' but no 'output')`);
    fails({ output: 'o' }, 'instruction', `train.jsonl:7: field 'instruction': missing (the row has 'output' but no 'instruction')`);
    fails({ messages: [{ content: 'x' }] }, 'messages[0].role', `train.jsonl:7: field 'messages[0].role': missing`);
    fails({ messages: [{ role: 'user' }] }, 'messages[0].content', `train.jsonl:7: field 'messages[0].content': missing`);
    fails({ conversations: [{ value: 'x' }] }, 'conversations[0].from', `train.jsonl:7: field 'conversations[0].from': missing`);
    fails({ conversations: [{ from: 'human' }] }, 'conversations[0].value', `train.jsonl:7: field 'conversations[0].value': missing`);
  });

  it('wrong types', () => {
    fails({ text: 5 }, 'text', `train.jsonl:7: field 'text': expected a string, got a number`);
    fails({ messages: 'hi' }, 'messages', `train.jsonl:7: field 'messages': expected a list of {role, content} messages, got a string`);
    fails({ messages: ['hi'] }, 'messages[0]', `train.jsonl:7: field 'messages[0]': expected a {role, content} object, got a string`);
    fails({ messages: [{ role: 'user', content: 3 }] }, 'messages[0].content', `train.jsonl:7: field 'messages[0].content': expected a string, got a number`);
    fails(
      { messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }] },
      'messages[0].content',
      `train.jsonl:7: field 'messages[0].content': multi-part (list) content is not supported; use a string`,
    );
    fails({ prompt: 'p', completion: ['c'] }, 'completion', `train.jsonl:7: field 'completion': expected a string like 'prompt', got a list (prompt and completion must both be strings or both message lists)`);
    fails({ prompt: [{ role: 'user', content: 'q' }], completion: 'c' }, 'completion', `train.jsonl:7: field 'completion': expected a message list like 'prompt', got a string (prompt and completion must both be strings or both message lists)`);
    fails({ prompt: 3, completion: 'c' }, 'prompt', `train.jsonl:7: field 'prompt': expected a string or a message list, got a number`);
    fails({ conversations: { from: 'human' } }, 'conversations', `train.jsonl:7: field 'conversations': expected a list of {from, value} turns, got an object`);
    fails({ conversations: [{ from: 'human', value: null }] }, 'conversations[0].value', `train.jsonl:7: field 'conversations[0].value': expected a string, got null`);
    fails({ instruction: 'i', input: 5, output: 'o' }, 'input', `train.jsonl:7: field 'input': expected a string, got a number`);
    fails({ instruction: 'i', output: 'o', history: [['q']] }, 'history[0]', `train.jsonl:7: field 'history[0]': expected a [user, assistant] pair of strings, got '["q"]'`);
  });

  it('unknown role names', () => {
    fails(
      { messages: [{ role: 'user', content: 'q' }, { role: 'bot', content: 'a' }] },
      'messages[1].role',
      `train.jsonl:7: field 'messages[1].role': unknown role 'bot' (valid: system, user, assistant, tool)`,
    );
    fails(
      { conversations: [{ from: 'human', value: 'q' }, { from: 'robot', value: 'a' }] },
      'conversations[1].from',
      `train.jsonl:7: field 'conversations[1].from': unknown role 'robot' (valid: human, user, gpt, assistant, chatgpt, bing, function_call, system, tool, function, observation)`,
    );
    fails(
      { prompt: [{ role: 'human', content: 'q' }], completion: [{ role: 'assistant', content: 'a' }] },
      'prompt[0].role',
      `train.jsonl:7: field 'prompt[0].role': unknown role 'human' (valid: system, user, assistant, tool)`,
    );
  });

  it('nothing to learn: empty completion, empty assistant message, no assistant turn', () => {
    fails({ text: '  ' }, 'text', `train.jsonl:7: field 'text': empty text: nothing to learn`);
    fails({ prompt: 'p', completion: ' ' }, 'completion', `train.jsonl:7: field 'completion': empty completion: nothing to learn`);
    fails({ instruction: 'i', output: '' }, 'output', `train.jsonl:7: field 'output': empty output: nothing to learn`);
    fails(
      { messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '' }] },
      'messages[1].content',
      `train.jsonl:7: field 'messages[1].content': empty assistant message: nothing to learn`,
    );
    fails({ messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }] }, 'messages', `train.jsonl:7: field 'messages': no assistant turn: nothing to learn`);
    fails({ messages: [] }, 'messages', `train.jsonl:7: field 'messages': empty message list`);
    fails(
      { prompt: [{ role: 'user', content: 'q' }], completion: [{ role: 'user', content: 'more' }] },
      'completion',
      `train.jsonl:7: field 'completion': no assistant turn: nothing to learn`,
    );
    fails(
      { system: 's', conversations: [{ from: 'human', value: 'q' }, { from: 'gpt', value: '' }] },
      'conversations[1].value',
      `train.jsonl:7: field 'conversations[1].value': empty assistant message: nothing to learn`,
    );
    fails({ conversations: [{ from: 'human', value: 'q' }] }, 'conversations', `train.jsonl:7: field 'conversations': no assistant turn (gpt/assistant): nothing to learn`);
  });
});
