// Exports: the decision policies on hand-made vote patterns, and each exported file loaded by the trainers' own
// dataset loaders (PreferenceDataset for DPO / reward, UnpairedDataset for KTO, SftDataset for SFT).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PreferenceDataset, UnpairedDataset } from '../../src/data/preference_dataset.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import { createUser } from '../../src/studio/auth.ts';
import { openStudioDb } from '../../src/studio/db.ts';
import { decidePair, exportProject, toJsonl } from '../../src/studio/export.ts';
import { StudioStore, type ItemDetail, type StoredAnnotation, type TaskView } from '../../src/studio/store.ts';
import { jsonl } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let tok: Tokenizer | null = null;
const tiny = () => (tok ??= loadTokenizer(writeTinyChatModel(join(dir, 'tiny'))));

function item(votes: [string, number | null][], extra: Partial<ItemDetail> = {}): ItemDetail {
  return {
    id: 1, projectId: 1, prompt: 'P', promptExternalId: 'p', a: { text: 'A', model: null }, b: { text: 'B', model: null }, gold: null, adjudication: null,
    annotations: votes.map(([choice, strength], i) => ({ id: i, assignmentId: i, itemId: 1, userId: i, userName: `u${i}`, choice, strength, choseLeft: null, ratings: null, editedText: null, durationMs: 0, createdAt: 0 }) as StoredAnnotation & { userName: string }),
    ...extra,
  };
}

describe('pairwise decisions', () => {
  it('majority, splits, ties, agreement threshold, adjudication and gold', () => {
    assert.deepEqual(decidePair(item([['a', null], ['a', 2], ['b', null]])), { winner: 'a', margin: 1.5, source: 'votes' });
    assert.deepEqual(decidePair(item([['a', 1], ['b', 3]])), { skip: 'split vote' });
    assert.deepEqual(decidePair(item([['a', 1], ['b', 3]]), { ties: 'strength' }), { winner: 'b', margin: 3, source: 'votes' });
    assert.deepEqual(decidePair(item([['a', 2], ['b', 2]]), { ties: 'strength' }), { skip: 'split vote' });
    assert.deepEqual(decidePair(item([['tie', null], ['tie', null], ['a', null]])), { skip: 'tie' });
    assert.deepEqual(decidePair(item([['a', null], ['a', null], ['b', null]]), { minAgreement: 0.7 }), { skip: 'low agreement' });
    assert.deepEqual(decidePair(item([['a', null], ['b', null], ['b', null]]), { requireAdjudication: true }), { skip: 'disagreement not adjudicated' });
    const adjudicated = item([['a', null], ['b', null]], { adjudication: { userId: 9, choice: 'b', ratings: null, editedText: null, note: '', createdAt: 0 } });
    assert.deepEqual(decidePair(adjudicated, { requireAdjudication: true }), { winner: 'b', margin: 1, source: 'adjudication' });
    assert.deepEqual(decidePair(item([], { gold: { choice: 'a' } })), { winner: 'a', margin: 1, source: 'gold' });
    assert.deepEqual(decidePair(item([], { gold: { choice: 'a' } }), { includeGold: false }), { skip: 'gold item' });
    assert.deepEqual(decidePair(item([])), { skip: 'not annotated' });
  });
});

/** Annotates every item of a project with `answer(task, userIndex)` by two annotators. */
function annotateAll(store: StudioStore, projectId: number, users: ReturnType<typeof createUser>['user'][], answer: (t: TaskView, ui: number) => Parameters<StudioStore['submit']>[3]) {
  users.forEach((u, ui) => {
    for (let t = store.nextTask(projectId, u); t; t = store.nextTask(projectId, u)) store.submit(t.assignmentId, u, `${u.id}:${t.assignmentId}`, answer(t, ui));
  });
}

