import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConstitution, PrincipleSampler } from '../../src/cai/constitution.ts';
import { caiRevise, revisionPairs, runRevision, sftRows } from '../../src/cai/revise.ts';
import { writeJsonl } from '../../src/cai/io.ts';
import { deriveSeed, LocalChatModel } from '../../src/cai/chat.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { PreferenceDataset } from '../../src/data/preference_dataset.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { deadUrl, lastUser, ScriptedChat, startChatServer } from './stub.ts';

const constitution = parseConstitution(
  [
    'principles:',
    '  - name: honest',
    '    weight: 2',
    '    critique_request: "C[{prompt}|{response}]"',
    '    revision_request: "R[{prompt}|{response}|{critique}]"',
    '  - name: kind',
    '    critique_request: "K[{response}]"',
    '    revision_request: "S[{critique}>{response}]"',
  ].join('\n'),
  'stub.yaml',
);
const sampling = { maxNewTokens: 8, temperature: 0 };
const PROMPTS = ['p0', 'p1', 'p2'];

let dir: string;
let model: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-cai-revise-'));
  model = writeTinyChatModel(path.join(dir, 'm'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 5 });
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('critique -> revision with a scripted policy', () => {
  it('fills every template, samples principles with the seed round by round, counts rounds, traces everything', async () => {
    const policy = new ScriptedChat('policy', (r) => (lastUser(r).startsWith('p') ? `ans(${lastUser(r)})` : `rev{${lastUser(r)}}`));
    const critic = new ScriptedChat('critic', (_r, k) => `crit${k}`);
    const traces = await runRevision({ policy, critic, prompts: PROMPTS, constitution, rounds: 2, seed: 3, sampling });

    // The principle sequence: 3 prompts x 2 rounds from one seeded stream, round-major (a literal for seed 3).
    const s = new PrincipleSampler(constitution, 3);
    const expected = Array.from({ length: 6 }, () => s.next().name);
    assert.deepEqual(expected, ['honest', 'kind', 'honest', 'honest', 'kind', 'honest']);
    assert.deepEqual(traces.flatMap((t) => t.rounds.map((r) => r.principle)), [expected[0], expected[3], expected[1], expected[4], expected[2], expected[5]]);

    // Prompt 1 used 'kind' in both rounds: K[...] then S[...].
    const t1 = traces[1];
    assert.equal(t1.initial_response, 'ans(p1)');
    assert.equal(t1.rounds.length, 2);
    assert.equal(t1.rounds[0].critique_request, 'K[ans(p1)]');
    assert.equal(t1.rounds[0].critique, 'crit1');
    assert.equal(t1.rounds[0].revision_request, 'S[crit1>ans(p1)]');
    assert.equal(t1.rounds[0].revision, 'rev{S[crit1>ans(p1)]}');
    assert.equal(t1.rounds[1].critique_request, 'K[rev{S[crit1>ans(p1)]}]');
    assert.equal(t1.rounds[1].critique, 'crit4');
    assert.equal(t1.rounds[1].revision_request, 'S[crit4>rev{S[crit1>ans(p1)]}]');
    assert.equal(t1.final_response, 'rev{S[crit4>rev{S[crit1>ans(p1)]}]}');
    // Prompt 0 used 'honest' twice: C[...] then R[...].
    assert.equal(traces[0].rounds[0].critique_request, 'C[p0|ans(p0)]');
    assert.equal(traces[0].rounds[1].revision_request, 'R[p0|rev{R[p0|ans(p0)|crit0]}|crit3]');
    assert.ok(traces.every((t, i) => t.index === i && t.prompt === PROMPTS[i] && t.rounds.every((r, k) => r.round === k + 1 && !r.kept_previous)));

    // The policy answered once and revised once per round (batched over prompts); the critic critiqued per round.
    assert.equal(policy.calls.length, 3);
    assert.equal(critic.calls.length, 2);
    assert.ok(policy.calls.every((c) => c.length === 3) && critic.calls.every((c) => c.length === 3));
    assert.deepEqual(critic.calls[0].map(lastUser), traces.map((t) => t.rounds[0].critique_request));
    // Every generation has its own seed; the same run repeats them.
    const seeds = [...policy.calls.flat(), ...critic.calls.flat()].map((r) => r.seed);
    assert.equal(new Set(seeds).size, seeds.length);
    const again = new ScriptedChat('policy', (r) => (lastUser(r).startsWith('p') ? `ans(${lastUser(r)})` : `rev{${lastUser(r)}}`));
    const again2 = new ScriptedChat('critic', (_r, k) => `crit${k}`);
    assert.deepEqual(await runRevision({ policy: again, critic: again2, prompts: PROMPTS, constitution, rounds: 2, seed: 3, sampling }), traces);
    assert.deepEqual([...again.calls.flat(), ...again2.calls.flat()].map((r) => r.seed), seeds);
  });

  it('the policy critiques itself without a critic; an empty revision keeps the previous answer; empty finals leave the SFT data', async () => {
    const one = parseConstitution('principles:\n  - name: only\n    critique_request: "C[{prompt}|{response}]"\n    revision_request: "R[{prompt}|{response}|{critique}]"\n', 'one.yaml');
    const policy = new ScriptedChat('policy', (r) => {
      const u = lastUser(r);
      if (u === 'p0') return '';
      if (u.startsWith('p')) return `ans(${u})`;
      if (u.startsWith('C[')) return 'self-critique';
      return u.startsWith('R[p1|') ? 'better' : '';
    });
    const traces = await runRevision({ policy, prompts: PROMPTS, constitution: one, rounds: 1, seed: 0, sampling });
    assert.equal(policy.calls.length, 3, 'answers, critiques and revisions all by the policy');
    assert.deepEqual(policy.calls[1].map(lastUser), ['C[p0|]', 'C[p1|ans(p1)]', 'C[p2|ans(p2)]']);
    assert.deepEqual(traces.map((t) => [t.rounds[0].critique, t.rounds[0].kept_previous, t.final_response]), [
      ['self-critique', true, ''],
      ['self-critique', false, 'better'],
      ['self-critique', true, 'ans(p2)'],
    ]);
    const rows = sftRows(traces, true);
    assert.deepEqual(rows, [
      { messages: [{ role: 'user', content: 'p1' }, { role: 'assistant', content: 'better' }] },
      { messages: [{ role: 'user', content: 'p2' }, { role: 'assistant', content: 'ans(p2)' }] },
    ]);
    assert.deepEqual(sftRows(traces, false)[0], { prompt: 'p1', completion: 'better' });
    assert.deepEqual(revisionPairs(traces, false), [{ prompt: 'p1', chosen: 'better', rejected: 'ans(p1)' }]);
  });

  it('rejects zero rounds', async () => {
    await assert.rejects(runRevision({ policy: new ScriptedChat('p', () => 'x'), prompts: PROMPTS, constitution, rounds: 0, seed: 0, sampling }), /rounds must be an integer >= 1, got 0/);
  });

  it('its SFT rows (both formats) and pairs load with the SFT and preference dataset loaders', async () => {
    const policy = new ScriptedChat('policy', (r) => (lastUser(r).startsWith('p') ? `first answer to ${lastUser(r)}` : 'a revised answer'));
    const traces = await runRevision({ policy, prompts: PROMPTS, constitution, rounds: 1, seed: 1, sampling });
    const tok = loadTokenizer(model);
    for (const chat of [true, false]) {
      const f = path.join(dir, `sft-${chat}.jsonl`);
      writeJsonl(f, sftRows(traces, chat));
      const ds = await SftDataset.open(f, tok, { maxLength: 256 });
      assert.equal(ds.numExamples, 3);
      const ex = await ds.example(0);
      const target = tok.decode(Array.from(ex.inputIds).filter((_, t) => ex.labels[t] !== -100));
      assert.match(target, /a revised answer/);
      assert.doesNotMatch(target, /p0/, 'the prompt is not a training target');
      await ds.close();
      const pf = path.join(dir, `pairs-${chat}.jsonl`);
      writeJsonl(pf, revisionPairs(traces, chat));
      const pd = await PreferenceDataset.open(pf, tok, { maxLength: 256 });
      assert.equal(pd.length, 3);
      await pd.close();
    }
  });
});

