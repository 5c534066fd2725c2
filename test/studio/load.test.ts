// A bounded load test on loopback: 20 annotators work concurrently through a double-annotated project until 500
// submissions are in (250 items × k = 2), each re-sending about one submission in ten with the same
// Idempotency-Key (a client retry). Nothing may be lost or counted twice, every item ends with exactly two
// annotations from two different people, and the p95 latency of submissions is reported.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { percentile } from '../../src/eval/stats.ts';
import { createUser } from '../../src/studio/auth.ts';
import { startStudio } from '../../src/studio/server.ts';
import { jsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const ANNOTATORS = 20;
const ITEMS = 250;
const K = 2;

describe('load on loopback', () => {
  it(`${ANNOTATORS} concurrent annotators, ${ITEMS * K} submissions: none lost, none doubled`, async (t) => {
    const studio = await startStudio({ dbFile: join(dir, 'load.sqlite'), port: 0, seed: 11 });
    try {
      const store = studio.store;
      const p = store.createProject({ name: 'load', taskType: 'pairwise', annotationsPerItem: K, goldRate: 0 });
      store.importJsonl(p.id, jsonl(Array.from({ length: ITEMS }, (_, i) => ({ id: `q${i}`, prompt: `question ${i}`, responses: [`left ${i}`, `right ${i}`] }))), 'reject');
      const tokens = Array.from({ length: ANNOTATORS }, (_, i) => createUser(store.db, `load${i}`, 'annotator').token);
      const latencies: number[] = [];
      const acknowledged = new Set<number>();
      let replays = 0;
      const post = async (token: string, path: string, body?: unknown, key?: string) => {
        const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
        if (body !== undefined) headers['Content-Type'] = 'application/json';
        if (key) headers['Idempotency-Key'] = key;
        const res = await fetch(`${studio.url}${path}`, { method: 'POST', headers, body: body === undefined ? undefined : JSON.stringify(body) });
        return { status: res.status, json: (await res.json()) as any };
      };
      const started = performance.now();
      await Promise.all(
        tokens.map(async (token, u) => {
          for (let n = 0; ; n++) {
            const { json } = await post(token, `/api/projects/${p.id}/next`);
            if (!json.task) return;
            const key = `u${u}-n${n}`;
            const body = { taskType: 'pairwise', choice: (u + n) % 3 === 0 ? 'tie' : (u + n) % 3 === 1 ? 'left' : 'right' };
            const t0 = performance.now();
            const r = await post(token, `/api/assignments/${json.task.assignmentId}/submit`, body, key);
            latencies.push(performance.now() - t0);
            assert.equal(r.status, 201, JSON.stringify(r.json));
            acknowledged.add(r.json.annotation.id);
            if (n % 10 === 3) {
              const again = await post(token, `/api/assignments/${json.task.assignmentId}/submit`, body, key);
              assert.deepEqual([again.status, again.json.replayed, again.json.annotation.id], [200, true, r.json.annotation.id]);
              replays++;
            }
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const db = store.db;
      assert.equal(acknowledged.size, ITEMS * K);
      assert.equal(db.prepare('SELECT count(*) FROM annotations').pluck().get(), ITEMS * K);
      const perItem = db.prepare('SELECT count(*) AS n, count(DISTINCT user_id) AS users FROM annotations GROUP BY item_id').all() as { n: number; users: number }[];
      assert.equal(perItem.length, ITEMS);
      assert.ok(perItem.every((r) => r.n === K && r.users === K));
      const ids = new Set(db.prepare('SELECT id FROM annotations').pluck().all() as number[]);
      for (const id of acknowledged) assert.ok(ids.has(id));
      assert.ok(replays > 0);
      const p95 = percentile(latencies, 95);
      t.diagnostic(`${latencies.length} submissions (+${replays} retries) in ${seconds.toFixed(2)} s; submit latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${p95.toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`);
      console.log(`studio load: p95 submit latency ${p95.toFixed(1)} ms over ${latencies.length} submissions by ${ANNOTATORS} annotators (${seconds.toFixed(2)} s)`);
      assert.ok(p95 < 2000, `p95 ${p95} ms`);
    } finally {
      await studio.close();
    }
  });
});
