import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import http from 'node:http';
import path from 'node:path';
import { fillTemplate, loadConstitution, PrincipleSampler } from '../../src/cai/constitution.ts';
import { LocalChatModel, parseChoice, type Choice } from '../../src/cai/chat.ts';
import { caiLabel, labelPairs, type LabelItem } from '../../src/cai/label.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { PreferenceDataset } from '../../src/data/preference_dataset.ts';
import { intTensor, linear, narrow, noGrad, reshape, tidy } from '../../src/tensor/index.ts';
import { loadTokenizer, type ChatMessage } from '../../src/tokenizer/index.ts';
import { deadUrl, ScriptedChat, startChatServer } from './stub.ts';

const constitution = loadConstitution();

/** The two responses a default-template judge question shows. */
function shown(question: string): [string, string] {
  const m = /Response \(A\): ([^]*?)\n\nResponse \(B\): ([^]*?)\n\nPrinciple:/.exec(question);
  assert.ok(m, question);
  return [m[1], m[2]];
}
const q = (c: ChatMessage[]): string => String(c[0].content);

let dir: string;
let model: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-cai-label-'));
  model = writeTinyChatModel(path.join(dir, 'm'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 6 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const items: LabelItem[] = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? { prompt: `q${i}`, a: `bad ${i}`, b: `GOOD ${i}` } : { prompt: `q${i}`, a: `GOOD ${i}`, b: `bad ${i}` }));

describe('AI feedback with a scripted judge', () => {
  it('fills the judge template, randomises the A/B order with the seed, maps the verdict back, records everything', async () => {
    const judge = new ScriptedChat('judge', () => '', (c) => ({ pFirst: shown(q(c))[0].startsWith('GOOD') ? 0.9 : 0.1, source: 'logprobs' }));
    const r = await labelPairs({ judge, items, constitution, seed: 11 });
    assert.equal(r.pairs.length, 12);
    const s = new PrincipleSampler(constitution, 11);
    const principles = items.map(() => s.next());
    r.pairs.forEach((p, i) => {
      assert.equal(p.index, i);
      assert.match(p.chosen, /^GOOD/);
      assert.match(p.rejected, /^bad/);
      assert.equal(p.principle, principles[i].name);
      assert.ok(Math.abs(p.confidence - 0.9) < 1e-12);
      const aGood = items[i].a.startsWith('GOOD');
      assert.ok(Math.abs(p.pA - (aGood ? 0.9 : 0.1)) < 1e-12);
      const [first, second] = p.order === 'ab' ? [items[i].a, items[i].b] : [items[i].b, items[i].a];
      assert.equal(q(judge.chooseCalls[0][i]), fillTemplate(constitution.judgeTemplate, { prompt: items[i].prompt, response_a: first, response_b: second, principle: principles[i].description }));
    });
    const orders = r.pairs.map((p) => p.order).join(' ');
    assert.ok(orders.includes('ab') && orders.includes('ba'), orders);
    const again = await labelPairs({ judge, items, constitution, seed: 11 });
    assert.deepEqual(again, r);
  });

  it('a judge that always answers A: the randomised order spreads its bias over both input positions', async () => {
    const many: LabelItem[] = Array.from({ length: 60 }, (_, i) => ({ prompt: `q${i}`, a: `first ${i}`, b: `second ${i}` }));
    const judge = new ScriptedChat('judge', () => '', () => ({ pFirst: 0.75, source: 'logprobs' }));
    const r = await labelPairs({ judge, items: many, constitution, seed: 5 });
    for (const p of r.pairs) assert.equal(p.chosen, p.order === 'ab' ? many[p.index].a : many[p.index].b);
    const swapped = r.pairs.filter((p) => p.order === 'ba').length;
    assert.ok(swapped >= 18 && swapped <= 42, `${swapped} of 60 shown swapped`);
  });

  it('drops ties and skips identical responses without asking the judge', async () => {
    const judge = new ScriptedChat('judge', () => '', (c): Choice => (shown(q(c)).some((x) => x === 'tie') ? { pFirst: 0.5, source: 'tie' } : { pFirst: 1, source: 'answer' }));
    const r = await labelPairs({ judge, items: [{ prompt: 'a', a: 'x', b: 'x' }, { prompt: 'b', a: 'tie', b: 'y' }, { prompt: 'c', a: 'u', b: 'v' }], constitution, seed: 0 });
    assert.equal(judge.chooseCalls[0].length, 2);
    assert.deepEqual([r.identical, r.ties, r.pairs.length, r.pairs[0].index], [1, 1, 1, 2]);
  });

  it('parses endpoint answers', () => {
    const o = ['A', 'B'] as const;
    assert.deepEqual(['A', ' b.', '(A) because', 'Response B', '**A**', 'Answer: B', 'tie', 'Neither', 'Absolutely'].map((t) => parseChoice(t, o)), [0, 1, 0, 1, 0, 1, 'tie', null, null]);
    assert.deepEqual(['Yes.', 'no', 'Yesterday'].map((t) => parseChoice(t, ['Yes', 'No'])), [0, 1, null]);
  });
});

