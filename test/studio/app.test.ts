// The HTTP API in-process, the whole flow without a browser: project, guidelines, import, two annotators,
// the disagreement queue, adjudication, agreement and the DPO download; markup in user data stays inert.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsonl, testStudio } from './helpers.ts';

describe('studio API flow', () => {
  it('project → import → annotate ×2 → adjudicate → agreement → export', async () => {
    const s = testStudio();
    s.addUser('ann2', 'annotator');
    const created = await s.call('POST', '/api/projects', { as: 'admin', body: { name: 'flow', taskType: 'pairwise', annotationsPerItem: 2, goldRate: 0 } });
    assert.equal(created.status, 201);
    const id = created.json.project.id as number;
    const gl = await s.call('PUT', `/api/projects/${id}/guidelines`, { as: 'admin', body: { markdown: '## Rules\n<img src=x onerror=alert(1)> **be fair**' } });
    assert.equal(gl.json.project.guidelinesHtml, '<h2>Rules</h2>\n<p>&lt;img src=x onerror=alert(1)&gt; <strong>be fair</strong></p>');
    assert.deepEqual(gl.json.project.guidelinesTree[1].children[0], { text: '<img src=x onerror=alert(1)> ' });
    const rows = [
      { id: 'a', prompt: 'P-a', responses: ['good a', 'bad a'] },
      { id: 'b', prompt: 'P-b', responses: ['good b <script>alert(1)</script>', 'bad b'] },
      { id: 'c', prompt: 'P-c', responses: ['good c', 'bad c'] },
    ];
    const imported = await s.call('POST', `/api/projects/${id}/import`, { as: 'admin', body: { jsonl: jsonl(rows), onError: 'reject' } });
    assert.deepEqual([imported.status, imported.json.items], [200, 3]);

    for (const who of ['annotator', 'ann2']) {
      for (let n = 0; ; n++) {
        const next = await s.call('POST', `/api/projects/${id}/next`, { as: who });
        const task = next.json.task;
        if (!task) break;
        if (task.prompt === 'P-b') assert.ok([task.left, task.right].includes('good b <script>alert(1)</script>')); // raw text, as imported
        // Both prefer "good", except ann2 on P-c.
        const wantGood = !(who === 'ann2' && task.prompt === 'P-c');
        const choice = task.left.startsWith('good') === wantGood ? 'left' : 'right';
        const r = await s.call('POST', `/api/assignments/${task.assignmentId}/submit`, { as: who, body: { taskType: 'pairwise', choice, strength: 2 }, headers: { 'Idempotency-Key': `${who}-${n}` } });
        assert.equal(r.status, 201);
      }
    }
    const queue = await s.call('GET', `/api/projects/${id}/disagreements`, { as: 'auditor' });
    assert.deepEqual(queue.json.items.map((i: { prompt: string }) => i.prompt), ['P-c']);
    const beforeAdj = await s.call('GET', `/api/projects/${id}/export?format=dpo`, { as: 'admin' });
    assert.equal(beforeAdj.headers.get('x-export-rows'), '2');
    assert.deepEqual(JSON.parse(beforeAdj.headers.get('x-export-skipped')!), { 'split vote': 1 });
    const bad = await s.call('POST', `/api/items/${queue.json.items[0].id}/adjudicate`, { as: 'auditor', body: { choice: 'left' } });
    assert.deepEqual([bad.status, bad.json.field], [400, 'choice']);
    const adj = await s.call('POST', `/api/items/${queue.json.items[0].id}/adjudicate`, { as: 'auditor', body: { choice: 'a', note: 'a is right' } });
    assert.equal(adj.json.item.adjudication.choice, 'a');
    assert.equal((await s.call('GET', `/api/projects/${id}/disagreements`, { as: 'auditor' })).json.items.length, 0);

    const agreement = (await s.call('GET', `/api/projects/${id}/agreement`, { as: 'auditor' })).json.agreement;
    assert.equal(agreement.overall.items, 3);
    assert.ok(Math.abs(agreement.overall.percentAgreement - 2 / 3) < 1e-12);
    assert.equal(agreement.annotators.length, 2);

    const exported = await s.call('GET', `/api/projects/${id}/export?format=dpo&margins=true`, { as: 'admin' });
    assert.equal(exported.status, 200);
    assert.match(exported.headers.get('content-disposition') ?? '', /filename="flow\.dpo\.jsonl"/);
    const lines = exported.text.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines, [
      { prompt: 'P-a', chosen: 'good a', rejected: 'bad a', margin: 2 },
      { prompt: 'P-b', chosen: 'good b <script>alert(1)</script>', rejected: 'bad b', margin: 2 },
      { prompt: 'P-c', chosen: 'good c', rejected: 'bad c', margin: 1 },
    ]);
    const progress = (await s.call('GET', `/api/projects/${id}`, { as: 'annotator' })).json.project.progress;
    assert.deepEqual(progress, { items: 3, goldItems: 0, completeItems: 3, annotations: 6 });
  });
});

describe('server start', () => {
  it('a port in use is a clear error, and the database is released', async () => {
    const { startStudio } = await import('../../src/studio/server.ts');
    const first = await startStudio({ dbFile: ':memory:', port: 0 });
    try {
      await assert.rejects(startStudio({ dbFile: ':memory:', port: first.port }), /cannot listen on 127\.0\.0\.1:\d+: the port is in use/);
    } finally {
      await first.close();
    }
  });
});
