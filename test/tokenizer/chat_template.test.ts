// Chat templates: byte-identical renders of huggingface.js's 53 end-to-end cases, real templates from model
// folders and llama.cpp render a sample conversation, and the assistant-token mask for completion-only loss —
// checked against axolotl's Llama-2-chat tokenization with labels (../shared/assets/sft/axolotl).
//
// Not used: sft/axolotl/conversation.tokenized.json (Vicuna format). Axolotl built it by tokenizing each turn on
// its own, so it holds the literal text "</s>" as ordinary pieces followed by an appended EOS, and doubled
// spaces from per-turn '▁' prefixes — a whole-conversation template render cannot produce that by design.
// chat_templates/ollama/templates.jsonl holds Go templates (Ollama), not Jinja; only its qwen38 .jinja is used.
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ChatTemplateError,
  Tokenizer,
  applyChatTemplate,
  loadChatTemplate,
  renderWithAssistantMask,
  selectChatTemplate,
  strftime,
} from '../../src/tokenizer/index.ts';
import type { ChatMessage } from '../../src/tokenizer/index.ts';
import * as A from './assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
/** huggingface.js mocks the clock to this instant in its jinja tests. */
const FIXED_NOW = new Date('2025-07-10T12:00:00Z');

const SAMPLE: ChatMessage[] = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'Hi there' },
  { role: 'assistant', content: 'Hello! How can I help?' },
  { role: 'user', content: 'What is 2+2?' },
];
const TOOLS = [
  {
    type: 'function',
    function: { name: 'get_weather', description: 'Get the weather for a city', parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] } },
  },
];

// Llama-2-chat format (written here from the format: BOS [INST] <<SYS>>…<</SYS>> user [/INST] answer EOS …).
const LLAMA2_CHAT = `{%- if messages[0]['role'] == 'system' -%}
  {%- set system = messages[0]['content'] -%}
  {%- set loop_messages = messages[1:] -%}
{%- else -%}
  {%- set system = none -%}
  {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
  {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') -}}
  {%- endif -%}
  {%- if message['role'] == 'user' -%}
    {%- set content = message['content'] | trim -%}
    {%- if loop.first and system is not none -%}
      {%- set content = '<<SYS>>\\n' + system + '\\n<</SYS>>\\n\\n' + content -%}
    {%- endif -%}
    {{- bos_token + '[INST] ' + content + ' [/INST]' -}}
  {%- else -%}
    {{- ' ' + (message['content'] | trim) + ' ' + eos_token -}}
  {%- endif -%}
{%- endfor -%}`;