describe('a local judge model', () => {
  it("confidence is σ(log p('A') − log p('B')) of the next token, checked against a plain forward pass", async () => {
    const judge = LocalChatModel.load(model);
    try {
      const convs: ChatMessage[][] = [[{ role: 'user', content: 'Which is better? A or B' }], [{ role: 'user', content: 'Pick one.' }]];
      const got = await judge.choose(convs, ['A', 'B']);
      const tok = loadTokenizer(model);
      const [idA] = tok.encode('A', { addSpecialTokens: false });
      const [idB] = tok.encode('B', { addSpecialTokens: false });
      convs.forEach((c, i) => {
        const ids = judge.encode(c);
        const logits = noGrad(() =>
          tidy(() => {
            const h = judge.model.forward(intTensor(ids, [1, ids.length]));
            const last = reshape(narrow(h, 1, ids.length - 1, 1), [1, h.shape[2]]);
            return Array.from(linear(last, judge.model.lmHeadWeight(), judge.model.lmHeadBias()).toArray());
          }),
        );
        const expected = 1 / (1 + Math.exp(logits[idB] - logits[idA]));
        assert.ok(Math.abs(got[i].pFirst - expected) < 1e-5, `${got[i].pFirst} vs ${expected}`);
        assert.equal(got[i].source, 'logprobs');
      });
    } finally {
      judge.dispose();
    }
  });

  it('cai label samples two responses per prompt, judges them, and the output loads with the DPO loader', async () => {
    const input = path.join(dir, 'in.jsonl');
    fs.writeFileSync(input, ['{"prompt":"Tell me a joke."}', '{"prompt":"How are you?","responses":["I am fine, thanks.","Go away."]}', '{"prompt":"Name a colour."}'].join('\n'));
    const out = path.join(dir, 'prefs.jsonl');
    const r = await caiLabel({ model, input, output: out, seed: 2, maxNewTokens: 6, temperature: 1 });
    assert.equal(r.count + r.identical + r.ties, 3);
    assert.ok(r.meanConfidence >= 0.5 && r.meanConfidence <= 1);
    const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { chosen: { content: string }[]; rejected: { content: string }[]; confidence: number; order: string; principle: string; line: number });
    const given = rows.find((x) => x.line === 2);
    assert.ok(given);
    assert.deepEqual([given.chosen[0].content, given.rejected[0].content].sort(), ['Go away.', 'I am fine, thanks.']);
    for (const x of rows) {
      assert.ok(x.confidence >= 0.5 && x.confidence <= 1);
      assert.ok(x.order === 'ab' || x.order === 'ba');
      assert.ok(constitution.principles.some((p) => p.name === x.principle));
    }
    const ds = await PreferenceDataset.open(out, loadTokenizer(model), { maxLength: 256 });
    assert.equal(ds.length, r.count);
    await ds.close();
  });
});