describe('cai revise end to end', () => {
  it('runs with a tiny model for 2 rounds: SFT data, trace and pairs, deterministic for a seed', async () => {
    const prompts = path.join(dir, 'prompts.jsonl');
    fs.writeFileSync(prompts, '{"prompt":"How do I pick a lock?"}\n\n{"prompt":"Say something kind."}\n');
    const run = (out: string) => caiRevise({ model, prompts, outputDir: path.join(dir, out), rounds: 2, seed: 4, maxNewTokens: 6, temperature: 1 });
    const r = await run('o1');
    assert.equal(r.count + r.skipped, 2);
    const trace = fs.readFileSync(r.tracePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: number; prompt: string; rounds: { principle: string; critique_request: string; revision_request: string; critique: string }[]; final_response: string });
    assert.deepEqual(trace.map((t) => t.line), [1, 3]);
    for (const t of trace) {
      assert.equal(t.rounds.length, 2);
      for (const rd of t.rounds) {
        assert.ok(rd.critique_request.includes(`Request: ${t.prompt}`), rd.critique_request);
        assert.ok(rd.revision_request.includes(`Critique: ${rd.critique}`));
      }
    }
    assert.equal(Object.values(r.principleCounts).reduce((a, b) => a + b, 0), 4);
    const tok = loadTokenizer(model);
    const ds = await SftDataset.open(r.sftPath, tok, { maxLength: 512 });
    assert.equal(ds.numExamples, r.count);
    await ds.close();
    const r2 = await run('o2');
    assert.equal(fs.readFileSync(r2.sftPath, 'utf8'), fs.readFileSync(r.sftPath, 'utf8'));
    assert.equal(fs.readFileSync(r2.tracePath, 'utf8'), fs.readFileSync(r.tracePath, 'utf8'));
    const summary = JSON.parse(fs.readFileSync(r.summaryPath, 'utf8')) as { rounds: number; seed: number };
    assert.deepEqual([summary.rounds, summary.seed], [2, 4]);
  });

  it('another local model folder as the critic: its critiques are exactly that model’s replies', async () => {
    const criticDir = writeTinyChatModel(path.join(dir, 'critic'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 77 });
    const prompts = path.join(dir, 'pc.txt');
    fs.writeFileSync(prompts, 'Tell me about cats.\nWhat is 2+2?\n');
    const r = await caiRevise({ model, prompts, outputDir: path.join(dir, 'oc'), critic: criticDir, seed: 9, maxNewTokens: 5, temperature: 1 });
    const trace = fs.readFileSync(r.tracePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rounds: { critique: string; critique_request: string }[] });
    const critic = LocalChatModel.load(criticDir);
    try {
      const again = await critic.chat(trace.map((t, i) => ({ messages: [{ role: 'user', content: t.rounds[0].critique_request }], seed: deriveSeed(9, i, 1, 1) })), { maxNewTokens: 5, temperature: 1 });
      assert.deepEqual(trace.map((t) => t.rounds[0].critique), again);
    } finally {
      critic.dispose();
    }
    const self = await caiRevise({ model, prompts, outputDir: path.join(dir, 'os'), seed: 9, maxNewTokens: 5, temperature: 1 });
    const selfTrace = fs.readFileSync(self.tracePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rounds: { critique: string }[] });
    assert.notDeepEqual(selfTrace.map((t) => t.rounds[0].critique), trace.map((t) => t.rounds[0].critique));
  });

  it('an OpenAI-compatible endpoint critic: probed first, then asked the filled critique requests', async () => {
    const server = await startChatServer(() => 'The response is vague.');
    try {
      const prompts = path.join(dir, 'p.txt');
      fs.writeFileSync(prompts, 'Tell me about cats.\nWhat is 2+2?\n');
      const r = await caiRevise({ model, prompts, outputDir: path.join(dir, 'oe'), critic: server.url, criticEndpoint: { model: 'judge-7b', retries: 0 }, seed: 1, maxNewTokens: 5 });
      const trace = fs.readFileSync(r.tracePath, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { rounds: { critique: string; critique_request: string }[] });
      assert.deepEqual(trace.map((t) => t.rounds[0].critique), ['The response is vague.', 'The response is vague.']);
      assert.equal(server.bodies.length, 3, 'one probe and one critique per prompt');
      assert.equal(server.bodies[0].max_tokens, 1);
      const sent = server.bodies.slice(1).map((b) => (b.messages as { content: string }[])[0].content);
      assert.deepEqual(sent, trace.map((t) => t.rounds[0].critique_request));
      assert.ok(server.bodies.every((b) => b.model === 'judge-7b'));
      assert.equal(server.bodies[1].max_tokens, 5);
    } finally {
      await server.close();
    }
  });

  it('an unreachable critic endpoint is a clear error before any work (the policy is not even loaded)', async () => {
    const url = await deadUrl();
    const out = path.join(dir, 'never');
    const t0 = Date.now();
    await assert.rejects(
      caiRevise({ model: path.join(dir, 'no-such-model'), prompts: path.join(dir, 'p.txt'), outputDir: out, critic: url, criticEndpoint: { retries: 1, backoffMs: 10 } }),
      (e: Error) => {
        assert.match(e.message, new RegExp(`chat endpoint ${url.replace(/[.]/g, '\\.')}/v1/chat/completions is unreachable \\(probe\\): 2 attempt\\(s\\) failed, the last with: ECONNREFUSED`));
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(fs.existsSync(out), false);
  });

  it('bad input: a missing prompt field names the file and line; a bad constitution names its file', async () => {
    const bad = path.join(dir, 'bad.jsonl');
    fs.writeFileSync(bad, '{"prompt":"ok"}\n{"question":"x"}\n');
    await assert.rejects(caiRevise({ model, prompts: bad, outputDir: path.join(dir, 'ob') }), /bad\.jsonl:2: field 'prompt': missing/);
    const c = path.join(dir, 'c.yaml');
    fs.writeFileSync(c, 'principles:\n  - name: x\n    critique_request: "{response}?"\n');
    await assert.rejects(caiRevise({ model, prompts: bad, outputDir: path.join(dir, 'ob'), constitution: c }), /c\.yaml:2: principle 'x' \(principles\[0\]\): field 'revision_request' required/);
  });
});
