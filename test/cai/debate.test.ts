import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConstitution, PrincipleSampler } from '../../src/cai/constitution.ts';
import { caiDebate, DEFAULT_CRITIC_TEMPLATE, runDebate } from '../../src/cai/debate.ts';
import { fillTemplate } from '../../src/cai/constitution.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { deadUrl, lastUser, ScriptedChat, startChatServer } from './stub.ts';

const sampling = { maxNewTokens: 8, temperature: 0 };

let dir: string;
let model: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-cai-debate-'));
  model = writeTinyChatModel(path.join(dir, 'm'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 10 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('debate with scripted roles', () => {
  it('alternates proposer and critic, gives the proposer the whole exchange, stops a row when the critic is satisfied', async () => {
    // The proposer numbers its answers; the critic is satisfied with q0 at the second answer, never with q1.
    const proposer = new ScriptedChat('proposer', (r) => `${String(r.messages[0].content)}-v${(r.messages.length - 1) / 2}`);
    const critic = new ScriptedChat('critic', (r) => (lastUser(r).includes('Proposed answer: q0-v1') ? 'no issues' : `fix ${/Proposed answer: (\S+)/.exec(lastUser(r))?.[1]}`));
    const res = await runDebate({ proposer, critic, prompts: ['q0', 'q1'], turns: 3, seed: 1, sampling });
    assert.deepEqual(res.map((d) => [d.final, d.turns, d.converged]), [['q0-v1', 2, true], ['q1-v3', 3, false]]);
    assert.deepEqual(res[0].transcript.map((t) => `${t.turn}:${t.role}:${t.content}`), ['0:proposer:q0-v0', '1:critic:fix q0-v0', '1:proposer:q0-v1', '2:critic:no issues']);
    assert.equal(res[1].transcript.length, 7);
    // Critic requests: the default template plus the stop instruction.
    assert.equal(lastUser(critic.calls[0][0]), `${fillTemplate(DEFAULT_CRITIC_TEMPLATE, { prompt: 'q0', response: 'q0-v0' })}\nIf the answer needs no changes, reply exactly: NO ISSUES`);
    // Turn 3: only q1 is still debated; its proposer saw the whole conversation.
    assert.equal(critic.calls[2].length, 1);
    const last = proposer.calls[3][0].messages;
    assert.deepEqual(last.map((m) => m.role), ['user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user']);
    assert.match(String(last[2].content), /^A critic reviewed your answer:\nfix q1-v0\n/);
    assert.equal(last[3].content, 'q1-v1');
  });

  it('with a constitution the critic applies sampled principles (seeded), recorded in the transcript', async () => {
    const c = parseConstitution('principles:\n  - name: x\n    critique_request: "X? {response}"\n    revision_request: "{critique}"\n  - name: y\n    critique_request: "Y? {response}"\n    revision_request: "{critique}"\n', 'd.yaml');
    const proposer = new ScriptedChat('p', () => 'ans');
    const res = await runDebate({ proposer, prompts: ['a', 'b'], turns: 2, seed: 4, sampling, constitution: c, stopPhrase: 'DONE' });
    const s = new PrincipleSampler(c, 4);
    const expected = Array.from({ length: 4 }, () => s.next().name);
    assert.deepEqual(res.flatMap((d) => d.transcript.filter((t) => t.role === 'critic').map((t) => t.principle)), [expected[0], expected[2], expected[1], expected[3]]);
    const critiqueRequests = proposer.calls.flat().map(lastUser).filter((u) => /^[XY]\?/.test(u));
    assert.equal(critiqueRequests.length, 4, 'the proposer critiqued itself');
    assert.ok(critiqueRequests.every((u) => u.endsWith('reply exactly: DONE')));
  });
});

describe('cai debate end to end', () => {
  it('runs a tiny proposer against an endpoint critic and writes SFT-ready transcripts', async () => {
    let n = 0;
    const server = await startChatServer(() => (n++ < 2 ? 'Be more specific.' : 'NO ISSUES'));
    try {
      const prompts = path.join(dir, 'p.jsonl');
      fs.writeFileSync(prompts, '{"prompt":"Why is the sky blue?"}\n');
      const out = path.join(dir, 'debate.jsonl');
      const r = await caiDebate({ model, critic: server.url, criticEndpoint: { retries: 0 }, prompts, output: out, turns: 3, maxNewTokens: 6, seed: 2 });
      // The probe took the first answer; then one critique, then NO ISSUES.
      assert.deepEqual([r.count, r.converged, r.meanTurns], [1, 1, 2]);
      const row = JSON.parse(fs.readFileSync(out, 'utf8')) as { completion: string; transcript: { role: string; content: string }[] };
      assert.deepEqual(row.transcript.map((t) => t.role), ['proposer', 'critic', 'proposer', 'critic']);
      assert.equal(row.transcript[1].content, 'Be more specific.');
      const ds = await SftDataset.open(out, loadTokenizer(model), { maxLength: 256, skipInvalid: true });
      assert.ok(ds.numExamples + ds.stats.skipped === 1);
      await ds.close();
      const local = await caiDebate({ model, prompts, output: path.join(dir, 'self.jsonl'), turns: 2, maxNewTokens: 6, seed: 2 });
      assert.equal(local.count, 1);
    } finally {
      await server.close();
    }
  });

  it('an unreachable critic endpoint fails before any generation', async () => {
    await assert.rejects(caiDebate({ model: path.join(dir, 'missing'), critic: await deadUrl(), criticEndpoint: { retries: 0 }, prompts: path.join(dir, 'p.jsonl'), output: path.join(dir, 'never.jsonl') }), /is unreachable \(probe\)/);
    assert.equal(fs.existsSync(path.join(dir, 'never.jsonl')), false);
  });
});
