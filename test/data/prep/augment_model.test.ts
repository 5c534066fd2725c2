// Model-based augmentation: the OpenAI-compatible endpoint client against a local node:http server (never the
// network), paraphrase / back-translation plumbing, and a tiny random model for local generation and
// contextual replacement (determinism and structure, not quality).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { writeTinyChatModel } from '../../../src/demo/tiny_chat.ts';
import {
  EndpointGenerator, LocalModelGenerator, backTranslateTexts, chatCompletionsUrl, checkTemplate, contextualReplace, cutAtStop,
  deriveSeed, leftContext, paraphraseTexts, proposedWord, renderTemplate, unescapeCli, type EndpointOptions,
} from '../../../src/data/prep/augment_model.ts';
import { DEFAULT_STOP_WORDS, segment } from '../../../src/data/prep/augment_text.ts';

describe('templates and small helpers', () => {
  it('renders {text}, unescapes command-line escapes, cuts at stop strings', () => {
    assert.equal(renderTemplate('Paraphrase: {text}\nParaphrase:', 'Hi there'), 'Paraphrase: Hi there\nParaphrase:');
    assert.equal(renderTemplate('{text} / {text}', 'a'), 'a / a');
    assert.equal(unescapeCli('Paraphrase: {text}\\nParaphrase:\\t\\\\n'), 'Paraphrase: {text}\nParaphrase:\t\\n');
    assert.throws(() => checkTemplate('Paraphrase:', '--template'), /--template must contain \{text\}/);
    assert.equal(cutAtStop('one\ntwo', ['\n']), 'one');
    assert.equal(cutAtStop('a END b ###', ['###', 'END']), 'a ');
    assert.equal(cutAtStop('abc', []), 'abc');
  });

  it('builds the chat-completions URL from a base URL', () => {
    assert.equal(chatCompletionsUrl('http://127.0.0.1:8000'), 'http://127.0.0.1:8000/v1/chat/completions');
    assert.equal(chatCompletionsUrl('http://127.0.0.1:8000/'), 'http://127.0.0.1:8000/v1/chat/completions');
    assert.equal(chatCompletionsUrl('http://h/v1'), 'http://h/v1/chat/completions');
    assert.equal(chatCompletionsUrl('https://h/api/v1/chat/completions'), 'https://h/api/v1/chat/completions');
    assert.equal(chatCompletionsUrl('http://h/proxy'), 'http://h/proxy/v1/chat/completions');
    assert.throws(() => chatCompletionsUrl('localhost:8000'), /--endpoint: expected an http:\/\/ or https:\/\/ URL/);
    assert.throws(() => chatCompletionsUrl('not a url'), /--endpoint: not a URL/);
  });

  it('reads the proposed word of a continuation and the left context of a word', () => {
    assert.equal(proposedWord(' brown fox'), 'brown');
    assert.equal(proposedWord("\n don't stop"), "don't");
    assert.equal(proposedWord('Ünïcode!'), 'Ünïcode');
    assert.equal(proposedWord(' , no'), null);
    assert.equal(proposedWord(''), null);
    const seg = segment('Hello,  big world.');
    assert.equal(leftContext(seg, 0), '');
    assert.equal(leftContext(seg, 1), 'Hello,');
    assert.equal(leftContext(seg, 2), 'Hello,  big');
  });

  it('derives distinct, repeatable seeds from a path', () => {
    assert.equal(deriveSeed(0, 1, 2), deriveSeed(0, 1, 2));
    const seeds = new Set([deriveSeed(0, 1, 0), deriveSeed(0, 0, 1), deriveSeed(1, 1, 0), deriveSeed(0, 1, 1), deriveSeed(0, 2, 0)]);
    assert.equal(seeds.size, 5);
    for (const s of seeds) assert.ok(Number.isSafeInteger(s) && s >= 0);
  });
});

// ------------------------------------------------------------------------------------------ endpoint

