// Reward sources: per-sample failures (a throwing or NaN-returning function, a 4xx answer, a body without a
// numeric reward) fail only that sample with a reason; an unreachable endpoint (refused connection, closed socket,
// 5xx, timeout) is retried with backoff and then stops with an error naming the URL; weighted sums; a reward
// model folder scores like RewardScorer; spec parsing.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { writeTinyChatModel } from '../../../src/demo/tiny_chat.ts';
import { loadModel, saveModel } from '../../../src/models/index.ts';
import { RewardScorer, writeRewardConfig } from '../../../src/trainers/reward.ts';
import { loadTokenizer } from '../../../src/tokenizer/index.ts';
import {
  CombinedReward, RewardEndpointError, checkRewardValue, functionReward, httpReward, moduleReward, rewardModelReward, rewardSourceFromSpec, rewardsFromConfig,
  type RewardOutcome,
} from '../../../src/trainers/rl/rewards.ts';
import { score as toyScore } from '../../../src/trainers/rl/toy_task.ts';
import { assertClose } from '../../util.ts';

const values = (o: RewardOutcome[]) => o.map((x) => (x.ok ? x.value : `fail: ${x.reason}`));
const samples = (...responses: string[]) => responses.map((response) => ({ prompt: 'Say yes:', response }));

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/reward` };
}
const close = (s: Server) => new Promise<void>((r) => s.close(() => r()));

describe('reward sources', () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-rewards-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the toy reward is the fraction of words that are "yes"', () => {
    assert.equal(toyScore('Say yes:', ' yes'), 1);
    assert.equal(toyScore('Say yes:', ' Yes!'), 1);
    assert.equal(toyScore('Say yes:', ' yes no'), 0.5);
    assert.equal(toyScore('Say yes:', ' yes, yes, maybe'), 2 / 3);
    assert.equal(toyScore('Say yes:', ' no'), 0);
    assert.equal(toyScore('Say yes:', '  '), 0);
    assert.equal(toyScore('Say yes:', ' yesterday'), 0);
  });

  it('checkRewardValue accepts finite numbers only', () => {
    assert.deepEqual(checkRewardValue(0.5), { ok: true, value: 0.5 });
    assert.deepEqual(checkRewardValue(Number.NaN), { ok: false, reason: 'returned NaN' });
    assert.deepEqual(checkRewardValue(Infinity), { ok: false, reason: 'returned Infinity' });
    assert.deepEqual(checkRewardValue('1'), { ok: false, reason: 'returned the string "1", not a number' });
    assert.deepEqual(checkRewardValue(undefined), { ok: false, reason: 'returned undefined, not a number' });
  });

  it('a function that throws or returns NaN for one sample fails only that sample', async () => {
    const src = functionReward('picky', (_p, r) => {
      if (r === ' boom') throw new Error('cannot score this');
      if (r === ' nan') return Number.NaN;
      return r.length;
    });
    assert.deepEqual(values(await src.score(samples(' ab', ' boom', ' nan', ' abcd'))), [3, 'fail: picky threw Error: cannot score this', 'fail: picky returned NaN', 5]);
  });

  it('modules: score export, default export, async functions; a module without one is an error', async () => {
    const named = join(dir, 'named.mjs');
    writeFileSync(named, 'export function score(prompt, response) { return response.length - prompt.length; }\n');
    const dflt = join(dir, 'dflt.mjs');
    writeFileSync(dflt, 'export default async (p, r) => (r.includes("yes") ? 1 : 0);\n');
    const none = join(dir, 'none.mjs');
    writeFileSync(none, 'export const x = 1;\n');
    assert.deepEqual(values(await (await moduleReward(named)).score(samples(' abcdefghijk'))), [12 - 8]);
    const d = await moduleReward(dflt);
    assert.equal(d.name, 'dflt');
    assert.deepEqual(values(await d.score(samples(' yes', ' no'))), [1, 0]);
    await assert.rejects(moduleReward(none), /none\.mjs: export a function score\(prompt, response\)/);
    await assert.rejects(moduleReward(join(dir, 'missing.mjs')), /reward module .*missing\.mjs: cannot be loaded/);
  });

  it('HTTP: rewards per sample; a 4xx or a body without a numeric reward fails that sample only', async () => {
    const seen: unknown[] = [];
    const { server, url } = await listen((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const j = JSON.parse(body) as { prompt: string; response: string };
        seen.push(j);
        if (j.response === ' bad') return res.writeHead(422).end('unprocessable');
        if (j.response === ' odd') return res.writeHead(200).end(JSON.stringify({ score: 1 }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ reward: j.response.length / 10 }));
      });
    });
    try {
      const out = await httpReward(url, { concurrency: 2 }).score(samples(' yes', ' bad', ' odd', ' nope'));
      assert.deepEqual(values(out), [0.4, `fail: endpoint ${url} answered HTTP 422 "unprocessable"`, `fail: endpoint ${url} answered without a 'reward' field`, 0.5]);
      assert.deepEqual(seen[0], { prompt: 'Say yes:', response: ' yes' });
    } finally {
      await close(server);
    }
  });

  it('HTTP: a 5xx is retried with backoff and then succeeds', async () => {
    let calls = 0;
    const { server, url } = await listen((_req, res) => {
      calls++;
      if (calls <= 2) return res.writeHead(503).end('busy');
      res.writeHead(200).end(JSON.stringify({ reward: 2 }));
    });
    try {
      assert.deepEqual(values(await httpReward(url, { backoffMs: 5, retries: 3 }).score(samples(' x'))), [2]);
      assert.equal(calls, 3);
    } finally {
      await close(server);
    }
  });

  it('HTTP: an unreachable endpoint (refused, socket closed, timeout) stops with a clear error after the retries', async () => {
    // refused: a port that was just closed
    const { server, url } = await listen(() => {});
    await close(server);
    await assert.rejects(httpReward(url, { backoffMs: 1, retries: 2 }).score(samples(' x')), (e: Error) => {
      assert.ok(e instanceof RewardEndpointError);
      assert.match(e.message, new RegExp(`reward endpoint ${url} is unreachable: 3 attempt\\(s\\) failed, the last with: .*(ECONNREFUSED|refused)`));
      return true;
    });
    // the server accepts and closes the connection without answering
    let attempts = 0;
    const closing = await listen((req) => {
      attempts++;
      req.socket.destroy();
    });
    try {
      await assert.rejects(httpReward(closing.url, { backoffMs: 1, retries: 1 }).score(samples(' x')), /is unreachable: 2 attempt\(s\) failed/);
      assert.equal(attempts, 2);
    } finally {
      await close(closing.server);
    }
    // no answer within the timeout
    const silent = await listen(() => {});
    try {
      await assert.rejects(httpReward(silent.url, { backoffMs: 1, retries: 0, timeoutMs: 100 }).score(samples(' x')), /the last with: no answer within 0\.1 s/);
    } finally {
      silent.server.closeAllConnections();
      await close(silent.server);
    }
  });

  it('weighted sums; a sample fails when any source fails for it; per-source outcomes', async () => {
    const a = functionReward('len', (_p, r) => r.length);
    const b = functionReward('yes', (_p, r) => {
      if (r === ' x') throw new Error('no');
      return r.includes('yes') ? 1 : 0;
    });
    const c = new CombinedReward([a, b], [0.5, 2]);
    const s = await c.score(samples(' yes', ' x', ' no'));
    assert.deepEqual(values(s.total), [0.5 * 4 + 2, 'fail: yes threw Error: no', 0.5 * 3]);
    assert.deepEqual([...s.bySource.keys()], ['len', 'yes']);
    assert.throws(() => new CombinedReward([a], [1, 2]), /1 reward source/);
    assert.throws(() => new CombinedReward([]), /at least one/);
  });

  it('specs: module:, rm:, http:, bare URLs; anything else is an error naming the forms', async () => {
    const m = join(dir, 'spec.mjs');
    writeFileSync(m, 'export default () => 1;\n');
    assert.equal((await rewardSourceFromSpec(`module:${m}`)).name, 'spec');
    assert.equal((await rewardSourceFromSpec('http:http://localhost:9/x')).name, 'localhost:9');
    assert.equal((await rewardSourceFromSpec('https://example.invalid/r')).name, 'example.invalid');
    await assert.rejects(rewardSourceFromSpec('toy.ts'), /reward 'toy\.ts': use module:FILE .* rm:DIR .* http:URL/);
    await assert.rejects(rewardSourceFromSpec('http:ftp://x'), /only http:\/\/ and https:\/\//);
    const cfg = { reward_model_path: null, reward_funcs: [`module:${m}`, `module:${m}`], reward_weights: [1, 3], reward_timeout_s: 1, reward_retries: 0, local_rollout_forward_batch_size: 4 };
    const r = await rewardsFromConfig(cfg);
    const out = await r.score(samples(' a'));
    assert.deepEqual(values(out.total), [4]);
    assert.deepEqual([...out.bySource.keys()], ['spec', 'spec_2']);
  });

  it('a reward model folder scores prompt + response (+ EOS) with its own tokenizer, like RewardScorer', async () => {
    const base = writeTinyChatModel(join(dir, 'rmbase'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 4 });
    const m = loadModel(base, { trainable: false });
    m.attachScoreHead(1, 9);
    const rmDir = join(dir, 'rm');
    saveModel(m, rmDir);
    m.dispose();
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(join(rmDir, f), readFileSync(join(base, f)));
    writeRewardConfig(rmDir);
    const src = rewardModelReward(rmDir, { batchSize: 2 });
    const out = await src.score(samples(' yes', ' no', ' maybe'));
    const tok = loadTokenizer(rmDir);
    const direct = new RewardScorer(rmDir);
    const expected = direct.score([' yes', ' no', ' maybe'].map((r) => [...tok.encode(`Say yes:${r}`), tok.eosId as number]), tok.padId ?? 0);
    direct.dispose();
    src.dispose();
    assertClose(values(out) as number[], expected, 1e-5, 0, 'reward model scores (batched 2 vs 3 rows)');
    assert.ok(expected.every(Number.isFinite));
  });
});
