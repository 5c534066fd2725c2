// Assignment and submissions: double annotation (k distinct annotators per item), open assignments come back,
// abandoned ones free their slot after the lease, gold items are audits outside k, the left/right order is
// random, recorded and undone, and idempotency keys make retries safe.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openStudioDb } from '../../src/studio/db.ts';
import { createUser } from '../../src/studio/auth.ts';
import { ASSIGNMENT_LEASE_MS, StudioStore, type TaskView } from '../../src/studio/store.ts';
import { jsonl } from './helpers.ts';

function setup(opts: { k?: number; goldRate?: number; prompts?: number; gold?: number } = {}) {
  let clock = 1_000_000;
  const db = openStudioDb(':memory:');
  const store = new StudioStore(db, { seed: 7, now: () => clock });
  const p = store.createProject({ name: 'p', taskType: 'pairwise', annotationsPerItem: opts.k ?? 2, goldRate: opts.goldRate ?? 0 });
  const rows: unknown[] = [];
  for (let i = 0; i < (opts.prompts ?? 5); i++) rows.push({ id: `r${i}`, prompt: `prompt ${i}`, responses: [`A${i}`, `B${i}`] });
  for (let i = 0; i < (opts.gold ?? 0); i++) rows.push({ id: `g${i}`, prompt: `gold ${i}`, responses: [`GA${i}`, `GB${i}`], gold: { choice: 'a' } });
  store.importJsonl(p.id, jsonl(rows), 'reject');
  const users = ['u1', 'u2', 'u3'].map((n) => createUser(db, n, 'annotator').user);
  return { db, store, p, users, tick: (ms: number) => (clock += ms) };
}

type Pairwise = Extract<TaskView, { taskType: 'pairwise' }>;

describe('assignment', () => {
  it('gives every item to exactly k distinct annotators, then nothing', () => {
    const { store, p, users, db } = setup({ k: 2, prompts: 5 });
    let submitted = 0;
    for (let round = 0; round < 10; round++) {
      for (const u of users) {
        const t = store.nextTask(p.id, u);
        if (!t) continue;
        store.submit(t.assignmentId, u, `k-${u.id}-${round}`, { taskType: 'pairwise', choice: 'left' });
        submitted++;
      }
    }
    assert.equal(submitted, 10);
    const perItem = db.prepare('SELECT item_id, count(*) AS n, count(DISTINCT user_id) AS users FROM annotations GROUP BY item_id').all() as { n: number; users: number }[];
    assert.equal(perItem.length, 5);
    for (const r of perItem) assert.deepEqual([r.n, r.users], [2, 2]);
    for (const u of users) assert.equal(store.nextTask(p.id, u), null);
  });

  it('returns the open assignment again until it is submitted; an abandoned one frees its slot after the lease', () => {
    const { store, p, users, tick } = setup({ k: 1, prompts: 1 });
    const first = store.nextTask(p.id, users[0])!;
    assert.equal(store.nextTask(p.id, users[0])!.assignmentId, first.assignmentId);
    assert.equal(store.nextTask(p.id, users[1]), null); // k = 1 and the slot is leased
    tick(ASSIGNMENT_LEASE_MS + 1);
    const second = store.nextTask(p.id, users[1])!;
    assert.notEqual(second, null);
    assert.equal(second.prompt, first.prompt);
  });

  it('serves unseen gold items as audits outside k', () => {
    const { store, p, users } = setup({ k: 1, prompts: 2, gold: 1, goldRate: 1 });
    const seen = users.slice(0, 2).map((u) => {
      const t = store.nextTask(p.id, u)!;
      store.submit(t.assignmentId, u, 'g', { taskType: 'pairwise', choice: 'tie' });
      return t.prompt;
    });
    assert.deepEqual(seen, ['gold 0', 'gold 0']); // goldRate 1: the gold item first, for everyone
    const next = store.nextTask(p.id, users[0])!;
    assert.match(next.prompt, /^prompt /);
  });

  it('draws the left/right order at random, records it, and maps the choice back to a / b', () => {
    const { store, p, users, db } = setup({ k: 1, prompts: 40 });
    const u = users[0];
    let swaps = 0;
    for (let i = 0; i < 40; i++) {
      const t = store.nextTask(p.id, u) as Pairwise;
      const swapped = t.left.startsWith('B');
      if (swapped) swaps++;
      const { annotation } = store.submit(t.assignmentId, u, `k${i}`, { taskType: 'pairwise', choice: 'left' });
      assert.equal(annotation.choice, swapped ? 'b' : 'a');
      assert.equal(annotation.choseLeft, true);
      assert.equal(db.prepare('SELECT swapped FROM assignments WHERE id = ?').pluck().get(t.assignmentId), swapped ? 1 : 0);
    }
    assert.ok(swaps > 8 && swaps < 32, `swapped ${swaps} of 40`);
  });

  it('idempotency keys: a retry replays, another key for a done assignment or a reused key conflicts', () => {
    const { store, p, users } = setup({ k: 1, prompts: 2 });
    const u = users[0];
    const t1 = store.nextTask(p.id, u)!;
    const a = store.submit(t1.assignmentId, u, 'key-1', { taskType: 'pairwise', choice: 'right', strength: 3 });
    const b = store.submit(t1.assignmentId, u, 'key-1', { taskType: 'pairwise', choice: 'right', strength: 3 });
    assert.deepEqual([a.replayed, b.replayed, b.annotation.id], [false, true, a.annotation.id]);
    assert.throws(() => store.submit(t1.assignmentId, u, 'key-2', { taskType: 'pairwise', choice: 'left' }), (e: Error & { status?: number }) => e.status === 409);
    const t2 = store.nextTask(p.id, u)!;
    assert.throws(() => store.submit(t2.assignmentId, u, 'key-1', { taskType: 'pairwise', choice: 'left' }), (e: Error & { status?: number }) => e.status === 409);
    assert.throws(() => store.submit(t2.assignmentId, users[1], 'x', { taskType: 'pairwise', choice: 'left' }), (e: Error & { status?: number }) => e.status === 404);
    assert.equal(store.annotationCount(), 1);
  });

  it('Likert ratings are checked against the criteria and scale', () => {
    const db = openStudioDb(':memory:');
    const store = new StudioStore(db, { seed: 1 });
    const p = store.createProject({ name: 'l', taskType: 'likert', annotationsPerItem: 1, criteria: ['helpfulness', 'honesty'], likertMax: 5 });
    store.importJsonl(p.id, jsonl([{ prompt: 'P', responses: ['R'] }]), 'reject');
    const u = createUser(db, 'u', 'annotator').user;
    const t = store.nextTask(p.id, u)!;
    assert.equal(t.taskType, 'likert');
    assert.throws(() => store.submit(t.assignmentId, u, 'a', { taskType: 'likert', ratings: { helpfulness: 6, honesty: 1 } }), (e: Error & { field?: string }) => e.field === 'ratings.helpfulness');
    assert.throws(() => store.submit(t.assignmentId, u, 'b', { taskType: 'likert', ratings: { helpfulness: 2 } }), (e: Error & { field?: string }) => e.field === 'ratings.honesty');
    assert.equal(store.submit(t.assignmentId, u, 'c', { taskType: 'likert', ratings: { helpfulness: 2, honesty: 5 } }).annotation.ratings?.honesty, 5);
  });
});