interface Seen {
  url: string;
  auth: string | undefined;
  body: { model: string; messages: { role: string; content: string }[]; max_tokens: number; temperature: number; top_p: number; seed: number; n: number; top_k?: number; stop?: string[] };
}

describe('OpenAI-compatible endpoint (local test server)', () => {
  let server: http.Server;
  let base = '';
  const seen: Seen[] = [];
  let inFlight = 0;
  let maxInFlight = 0;

  before(async () => {
    server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c) => (data += c));
      req.on('end', () => {
        const body = JSON.parse(data) as Seen['body'];
        seen.push({ url: req.url ?? '', auth: req.headers.authorization, body });
        const prompt = body.messages[body.messages.length - 1].content;
        // Counted for the WAIT prompts only (the concurrency test); a timed-out SLOW request may still be pending.
        const counted = prompt.startsWith('WAIT');
        if (counted) maxInFlight = Math.max(maxInFlight, ++inFlight);
        const reply = (status: number, payload: string): void => {
          if (counted) inFlight--;
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(payload);
        };
        const answer = (content: string): string => JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }] });
        if (prompt.includes('FAIL500')) return reply(500, JSON.stringify({ error: { message: 'model crashed', type: 'server_error' } }));
        if (prompt.includes('FAIL429')) return reply(429, 'Too Many Requests');
        if (prompt.includes('BADJSON')) return reply(200, '<html>oops</html>');
        if (prompt.includes('NOCHOICES')) return reply(200, JSON.stringify({ choices: [] }));
        if (prompt.includes('SLOW')) return void setTimeout(() => reply(200, answer('late')), 6000);
        if (prompt.includes('WAIT')) return void setTimeout(() => reply(200, answer(`done ${prompt.slice(-1)}`)), 60);
        // Back-translation: "Translate to French: X" -> "FR<X>", "Translate to English: FR<X>" -> "X again".
        let m = /^Translate to French: (.*)$/s.exec(prompt);
        if (m) return reply(200, answer(m[1].includes('NOPIVOT') ? '   ' : `FR<${m[1]}>`));
        m = /^Translate to English: FR<(.*)>$/s.exec(prompt);
        if (m) return reply(200, answer(m[1].includes('BACKFAIL') ? '' : `${m[1]} again`));
        if (prompt.includes('BACKFAIL')) return reply(500, JSON.stringify({ error: 'no way back' }));
        reply(200, answer(`  <${prompt}> (seed ${body.seed})\nsecond line`));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => server.close());

  const opts = (o: Partial<EndpointOptions> = {}): EndpointOptions => ({ url: base, model: 'tiny-paraphraser', timeoutMs: 5000, maxTokens: 32, temperature: 0.7, topP: 0.9, topK: 0, stop: ['\n'], concurrency: 4, ...o });

  it('posts one user message per prompt with the model, sampling options and seed; trims and cuts at the stop string', async () => {
    seen.length = 0;
    const gen = new EndpointGenerator(opts({ apiKey: 'k-123', system: 'You rewrite text.' }));
    const out = await paraphraseTexts(gen, 'Paraphrase: {text}', [{ text: 'Hello, world!', seed: 7 }]);
    assert.deepEqual(out, [{ ok: true, text: '<Paraphrase: Hello, world!> (seed 7)' }]);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, '/v1/chat/completions');
    assert.equal(seen[0].auth, 'Bearer k-123');
    assert.deepEqual(seen[0].body, {
      model: 'tiny-paraphraser',
      messages: [{ role: 'system', content: 'You rewrite text.' }, { role: 'user', content: 'Paraphrase: Hello, world!' }],
      max_tokens: 32, temperature: 0.7, top_p: 0.9, seed: 7, n: 1, stop: ['\n'],
    });
  });

  it('reports HTTP errors, malformed answers, timeouts and refused connections per prompt, in order', async () => {
    // generous enough that a loaded CI machine answers the prompt-only cases in time; SLOW answers after 6 s
    const gen = new EndpointGenerator(opts({ timeoutMs: 1500 }));
    const out = await gen.generate([
      { prompt: 'FAIL500', seed: 0 }, { prompt: 'ok', seed: 1 }, { prompt: 'FAIL429', seed: 2 }, { prompt: 'BADJSON', seed: 3 }, { prompt: 'NOCHOICES', seed: 4 }, { prompt: 'SLOW', seed: 5 },
    ]);
    assert.deepEqual(out, [
      { ok: false, error: 'endpoint answered HTTP 500: model crashed' },
      { ok: true, text: '<ok> (seed 1)' },
      { ok: false, error: 'endpoint answered HTTP 429: Too Many Requests' },
      { ok: false, error: 'endpoint answer is not JSON: <html>oops</html>' },
      { ok: false, error: 'endpoint answer has no choices[0].message.content string' },
      { ok: false, error: 'endpoint timed out after 1500 ms' },
    ]);
    // A port nobody listens on.
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await new EndpointGenerator(opts({ url: `http://127.0.0.1:${port}` })).generate([{ prompt: 'x', seed: 0 }]);
    assert.deepEqual(refused, [{ ok: false, error: 'endpoint request failed: ECONNREFUSED' }]);
  });

  it('keeps at most `concurrency` requests in flight and returns answers in request order', async () => {
    maxInFlight = 0;
    const gen = new EndpointGenerator(opts({ concurrency: 2 }));
    const out = await gen.generate([1, 2, 3, 4, 5].map((i) => ({ prompt: `WAIT${i}`, seed: i })));
    assert.deepEqual(out.map((r) => (r.ok ? r.text : r.error)), ['done 1', 'done 2', 'done 3', 'done 4', 'done 5']);
    assert.equal(maxInFlight, 2);
  });

  it('back-translates through a pivot, and says which pass failed', async () => {
    const gen = new EndpointGenerator(opts({ stop: [] }));
    const out = await backTranslateTexts(gen, 'Translate to French: {text}', 'Translate to English: {text}', [
      { text: 'the cat sat', seed: 1 }, { text: 'FAIL500 here', seed: 2 }, { text: 'x BACKFAIL', seed: 3 }, { text: 'NOPIVOT', seed: 4 },
    ]);
    assert.deepEqual(out, [
      { result: { ok: true, text: 'the cat sat again' }, pivot: 'FR<the cat sat>' },
      { result: { ok: false, error: 'translation: endpoint answered HTTP 500: model crashed' }, pivot: null },
      { result: { ok: true, text: '' }, pivot: 'FR<x BACKFAIL>' },
      { result: { ok: false, error: 'the translation is empty' }, pivot: '' },
    ]);
    // The second pass samples with its own seed stream.
    const back = seen.filter((s) => s.body.messages[0].content === 'Translate to English: FR<the cat sat>');
    assert.equal(back.at(-1)?.body.seed, deriveSeed(1, 1));
  });

  it('refuses a generator without a model name', () => {
    assert.throws(() => new EndpointGenerator(opts({ model: '' })), /--endpoint needs --endpoint-model NAME/);
  });
});

