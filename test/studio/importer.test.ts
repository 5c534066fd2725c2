// Imports: bad lines are reported with line numbers and fields; 'reject' writes nothing, 'skip' writes the rest;
// pairs and gold answers become the right items; a failure while writing rolls the whole import back.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseImport } from '../../src/studio/importer.ts';
import { jsonl, testStudio } from './helpers.ts';

const ctx = { taskType: 'pairwise' as const, criteria: [], likertMax: 5, existingIds: new Set<string>() };

describe('import parsing', () => {
  it('reports each malformed line with its line number and field', () => {
    const text = [
      '{"id": "a", "prompt": "P", "responses": ["x", "y"]}',
      '',
      '{"prompt": "P", "responses": ["only one"]}',
      'not json',
      '{"prompt": "", "responses": ["x", "y"]}',
      '{"prompt": "P", "responses": ["x", 3]}',
      '{"id": "a", "prompt": "P", "responses": ["x", "y"]}',
      '{"prompt": "P", "responses": ["x", "y"], "extra": 1}',
      '{"prompt": "P", "responses": ["x", "y", "z"], "gold": {"choice": "a"}}',
      '[1, 2]',
    ].join('\n');
    const r = parseImport(text, ctx);
    assert.equal(r.rows.length, 1);
    assert.equal(r.lines, 9);
    assert.deepEqual(
      r.issues.map((i) => [i.line, i.field]),
      [[3, 'responses'], [4, null], [5, 'prompt'], [6, 'responses[1]'], [7, 'id'], [8, null], [9, 'gold.choice'], [10, null]],
    );
    assert.match(r.issues[0].message, /at least 2 responses/);
    assert.match(r.issues[4].message, /duplicate id 'a' \(first on line 1\)/);
    assert.match(r.issues[5].message, /extra/);
  });

  it('Likert gold needs one valid ratings object per response', () => {
    const lk = { taskType: 'likert' as const, criteria: ['helpfulness'], likertMax: 5, existingIds: new Set<string>() };
    const r = parseImport(jsonl([{ prompt: 'P', responses: ['x'], gold: { ratings: [{ helpfulness: 9 }] } }, { prompt: 'P', responses: ['x'], gold: { ratings: [{ helpfulness: 4 }] } }]), lk);
    assert.deepEqual(r.issues.map((i) => [i.line, i.field]), [[1, 'gold.ratings[0].helpfulness']]);
    assert.deepEqual(r.rows[0].gold, { ratings: [{ helpfulness: 4 }] });
  });
});

describe('import into a project (one transaction)', () => {
  const rows = [
    { id: 'p1', prompt: 'P1', responses: ['a', 'b', 'c'] },
    { id: 'p2', prompt: 'P2', responses: ['d', { text: 'e', model: 'm2' }], gold: { choice: 'b' } },
  ];

  it("'reject' writes nothing when a line is bad; 'skip' writes the good lines; pairs expand to items", async () => {
    const s = testStudio();
    const p = s.store.createProject({ name: 'x', taskType: 'pairwise', annotationsPerItem: 2 });
    const text = jsonl([...rows, '{"prompt": 1}']);
    const rejected = s.store.importJsonl(p.id, text, 'reject');
    assert.equal(rejected.rejected, true);
    assert.deepEqual(rejected.issues.map((i) => i.line), [3]);
    assert.equal(s.db.prepare('SELECT count(*) FROM prompts').pluck().get(), 0);
    const ok = s.store.importJsonl(p.id, text, 'skip');
    assert.deepEqual([ok.prompts, ok.items, ok.issues.length, ok.rejected], [2, 4, 1, false]); // 3 pairs + 1
    const items = s.store.projectItems(p.id);
    assert.deepEqual(items.map((i) => [i.a.text, i.b?.text, i.gold]), [['a', 'b', null], ['a', 'c', null], ['b', 'c', null], ['d', 'e', { choice: 'b' }]]);
    assert.equal(items[3].b?.model, 'm2');
    // A second import of the same ids is refused line by line.
    const again = s.store.importJsonl(p.id, jsonl(rows), 'skip');
    assert.deepEqual(again.issues.map((i) => [i.line, i.field]), [[1, 'id'], [2, 'id']]);
  });

  it('a failure in the middle of writing rolls back every row', () => {
    const s = testStudio();
    const p = s.store.createProject({ name: 'x', taskType: 'pairwise', annotationsPerItem: 2 });
    // A real SQLite failure on the 3rd prompt, after two prompts were already inserted in the transaction.
    s.db.exec("CREATE TRIGGER boom BEFORE INSERT ON prompts WHEN NEW.text = 'P3' BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    const text = jsonl([rows[0], rows[1], { prompt: 'P3', responses: ['x', 'y'] }]);
    assert.throws(() => s.store.importJsonl(p.id, text, 'skip'), /disk says no/);
    for (const t of ['prompts', 'responses', 'items']) assert.equal(s.db.prepare(`SELECT count(*) FROM ${t}`).pluck().get(), 0, t);
  });

  it('the HTTP import answers 422 with the issues when rejecting', async () => {
    const s = testStudio();
    const p = s.store.createProject({ name: 'x', taskType: 'likert', annotationsPerItem: 2, criteria: ['helpfulness'] });
    const r = await s.call('POST', `/api/projects/${p.id}/import`, { as: 'admin', body: { jsonl: jsonl([{ prompt: 'P', responses: ['x'] }, '{']), onError: 'reject' } });
    assert.equal(r.status, 422);
    assert.deepEqual(r.json.issues.map((i: { line: number }) => i.line), [2]);
    const ok = await s.call('POST', `/api/projects/${p.id}/import`, { as: 'admin', body: { jsonl: jsonl([{ prompt: 'P', responses: ['x', 'y'] }]) } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.items, 2); // Likert: one item per response
  });
});
