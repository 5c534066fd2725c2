// Win-rate plumbing: the OpenAI-compatible judge against a local server (answers A / B / tie, HTTP errors and
// unparseable answers reported, never guessed), and the win-rate summary (ties half, Wilson interval, sign test).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { endpointJudge, summarizeOutcomes } from '../../src/trainers/compare.ts';

test('endpointJudge maps A / B / tie and reports HTTP errors and unparseable answers', async () => {
  const bodies: { model: string; messages: { content: string }[] }[] = [];
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw) as { model: string; messages: { content: string }[] };
      bodies.push(body);
      const prompt = body.messages[0].content;
      if (prompt.includes('CRASH')) {
        res.writeHead(500).end('boom');
        return;
      }
      const answer = prompt.includes('first') ? 'A' : prompt.includes('second') ? 'B.' : prompt.includes('same') ? 'tie' : 'I cannot decide';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { content: answer } }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const judge = endpointJudge(url, 'judge-model', 5000);
    assert.equal(await judge('pick first', 'x', 'y'), 'a');
    assert.equal(await judge('pick second', 'x', 'y'), 'b');
    assert.equal(await judge('same', 'x', 'y'), 'tie');
    await assert.rejects(() => judge('CRASH', 'x', 'y'), /HTTP 500/);
    await assert.rejects(() => judge('unsure', 'x', 'y'), /expected A, B or tie/);
    assert.equal(bodies[0].model, 'judge-model');
    assert.match(bodies[0].messages[0].content, /Response A:\nx\n\nResponse B:\ny/);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  await assert.rejects(() => endpointJudge(url, 'm', 2000)('p', 'a', 'b'), /judge endpoint/);
});

test('summarizeOutcomes: ties count half; Wilson interval and a two-sided sign test on wins vs losses', () => {
  const rows = [...Array(8).fill('a'), ...Array(2).fill('b'), ...Array(2).fill('tie')].map((winner) => ({ prompt: 'p', a: 'x', b: 'y', winner: winner as 'a' | 'b' | 'tie' }));
  const r = summarizeOutcomes(rows);
  assert.deepEqual([r.wins, r.losses, r.ties, r.n], [8, 2, 2, 12]);
  assert.equal(r.winRate, 9 / 12);
  assert.ok(r.interval.lower < 0.75 && r.interval.upper > 0.75);
  // sign test on 8 wins vs 2 losses: 2·P(X ≤ 2 | n = 10, p = ½) = 2·(1 + 10 + 45)/1024 = 0.109375
  assert.ok(Math.abs(r.pValue - 0.109375) < 1e-12);
});