// ------------------------------------------------------------------------------------------ tiny model

describe('local model (tiny random Llama, byte-level tokenizer)', () => {
  const dir = writeTinyChatModel(fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-augment-tiny-')), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 3 });
  const gen = LocalModelGenerator.load(dir, { maxNewTokens: 10, stop: ['\n'], chat: false, trim: true, temperature: 1 });
  after(() => gen.close());

  it('paraphrases deterministically per seed, independent of the batch', async () => {
    const t = 'Paraphrase: {text}\nParaphrase:';
    const a = await paraphraseTexts(gen, t, [{ text: 'The cat sat.', seed: 11 }, { text: 'Dogs bark.', seed: 12 }]);
    const b = await paraphraseTexts(gen, t, [{ text: 'Dogs bark.', seed: 12 }]);
    const c = await paraphraseTexts(gen, t, [{ text: 'The cat sat.', seed: 11 }]);
    assert.deepEqual(b[0], a[1]);
    assert.deepEqual(c[0], a[0]);
    const d = await paraphraseTexts(gen, t, [{ text: 'The cat sat.', seed: 13 }]);
    assert.notDeepEqual(d[0], a[0]);
    for (const r of [...a, ...d]) {
      assert.ok(r.ok);
      if (r.ok) {
        assert.ok(!r.text.includes('\n'), 'cut at the stop string');
        assert.equal(r.text, r.text.trim());
      }
    }
  });

  it('reports a prompt longer than the model allows, and still answers the others', async () => {
    const out = await gen.generate([{ prompt: 'x'.repeat(600), seed: 0 }, { prompt: 'short', seed: 0 }]);
    assert.deepEqual(out[0], { ok: false, error: "the prompt has 600 tokens; with 10 new tokens that exceeds the model's 512 positions" });
    assert.equal(out[1].ok, true);
  });

  it('wraps prompts in the chat template with --chat', () => {
    const chat = gen.withOptions({ chat: true });
    // ChatML: <|im_start|> user \n hi <|im_end|> \n <|im_start|> assistant \n — bytes plus 4 special tokens.
    assert.deepEqual(chat.encode('hi'), [257, ...Buffer.from('user\nhi'), 258, 10, 257, ...Buffer.from('assistant\n')]);
  });

  it('contextual replacement: deterministic, only non-stop words with a left context, gaps untouched', async () => {
    const raw = gen.withOptions({ maxNewTokens: 6, stop: [], trim: false });
    const text = 'The quick brown fox, jumps over the lazy dog!';
    const o = { alpha: 0.3, candidates: 8, maxWordTokens: 6, stopWords: DEFAULT_STOP_WORDS };
    const a = await contextualReplace(raw, text, o, 5);
    const b = await contextualReplace(raw, text, o, 5);
    assert.deepEqual(a, b);
    const src = segment(text);
    const out = segment(a.text);
    assert.deepEqual(out.gaps, src.gaps);
    assert.equal(a.edits.length, 3); // round(0.3 * 9 words)
    const positions = a.edits.map((e) => e.at);
    assert.deepEqual(positions, [...positions].sort((x, y) => x - y));
    for (const e of a.edits) {
      assert.ok(e.at > 0, 'the first word has no left context with this tokenizer (no BOS)');
      assert.equal(e.word, src.words[e.at]);
      assert.ok(!DEFAULT_STOP_WORDS.has(e.word.toLowerCase()));
      assert.equal(out.words[e.at], e.with ?? e.word);
      if (e.with !== null) assert.notEqual(e.with.toLowerCase(), e.word.toLowerCase());
    }
    for (let i = 0; i < src.words.length; i++) if (!positions.includes(i)) assert.equal(out.words[i], src.words[i]);
    const seeds = await Promise.all([6, 7, 8].map((s) => contextualReplace(raw, text, o, s)));
    assert.ok(seeds.some((r) => r.text !== a.text), 'other seeds give other replacements');
  });

  it('contextual replacement leaves a text without eligible words alone', async () => {
    const raw = gen.withOptions({ maxNewTokens: 4, stop: [], trim: false });
    const o = { alpha: 0.5, candidates: 2, maxWordTokens: 4, stopWords: DEFAULT_STOP_WORDS };
    assert.deepEqual(await contextualReplace(raw, '', o, 0), { text: '', edits: [] });
    assert.deepEqual(await contextualReplace(raw, 'Hello', o, 0), { text: 'Hello', edits: [] }); // only word, no left context
    assert.deepEqual(await contextualReplace(raw, 'It is the one.', o, 0), { text: 'It is the one.', edits: [] }); // stop words
  });
});