describe('exported files load with the trainers\' loaders', () => {
  it('DPO: chosen is the preferred response whatever side it was shown on; PreferenceDataset reads it', async () => {
    const db = openStudioDb(':memory:');
    const store = new StudioStore(db, { seed: 5 });
    const p = store.createProject({ name: 'dpo', taskType: 'pairwise', annotationsPerItem: 2, goldRate: 0 });
    // The "good" response says please; the annotators agree on items 0-5 and split on 6-7.
    const rows = Array.from({ length: 8 }, (_, i) => ({ id: `r${i}`, prompt: `Ask ${i}:`, responses: [` please ${i}`, ` no ${i}`] }));
    store.importJsonl(p.id, jsonl(rows), 'reject');
    const users = [createUser(db, 'x1', 'annotator').user, createUser(db, 'x2', 'annotator').user];
    annotateAll(store, p.id, users, (t, ui) => {
      const task = t as Extract<TaskView, { taskType: 'pairwise' }>;
      const i = Number(task.prompt.slice(4, -1));
      const wantPlease = i < 6 || ui === 0;
      return { taskType: 'pairwise', choice: task.left.includes('please') === wantPlease ? 'left' : 'right', strength: 2 };
    });
    const result = exportProject(p, store.projectItems(p.id), 'dpo');
    assert.equal(result.rows.length, 6);
    assert.deepEqual(result.skipped, { 'split vote': 2 });
    for (const r of result.rows) assert.match(String(r.chosen), /please/);
    const file = join(dir, 'pairs.jsonl');
    writeFileSync(file, toJsonl(result.rows));
    const ds = await PreferenceDataset.open(file, tiny(), { maxLength: 64 });
    try {
      assert.equal(ds.length, 6);
      const first = await ds.get(0);
      assert.equal(tiny().decode(Array.from(first.chosenIds)), ' please 0<|im_end|>');
      assert.equal(tiny().decode(Array.from(first.rejectedIds)), ' no 0<|im_end|>');
    } finally {
      await ds.close();
    }
    // With margins every row has one (PreferenceDataset requires all or none).
    const withMargins = exportProject(p, store.projectItems(p.id), 'dpo', { margins: true });
    assert.ok(withMargins.rows.every((r) => r.margin === 2));
    writeFileSync(file, toJsonl(withMargins.rows));
    const ds2 = await PreferenceDataset.open(file, tiny(), { maxLength: 64 });
    assert.equal(ds2.length, 6);
    await ds2.close();
  });

  it('KTO from ratings: above the midpoint desirable, below undesirable, at it left out; UnpairedDataset reads it', async () => {
    const db = openStudioDb(':memory:');
    const store = new StudioStore(db, { seed: 5 });
    const p = store.createProject({ name: 'kto', taskType: 'likert', annotationsPerItem: 2, criteria: ['helpfulness', 'honesty'], goldRate: 0 });
    store.importJsonl(p.id, jsonl([{ id: 'a', prompt: 'Q:', responses: [' good', ' bad', ' meh'] }]), 'reject');
    const users = [createUser(db, 'y1', 'annotator').user, createUser(db, 'y2', 'annotator').user];
    const score: Record<string, number> = { ' good': 5, ' bad': 1, ' meh': 3 };
    annotateAll(store, p.id, users, (t) => {
      const s = score[(t as Extract<TaskView, { taskType: 'likert' }>).response];
      return { taskType: 'likert', ratings: { helpfulness: s, honesty: s } };
    });
    const result = exportProject(p, store.projectItems(p.id), 'kto');
    assert.deepEqual(result.rows, [{ prompt: 'Q:', completion: ' good', label: true }, { prompt: 'Q:', completion: ' bad', label: false }]);
    assert.deepEqual(result.skipped, { 'at threshold': 1 });
    assert.throws(() => exportProject(p, store.projectItems(p.id), 'dpo'), /needs a pairwise project/);
    const file = join(dir, 'kto.jsonl');
    writeFileSync(file, toJsonl(result.rows));
    const ds = await UnpairedDataset.open(file, tiny(), { maxLength: 64 });
    assert.deepEqual([ds.length, ds.stats.desirable, ds.stats.undesirable], [2, 1, 1]);
    await ds.close();
  });

  it('SFT from edits: each distinct edit (or the adjudicated one) is a prompt/completion row; SftDataset reads it', async () => {
    const db = openStudioDb(':memory:');
    const store = new StudioStore(db, { seed: 5 });
    const p = store.createProject({ name: 'sft', taskType: 'edit', annotationsPerItem: 2, goldRate: 0 });
    store.importJsonl(p.id, jsonl([{ id: 'a', prompt: 'Fix:', responses: [' teh cat'] }, { id: 'b', prompt: 'Fix2:', responses: [' a dog'] }]), 'reject');
    const users = [createUser(db, 'z1', 'annotator').user, createUser(db, 'z2', 'annotator').user];
    annotateAll(store, p.id, users, (t, ui) => ({ taskType: 'edit', text: (t as Extract<TaskView, { taskType: 'edit' }>).response.replace('teh', ui === 0 ? 'the' : 'thee') }));
    const items = store.projectItems(p.id);
    store.adjudicate(items[1].id, createUser(db, 'aud', 'auditor').user, { editedText: ' a good dog' });
    const result = exportProject(p, store.projectItems(p.id), 'sft');
    assert.deepEqual(result.rows, [{ prompt: 'Fix:', completion: ' the cat' }, { prompt: 'Fix:', completion: ' thee cat' }, { prompt: 'Fix2:', completion: ' a good dog' }]);
    const file = join(dir, 'sft.jsonl');
    writeFileSync(file, toJsonl(result.rows));
    const ds = await SftDataset.open(file, tiny(), { maxLength: 64 });
    assert.equal(ds.length, 3);
    await ds.close();
  });
});
