// Agreement on a hand-worked example: two annotators, six items,
//   u1: a a b b tie a      u2: a b b b tie b
// Cohen's κ: p_o = 4/6, p_e = (3·1 + 2·4 + 1·1)/36 = 1/3, κ = (2/3 - 1/3)/(2/3) = 0.5.
// Fleiss' κ: P̄ = 4/6, p = (4, 6, 2)/12, P_e = 56/144, κ = (2/3 - 56/144)/(1 - 56/144) = 5/11.
// Krippendorff's α (nominal): coincidences n = (a 4, b 6, tie 2), D_o = 4 off-diagonal, D_e = 144 - 56 = 88,
// α = 1 - 11·4/88 = 0.5.
// Plus a gold item (u1 right, u2 wrong), position bias from the recorded left/right order, and time per item
// from a fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeAgreement, uniqueMode } from '../../src/studio/agreement.ts';
import { createUser } from '../../src/studio/auth.ts';
import { openStudioDb } from '../../src/studio/db.ts';
import { StudioStore, type TaskView } from '../../src/studio/store.ts';
import { jsonl } from './helpers.ts';

const U1 = ['a', 'a', 'b', 'b', 'tie', 'a'] as const;
const U2 = ['a', 'b', 'b', 'b', 'tie', 'b'] as const;

function build() {
  let clock = 0;
  const db = openStudioDb(':memory:');
  const store = new StudioStore(db, { seed: 3, now: () => clock });
  const p = store.createProject({ name: 'agree', taskType: 'pairwise', annotationsPerItem: 2, goldRate: 1 });
  const rows: unknown[] = U1.map((_, i) => ({ id: `i${i}`, prompt: `prompt ${i}`, responses: [`A${i}`, `B${i}`] }));
  rows.push({ id: 'gold', prompt: 'gold prompt', responses: ['GA', 'GB'], gold: { choice: 'a' } });
  store.importJsonl(p.id, jsonl(rows), 'reject');
  const users = [createUser(db, 'u1', 'annotator').user, createUser(db, 'u2', 'annotator').user];
  const labels = [U1, U2];
  let leftChoices = [0, 0];
  let rightChoices = [0, 0];
  users.forEach((u, ui) => {
    for (;;) {
      const t = store.nextTask(p.id, u) as Extract<TaskView, { taskType: 'pairwise' }> | null;
      if (!t) break;
      const gold = t.prompt === 'gold prompt';
      const want = gold ? (ui === 0 ? 'a' : 'b') : labels[ui][Number(t.prompt.split(' ')[1])];
      const aOnLeft = t.left.startsWith('A') || t.left === 'GA';
      const choice = want === 'tie' ? 'tie' : (want === 'a') === aOnLeft ? 'left' : 'right';
      if (choice === 'left') leftChoices[ui]++;
      if (choice === 'right') rightChoices[ui]++;
      clock += ui === 0 ? 2000 : 5000; // u1 takes 2 s per item, u2 5 s
      store.submit(t.assignmentId, u, `${u.id}-${t.assignmentId}`, { taskType: 'pairwise', choice });
    }
  });
  return { store, p, leftChoices, rightChoices };
}