describe('applyChatTemplate', () => {
  it('strftime and strftime_now (fixed clock), raise_exception, named templates', () => {
    const d = new Date(2025, 6, 10, 9, 5, 7);
    assert.equal(strftime(d, '%d %b %Y, %A %B %H:%M:%S %I%p %j %%'), '10 Jul 2025, Thursday July 09:05:07 09AM 191 %');
    assert.equal(applyChatTemplate("{{ strftime_now('%Y-%m-%d') }}", [], { now: d }), '2025-07-10');
    assert.throws(() => applyChatTemplate("{{ raise_exception('no system role') }}", []), (e: Error) => e instanceof ChatTemplateError && /chat template raised: no system role/.test(e.message));
    assert.throws(() => applyChatTemplate('{% for %}', []), ChatTemplateError);
    const named = [
      { name: 'default', template: 'D{{ messages | length }}' },
      { name: 'tool_use', template: 'T{{ tools | length }}' },
    ];
    assert.equal(applyChatTemplate(named, SAMPLE), 'D4');
    assert.equal(applyChatTemplate(named, SAMPLE, { tools: TOOLS }), 'T1');
    assert.equal(selectChatTemplate(named, 'default', true), 'D{{ messages | length }}');
    assert.throws(() => selectChatTemplate(named, 'rag'), /chat template 'rag' not found \(have: default, tool_use\)/);
  });

  it('loadChatTemplate: chat_template.jinja (+ additional_chat_templates), tokenizer_config.json, none', () => {
    const d = mkdtempSync(join(tmpdir(), 'alignkit-chat-'));
    try {
      writeFileSync(join(d, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'default', template: 'cfg' }] }));
      assert.deepEqual(loadChatTemplate(d), [{ name: 'default', template: 'cfg' }]);
      writeFileSync(join(d, 'chat_template.jinja'), 'file');
      assert.equal(loadChatTemplate(d), 'file');
      mkdirSync(join(d, 'additional_chat_templates'));
      writeFileSync(join(d, 'additional_chat_templates', 'rag.jinja'), 'rag');
      assert.deepEqual(loadChatTemplate(d), [{ name: 'default', template: 'file' }, { name: 'rag', template: 'rag' }]);
      rmSync(join(d, 'chat_template.jinja'));
      rmSync(join(d, 'additional_chat_templates'), { recursive: true });
      writeFileSync(join(d, 'tokenizer_config.json'), '{}');
      assert.equal(loadChatTemplate(d), null);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('huggingface.js jinja end-to-end cases', { skip }, () => {
  it('all 53 render cases render byte-identically', (t: TestContext) => {
    type E2E = { chat_template: string; data: Record<string, unknown> & { messages: ChatMessage[] }; target: string };
    const all = A.readAssetJson('chat_templates', 'hfjs', 'jinja_e2e_cases.json') as Record<string, Record<string, E2E>>;
    let n = 0;
    for (const section of ['default_templates', 'custom_templates']) {
      for (const [name, c] of Object.entries(all[section])) {
        const { messages, add_generation_prompt, bos_token, eos_token, tools, documents, ...extra } = c.data;
        const out = applyChatTemplate(c.chat_template, messages, {
          addGenerationPrompt: add_generation_prompt as boolean | undefined,
          bosToken: bos_token as string | undefined,
          eosToken: eos_token as string | undefined,
          tools: tools as unknown[] | undefined,
          documents: documents as unknown[] | undefined,
          extra,
          now: FIXED_NOW,
        });
        assert.equal(out, c.target, `${section} / ${name}`);
        n++;
      }
    }
    assert.equal(n, 53);
    t.diagnostic(`${n}/53 byte-identical`);
  });
});

describe('real chat templates render a sample conversation', { skip }, () => {
  it('model folders: ortx phi-3-mini, qwen2.5, qwen3, v5/qwen2.5-synthetic, v5/smollm3, phi-4-mini-reasoning, gpt-oss; llama3-daulet', (t: TestContext) => {
    const dirs = [
      ['tokenizers', 'ortx', 'phi-3-mini'],
      ['tokenizers', 'ortx', 'qwen2.5'],
      ['tokenizers', 'ortx', 'qwen3'],
      ['tokenizers', 'ortx', 'v5', 'qwen2.5-synthetic'],
      ['tokenizers', 'ortx', 'v5', 'smollm3'],
      ['tokenizers', 'ortx', 'phi-4-mini-reasoning'],
      ['tokenizers', 'ortx', 'gpt-oss'],
      ['tokenizers', 'llama3-daulet'],
    ];
    for (const parts of dirs) {
      const dir = A.asset(...parts);
      const tpl = loadChatTemplate(dir);
      assert.ok(tpl !== null, `${dir}: no chat template found`);
      const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
      const tokenOf = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
      const out = applyChatTemplate(tpl, SAMPLE, { addGenerationPrompt: true, bosToken: tokenOf(cfg.bos_token), eosToken: tokenOf(cfg.eos_token), now: FIXED_NOW });
      assert.ok(out.includes('Hello! How can I help?') && out.includes('What is 2+2?'), parts.join('/'));
      // SmolLM3's tools branch applies `| string` to a mapping, which @huggingface/jinja 0.5.11 does not support.
      if (parts.includes('smollm3')) continue;
      const withTools = applyChatTemplate(tpl, SAMPLE, { addGenerationPrompt: true, bosToken: tokenOf(cfg.bos_token), eosToken: tokenOf(cfg.eos_token), tools: TOOLS, now: FIXED_NOW });
      assert.ok(withTools.includes('What is 2+2?'));
    }
    t.diagnostic(`${dirs.length}/${dirs.length} folders render; ${dirs.length - 1} of them also with tools (not SmolLM3)`);
  });

  it('the 17 llama.cpp templates and Ollama qwen38', (t: TestContext) => {
    const dir = A.asset('llamacpp', 'templates');
    const files = readdirSync(dir).filter((f) => f.endsWith('.jinja')).map((f) => join(dir, f));
    files.push(A.asset('chat_templates', 'ollama', 'qwen38_chat_template.jinja'));
    assert.equal(files.length, 18);
    // Extra variables some templates read: firefunction-v2 takes `functions` (a JSON string) and `datetime`.
    const extra = { functions: JSON.stringify(TOOLS), datetime: '2025-07-10' };
    let ok = 0;
    for (const f of files) {
      const tpl = readFileSync(f, 'utf8');
      const needsTools = /tool_use|firefunction|functionary-medium-v3\.1/.test(f);
      let messages = SAMPLE;
      // Gemma-2 refuses a system message, through raise_exception; render without it.
      if (/gemma/.test(f)) {
        assert.throws(() => applyChatTemplate(tpl, SAMPLE, { bosToken: '<bos>', addGenerationPrompt: true }), /chat template raised: System role not supported/);
        messages = SAMPLE.slice(1);
      }
      const out = applyChatTemplate(tpl, messages, { addGenerationPrompt: true, bosToken: '<s>', eosToken: '</s>', tools: needsTools ? TOOLS : undefined, extra, now: FIXED_NOW });
      assert.ok(out.includes('What is 2+2?'), f);
      ok++;
    }
    t.diagnostic(`${ok}/${files.length} render`);
  });
});

// ------------------------------------------------------------------------------------------ assistant mask

/** GPT-2's tokenizer with ChatML's two special tokens added, to exercise ChatML templates (no Qwen tokenizer.json
 *  is among the assets). */
function chatmlTokenizer(): Tokenizer {
  const j = A.readAssetJson('tokenizers', 'gpt2-gpt-neox-tests', 'tokenizer.json') as { added_tokens: unknown[] };
  const tok = (id: number, content: string) => ({ id, content, special: true, normalized: false, lstrip: false, rstrip: false, single_word: false });
  return Tokenizer.fromFiles({
    tokenizerJson: { ...j, added_tokens: [...j.added_tokens, tok(50257, '<|im_start|>'), tok(50258, '<|im_end|>')] },
    tokenizerConfig: { eos_token: '<|im_end|>', pad_token: '<|endoftext|>', bos_token: null },
    source: 'gpt2 + ChatML tokens',
  });
}

/** The masked tokens, decoded run by run. */
function maskedRuns(tok: Tokenizer, ids: number[], mask: number[]): string[] {
  const runs: string[] = [];
  let cur: number[] = [];
  for (let i = 0; i <= ids.length; i++) {
    if (i < ids.length && mask[i]) cur.push(ids[i]);
    else if (cur.length) {
      runs.push(tok.tokens(cur).join('|'));
      cur = [];
    }
  }
  return runs;
}

describe('assistant-token mask', { skip }, () => {
  const convo: ChatMessage[] = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi there' },
    { role: 'assistant', content: 'Hello! How can I help?' },
    { role: 'user', content: 'What is 2+2? Answer after [/INST] please' },
    { role: 'assistant', content: 'It is 4. [/INST] <|assistant|> is just text here.' },
  ];

  it('Phi-3 (Llama-2 vocabulary, phi-3 template): exactly the replies and their <|end|>', () => {
    const tok = A.phi3();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'ortx', 'phi-3-mini'));
    assert.ok(tpl);
    const r = renderWithAssistantMask(tok, tpl, convo);
    assert.equal(r.addedSpecialTokens, true); // phi-3's post-processor adds nothing anyway
    const end = tok.tokenToId('<|end|>') ?? -1;
    // Masked ids, in order, are exactly each reply's own tokens followed by <|end|>.
    const masked = r.ids.filter((_, i) => r.assistantMask[i]);
    const want: number[] = [];
    for (const m of convo) if (m.role === 'assistant') want.push(...tok.encode(m.content as string, { addSpecialTokens: false }), end);
    assert.deepEqual(masked, want);
    assert.equal(maskedRuns(tok, r.ids, r.assistantMask).length, 2);
    // Template tokens (role headers, the final <|endoftext|>) and user text stay 0.
    assert.equal(r.assistantMask[r.ids.length - 1], 0);
    assert.equal(tok.decode(masked.filter((id) => id !== end)), 'Hello! How can I help? It is 4. [/INST] <|assistant|> is just text here.');
  });

  it('axolotl Llama-2-chat ground truth: same input ids and -100 pattern', (t: TestContext) => {
    const tok = A.llama2();
    const fx = A.readAssetJson('sft', 'axolotl', 'conversation.tokenized_llama2chat.json') as { input_ids: number[]; labels: number[]; attention_mask: boolean[] };
    const conv = A.readAssetJson('sft', 'axolotl', 'conversation.json') as { conversations: Array<{ from: string; value: string }> };
    // The fixture uses Llama-2's default system prompt; read it back from the fixture's own tokens.
    const sys = /<<SYS>>\n([\s\S]*?)\n<<\/SYS>>/.exec(tok.decode(fx.input_ids.slice(0, 200)));
    assert.ok(sys);
    const messages: ChatMessage[] = [{ role: 'system', content: sys[1] }, ...conv.conversations.map((m) => ({ role: m.from === 'human' ? 'user' : 'assistant', content: m.value }))];
    const r = renderWithAssistantMask(tok, LLAMA2_CHAT, messages);
    assert.equal(r.addedSpecialTokens, false, 'the render starts with <s>: no second BOS');
    const n = fx.attention_mask.filter(Boolean).length; // 2056 real tokens, then padding
    // FastChat's Llama-2 separator is " </s><s>", so axolotl's sequence ends with one more <s> than the template
    // renders; that token is also the fixture's only label outside the assistant replies (an artifact).
    assert.equal(n, r.ids.length + 1);
    assert.equal(fx.input_ids[n - 1], tok.bosId);
    assert.deepEqual(r.ids, fx.input_ids.slice(0, n - 1));
    const labels = r.ids.map((id, i) => (r.assistantMask[i] ? id : -100));
    assert.deepEqual(labels, fx.labels.slice(0, n - 1));
    t.diagnostic(`${r.ids.length}/${r.ids.length} input ids and labels equal (${labels.filter((x) => x !== -100).length} learned tokens, 6 replies)`);
  });

  it('Llama-2 tokenizer: a template without BOS gets it from the post-processor; one with BOS is not doubled', () => {
    const tok = A.llama2();
    const r = renderWithAssistantMask(tok, LLAMA2_CHAT.replace(/bos_token \+ /g, ''), convo);
    assert.equal(r.addedSpecialTokens, true);
    assert.equal(r.ids[0], 1);
    assert.notEqual(r.ids[1], 1);
    const r2 = renderWithAssistantMask(tok, LLAMA2_CHAT, convo);
    assert.equal(r2.ids.filter((id) => id === 1).length, 2, 'one <s> per [INST] turn, none doubled');
    assert.equal(r2.ids[0], 1);
    assert.notEqual(r2.ids[1], 1);
  });

  it('ChatML (Qwen2.5 template): <|im_end|> learned, the newline after it and the headers not', () => {
    const tok = chatmlTokenizer();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'ortx', 'qwen2.5'));
    assert.ok(tpl);
    const r = renderWithAssistantMask(tok, tpl, convo);
    assert.deepEqual(maskedRuns(tok, r.ids, r.assistantMask), [
      'Hello|!|ĠHow|Ġcan|ĠI|Ġhelp|?|<|im_end|>',
      'It|Ġis|Ġ4|.|Ġ[/|INST|]|Ġ<|||ass|istant|||>|Ġis|Ġjust|Ġtext|Ġhere|.|<|im_end|>',
    ]);
    // Tool calls (content null): the whole call up to <|im_end|> is learned; the tool's answer is not.
    const tools: ChatMessage[] = [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: null, tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Paris' } } }] },
      { role: 'tool', content: '22C' },
      { role: 'assistant', content: 'It is 22C.' },
    ];
    const rt = renderWithAssistantMask(tok, tpl, tools, { tools: TOOLS });
    const runs = maskedRuns(tok, rt.ids, rt.assistantMask);
    assert.equal(runs.length, 2);
    assert.ok(runs[0].startsWith('<|tool|_|call|>|Ċ|{"|name') && runs[0].endsWith('</|tool|_|call|>|<|im_end|>'), runs[0]);
    assert.equal(runs[1], 'It|Ġis|Ġ22|C|.|<|im_end|>');
  });

  it('Llama-3 template: content and <|eot_id|>; the text already has <|begin_of_text|>', () => {
    const tok = A.llama3();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'llama3-daulet'));
    assert.ok(tpl);
    const r = renderWithAssistantMask(tok, tpl, convo);
    assert.equal(r.addedSpecialTokens, false);
    assert.equal(r.ids.filter((id) => id === 128000).length, 1);
    const runs = maskedRuns(tok, r.ids, r.assistantMask);
    assert.deepEqual(runs[0], 'Hello|!|ĠHow|Ġcan|ĠI|Ġhelp|?|<|eot_id|>');
    assert.equal(runs.length, 2);
  });

  it('{% generation %} blocks: spans come from the template; same mask as prefix renders', () => {
    const tok = chatmlTokenizer();
    const gen =
      "{% for m in messages %}{{ '<|im_start|>' + m.role + '\\n' }}{% if m.role == 'assistant' %}{% generation %}{{ m.content + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}" +
      "{% else %}{{ m.content + '<|im_end|>\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const a = renderWithAssistantMask(tok, gen, convo);
    const b = renderWithAssistantMask(tok, gen, convo, { method: 'prefix' });
    assert.equal(a.text, b.text);
    assert.ok(!a.text.includes('\uE000'));
    assert.deepEqual(a.ids, b.ids);
    assert.deepEqual(a.assistantMask, b.assistantMask);
    // SmolLM3's own template has generation blocks around the whole assistant turn, header and newline included
    // (with a system prompt it runs in /think mode, so no empty think block).
    const smol = loadChatTemplate(A.asset('tokenizers', 'ortx', 'v5', 'smollm3'));
    assert.ok(smol);
    const s = renderWithAssistantMask(tok, smol, convo, { now: FIXED_NOW });
    assert.equal(maskedRuns(tok, s.ids, s.assistantMask)[0], '<|im_start|>|ass|istant|Ċ|Hello|!|ĠHow|Ġcan|ĠI|Ġhelp|?|<|im_end|>|Ċ');
    assert.throws(() => renderWithAssistantMask(tok, LLAMA2_CHAT, convo, { method: 'generation' }), /no \{% generation %\} blocks/);
  });

  it('a template that rewrites earlier turns (Qwen3 drops the think block) is refused, not guessed', () => {
    const tok = chatmlTokenizer();
    const tpl = loadChatTemplate(A.asset('tokenizers', 'ortx', 'qwen3'));
    assert.ok(tpl);
    assert.throws(() => renderWithAssistantMask(tok, tpl, convo), (e: Error) => e instanceof ChatTemplateError && /assistant message 2 renders differently/.test(e.message));
    // A single exchange is fine.
    const r = renderWithAssistantMask(tok, tpl, convo.slice(0, 3));
    assert.equal(maskedRuns(tok, r.ids, r.assistantMask)[0], 'Hello|!|ĠHow|Ġcan|ĠI|Ġhelp|?|<|im_end|>');
  });
});