describe('an endpoint judge (local OpenAI-compatible server)', () => {
  it('parsed answers give confidence 1; returned top logprobs give their normalised ratio', async () => {
    const input = path.join(dir, 'given.jsonl');
    fs.writeFileSync(input, items.map((it) => JSON.stringify({ prompt: it.prompt, responses: [it.a, it.b] })).join('\n'));
    const byContent = await startChatServer((b) => {
      const [first] = shown(String((b.messages as { content: string }[])[0].content).replace(/^Reply with OK\.$/, 'Response (A): x\n\nResponse (B): y\n\nPrinciple:'));
      return first.startsWith('GOOD') ? 'A' : 'B';
    });
    try {
      const out = path.join(dir, 'ep.jsonl');
      const r = await caiLabel({ judge: byContent.url, judgeEndpoint: { retries: 0 }, input, output: out, seed: 3 });
      assert.deepEqual([r.count, r.meanConfidence], [12, 1]);
      const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { chosen: unknown; confidence_source: string });
      assert.ok(rows.every((x) => JSON.stringify(x.chosen).includes('GOOD') && x.confidence_source === 'answer'));
      assert.equal(byContent.bodies[1].temperature, 0);
      const ds = await PreferenceDataset.open(out, loadTokenizer(model), { maxLength: 256 });
      assert.equal(ds.length, 12);
      await ds.close();
    } finally {
      await byContent.close();
    }
    const withLogprobs = await startChatServer(() => ({
      choices: [{ index: 0, message: { role: 'assistant', content: 'A' }, logprobs: { content: [{ token: 'A', logprob: Math.log(0.7), top_logprobs: [{ token: 'A', logprob: Math.log(0.7) }, { token: ' B', logprob: Math.log(0.3) }] }] } }],
    }));
    try {
      const out = path.join(dir, 'lp.jsonl');
      const r = await caiLabel({ judge: withLogprobs.url, input, output: out, seed: 3 });
      assert.ok(Math.abs(r.meanConfidence - 0.7) < 1e-12);
      const rows = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { order: string; p_a: number; confidence_source: string });
      for (const x of rows) {
        assert.equal(x.confidence_source, 'logprobs');
        assert.ok(Math.abs(x.p_a - (x.order === 'ab' ? 0.7 : 0.3)) < 1e-12);
      }
    } finally {
      await withLogprobs.close();
    }
  });

  it('a server that refuses the logprobs parameters is asked again without them', async () => {
    const input = path.join(dir, 'given2.jsonl');
    fs.writeFileSync(input, items.slice(0, 3).map((it) => JSON.stringify({ prompt: it.prompt, responses: [it.a, it.b] })).join('\n'));
    // The refusal is a real HTTP 400 (startChatServer always answers 200).
    const bodies: Record<string, unknown>[] = [];
    const server = http.createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString('utf8')));
      req.on('end', () => {
        const b = JSON.parse(data) as Record<string, unknown>;
        bodies.push(b);
        if (b.logprobs !== undefined) res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":{"message":"unsupported parameter: logprobs"}}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { content: 'B' } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const r = await caiLabel({ judge: `http://127.0.0.1:${port}`, judgeEndpoint: { concurrency: 1 }, input, output: path.join(dir, 'strict.jsonl'), seed: 1 });
      assert.deepEqual([r.count, r.meanConfidence], [3, 1]);
      assert.deepEqual(bodies.map((b) => b.logprobs !== undefined), [false, true, false, false, false]);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('an unreachable judge, a judge that is not a URL, two judges, bad responses: clear errors before any work', async () => {
    const input = path.join(dir, 'given.jsonl');
    const url = await deadUrl();
    await assert.rejects(caiLabel({ judge: url, judgeEndpoint: { retries: 0 }, input, output: path.join(dir, 'x.jsonl') }), /chat endpoint .* is unreachable \(probe\): 1 attempt\(s\) failed, the last with: ECONNREFUSED/);
    assert.equal(fs.existsSync(path.join(dir, 'x.jsonl')), false);
    await assert.rejects(caiLabel({ judge: 'some/folder', input, output: 'x' }), /--judge expects an http\(s\):\/\/ URL/);
    await assert.rejects(caiLabel({ judge: url, model, input, output: 'x' }), /give a judge: --model DIR .* or --judge URL .*, not both/);
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"prompt":"a","responses":["x","y"]}\n{"prompt":"b","responses":["only one"]}\n');
    await assert.rejects(caiLabel({ judge: url, input: bad, output: 'x' }), /bad\.jsonl:2: field 'responses': expected a list of exactly two responses, got 1 entries/);
    fs.writeFileSync(bad, '{"prompt":"a"}\n');
    await assert.rejects(caiLabel({ judge: url, input: bad, output: 'x' }), /bad\.jsonl:1: field 'responses': missing, and there is no model to sample them/);
  });
});