describe('agreement', () => {
  it('matches the hand-computed Cohen κ, Fleiss κ and Krippendorff α', () => {
    const { store, p } = build();
    const r = computeAgreement(p, store.projectItems(p.id), store.disagreements(p.id).length);
    assert.equal(r.overall!.items, 6); // the gold item is an audit, not part of agreement
    assert.ok(Math.abs(r.overall!.cohenKappa! - 0.5) < 1e-12);
    assert.ok(Math.abs(r.overall!.fleissKappa! - 5 / 11) < 1e-12);
    assert.equal(r.overall!.fleissItems, 6);
    assert.ok(Math.abs(r.overall!.krippendorffAlpha! - 0.5) < 1e-12);
    assert.ok(Math.abs(r.overall!.percentAgreement! - 4 / 6) < 1e-12);
    assert.deepEqual(r.pairs.map((x) => [x.a, x.b, x.shared]), [['u1', 'u2', 6]]);
    assert.equal(r.disagreements, 2); // items 2 and 6
  });

  it('per annotator: majority agreement, gold accuracy, position bias and time', () => {
    const { store, p, leftChoices, rightChoices } = build();
    const r = computeAgreement(p, store.projectItems(p.id), 0);
    const [u1, u2] = r.annotators;
    assert.deepEqual([u1.name, u1.annotations, u1.majority.agree, u1.majority.total], ['u1', 7, 4, 6]);
    assert.deepEqual([u1.gold.correct, u1.gold.total, u2.gold.correct, u2.gold.total], [1, 1, 0, 1]);
    for (const [k, u] of [u1, u2].entries()) {
      assert.equal(u.positionBias!.left, leftChoices[k]);
      assert.equal(u.positionBias!.right, rightChoices[k]);
      assert.equal(u.positionBias!.leftRate, leftChoices[k] / (leftChoices[k] + rightChoices[k]));
      assert.ok(u.positionBias!.pValue! > 0 && u.positionBias!.pValue! <= 1);
    }
    assert.equal(u1.medianSeconds, 2);
    assert.equal(u2.meanSeconds, 5);
  });

  it('Likert criteria get ordinal α and weighted κ; an adjudication takes an item out of the queue', () => {
    const db = openStudioDb(':memory:');
    const store = new StudioStore(db, { seed: 1 });
    const p = store.createProject({ name: 'lk', taskType: 'likert', annotationsPerItem: 2, criteria: ['helpfulness'], goldRate: 0 });
    store.importJsonl(p.id, jsonl([0, 1, 2, 3].map((i) => ({ id: `x${i}`, prompt: `p${i}`, responses: [`r${i}`] }))), 'reject');
    const users = [createUser(db, 'v1', 'annotator').user, createUser(db, 'v2', 'annotator').user];
    const scores: Record<string, [number, number]> = { p0: [1, 1], p1: [2, 3], p2: [4, 4], p3: [5, 2] };
    users.forEach((u, ui) => {
      for (let t = store.nextTask(p.id, u); t; t = store.nextTask(p.id, u)) store.submit(t.assignmentId, u, `${t.assignmentId}`, { taskType: 'likert', ratings: { helpfulness: scores[t.prompt][ui] } });
    });
    const queue = store.disagreements(p.id);
    assert.deepEqual(queue.map((i) => i.prompt), ['p3']); // spread 3 >= 2; p1 spreads by 1 only
    const r = computeAgreement(p, store.projectItems(p.id), queue.length);
    const h = r.criteria[0];
    assert.equal(h.criterion, 'helpfulness');
    assert.equal(h.items, 4);
    // By hand: coincidences give n = (1: 2, 2: 2, 3: 1, 4: 2, 5: 1); ordinal δ² (2,3) = 2.25, (2,5) = 20.25, so
    // D_o = 2·2.25 + 2·20.25 = 45 and D_e = Σ n_c n_k δ²_ck = 648: α = 1 - 7·45/648 = 37/72.
    assert.ok(Math.abs(h.krippendorffAlpha! - 37 / 72) < 1e-12, String(h.krippendorffAlpha));
    // Quadratic-weighted Cohen: Σ w·O = 1 + 9 = 10, Σ w·E = 64/4 = 16, κ = 1 - 10/16.
    assert.ok(Math.abs(h.cohenKappa! - 0.375) < 1e-12, String(h.cohenKappa));
    store.adjudicate(queue[0].id, createUser(db, 'boss', 'auditor').user, { ratings: { helpfulness: 3 } });
    assert.equal(store.disagreements(p.id).length, 0);
  });

  it('uniqueMode: a tie for most frequent has no majority', () => {
    assert.equal(uniqueMode(['a', 'b', 'a']), 'a');
    assert.equal(uniqueMode(['a', 'b']), null);
    assert.equal(uniqueMode([]), null);
  });
});
