// Security: every registered API route answers 401 without a valid token (header only; cookies are ignored) and
// 403 for each role it does not allow; annotators reach only their own assignments; bad input is a 400 naming
// the field; bodies over the limit are 413; tokens are stored hashed; run names cannot leave the runs folder.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ROLES } from '../../src/studio/auth.ts';
import { jsonl, testStudio } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-studio-sec-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('authentication and roles on every route', () => {
  const s = testStudio();
  const victim = s.addUser('victim', 'annotator'); // token rotation below must not rotate the callers' own tokens
  const registered = [...new Map(s.app.routes.filter((r) => r.path.startsWith('/api/') && r.method !== 'ALL').map((r) => [`${r.method} ${r.path}`, r])).values()];

  it('the route table lists exactly the registered API routes', () => {
    assert.deepEqual(registered.map((r) => `${r.method} ${r.path}`).sort(), s.routes.map((r) => `${r.method} ${r.path}`).sort());
    assert.ok(s.routes.length >= 20, `${s.routes.length} routes`);
  });

  for (const r of s.routes) {
    const path = r.path.startsWith('/api/users/') ? r.path.replace(':id', String(victim.id)) : r.path.replace(/:id/g, '1');
    it(`${r.method} ${r.path}: 401 without / with a bad token, 403 for ${ROLES.filter((x) => !r.roles.includes(x)).join(', ') || 'no role'}`, async () => {
      const none = await s.call(r.method, path);
      assert.equal(none.status, 401, 'no token');
      assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
      assert.equal((await s.call(r.method, path, { headers: { Authorization: 'Bearer ak_wrong' } })).status, 401, 'bad token');
      assert.equal((await s.call(r.method, path, { headers: { Cookie: `token=${s.tokens.admin}` } })).status, 401, 'cookie is not a credential');
      for (const role of ROLES.filter((x) => !r.roles.includes(x))) assert.equal((await s.call(r.method, path, { as: role })).status, 403, role);
      for (const role of r.roles) {
        const ok = await s.call(r.method, path, { as: role });
        assert.ok(![401, 403].includes(ok.status), `${role} allowed: ${ok.status} ${ok.text}`);
      }
    });
  }
});

describe('access to items', () => {
  it('annotators see and submit only their own assignments', async () => {
    const s = testStudio();
    s.addUser('other', 'annotator');
    const p = s.store.createProject({ name: 'p', taskType: 'pairwise', annotationsPerItem: 2, goldRate: 0 });
    s.store.importJsonl(p.id, jsonl([{ prompt: 'P', responses: ['x', 'y'] }]), 'reject');
    const mine = (await s.call('POST', `/api/projects/${p.id}/next`, { as: 'annotator' })).json.task;
    assert.equal((await s.call('GET', `/api/assignments/${mine.assignmentId}`, { as: 'annotator' })).status, 200);
    assert.equal((await s.call('GET', `/api/assignments/${mine.assignmentId}`, { as: 'other' })).status, 404);
    const steal = await s.call('POST', `/api/assignments/${mine.assignmentId}/submit`, { as: 'other', body: { taskType: 'pairwise', choice: 'left' }, headers: { 'Idempotency-Key': 'k' } });
    assert.equal(steal.status, 404);
    assert.equal((await s.call('GET', `/api/items/1`, { as: 'annotator' })).status, 403);
    assert.equal(s.store.annotationCount(), 0);
  });
});

describe('input validation', () => {
  const s = testStudio({ bodyLimit: 2048 });
  const cases: [string, string, unknown, string, Record<string, string>?][] = [
    ['POST', '/api/projects', { name: 'x', taskType: 'bogus' }, 'taskType'],
    ['POST', '/api/projects', { taskType: 'pairwise' }, 'name'],
    ['POST', '/api/projects', { name: 'x', taskType: 'pairwise', annotationsPerItem: 0 }, 'annotationsPerItem'],
    ['POST', '/api/users', { name: 'x', role: 'root' }, 'role'],
    ['GET', '/api/projects/abc', undefined, 'id'],
    ['GET', '/api/projects/1/export', undefined, 'query.format'],
    ['GET', '/api/projects/1/export?format=dpo&minAgreement=2', undefined, 'query.minAgreement'],
    ['POST', '/api/projects/1/import', { jsonl: 'x', onError: 'maybe' }, 'onError'],
    ['POST', '/api/projects/1/import', '{"jsonl": ', 'body'],
  ];
  for (const [method, path, body, field] of cases) {
    it(`${method} ${path} ${JSON.stringify(body) ?? ''}: 400 naming '${field}'`, async () => {
      const r = await s.call(method, path, { as: 'admin', body });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json.field, field);
      assert.ok(r.json.error.includes(field));
    });
  }

  it('a submission needs an Idempotency-Key and a valid choice; a JSON body needs the JSON content type', async () => {
    s.store.createProject({ name: 'v', taskType: 'pairwise', annotationsPerItem: 1, goldRate: 0 });
    const p = s.store.projectByName('v');
    s.store.importJsonl(p.id, jsonl([{ prompt: 'P', responses: ['x', 'y'] }]), 'reject');
    const t = (await s.call('POST', `/api/projects/${p.id}/next`, { as: 'annotator' })).json.task;
    const noKey = await s.call('POST', `/api/assignments/${t.assignmentId}/submit`, { as: 'annotator', body: { taskType: 'pairwise', choice: 'left' } });
    assert.deepEqual([noKey.status, noKey.json.field], [400, 'Idempotency-Key']);
    const badChoice = await s.call('POST', `/api/assignments/${t.assignmentId}/submit`, { as: 'annotator', body: { taskType: 'pairwise', choice: 'up' }, headers: { 'Idempotency-Key': 'k' } });
    assert.deepEqual([badChoice.status, badChoice.json.field], [400, 'choice']);
    const badStrength = await s.call('POST', `/api/assignments/${t.assignmentId}/submit`, { as: 'annotator', body: { taskType: 'pairwise', choice: 'left', strength: 7 }, headers: { 'Idempotency-Key': 'k' } });
    assert.deepEqual([badStrength.status, badStrength.json.field], [400, 'strength']);
    const form = await s.call('POST', `/api/assignments/${t.assignmentId}/submit`, { as: 'annotator', body: 'choice=left', headers: { 'Idempotency-Key': 'k', 'Content-Type': 'application/x-www-form-urlencoded' } });
    assert.deepEqual([form.status, form.json.field], [400, 'Content-Type']);
    assert.equal(s.store.annotationCount(), 0);
  });

  it('bodies over the limit are refused with 413', async () => {
    const r = await s.call('POST', '/api/projects/1/import', { as: 'admin', body: { jsonl: 'x'.repeat(4000) } });
    assert.equal(r.status, 413);
  });

  it('SQL stays data: a name full of quotes is stored as is', async () => {
    const evil = "x'); DROP TABLE users; --";
    assert.equal((await s.call('POST', '/api/projects', { as: 'admin', body: { name: evil, taskType: 'edit' } })).status, 201);
    assert.equal(s.store.projectByName(evil).name, evil);
    assert.equal((await s.call('GET', '/api/me', { as: 'admin' })).status, 200);
  });
});

describe('tokens and files', () => {
  it('stores only the SHA-256 of each token; rotation invalidates the old token', async () => {
    const s = testStudio();
    const rows = s.db.prepare('SELECT name, token_hash FROM users').all() as { name: string; token_hash: string }[];
    for (const r of rows) {
      assert.equal(r.token_hash, createHash('sha256').update(s.tokens[r.name]).digest('hex'));
      assert.ok(!r.token_hash.includes(s.tokens[r.name]));
    }
    const old = s.tokens.annotator;
    const rotated = await s.call('POST', `/api/users/${s.users.annotator.id}/token`, { as: 'admin' });
    assert.equal(rotated.status, 200);
    assert.equal((await s.call('GET', '/api/me', { headers: { Authorization: `Bearer ${old}` } })).status, 401);
    assert.equal((await s.call('GET', '/api/me', { headers: { Authorization: `Bearer ${rotated.json.token}` } })).json.user.name, 'annotator');
  });

  it('run names cannot reach outside the runs folder', async () => {
    const runs = join(tmp, 'runs');
    mkdirSync(join(runs, 'a'), { recursive: true });
    writeFileSync(join(runs, 'a', 'metrics.jsonl'), '{"step": 1, "loss": 2, "time": 1}\n');
    writeFileSync(join(tmp, 'metrics.jsonl'), '{"step": 1, "secret": 42, "time": 1}\n');
    const s = testStudio({ runsDir: runs });
    assert.equal((await s.call('GET', '/api/runs/metrics?run=a', { as: 'auditor' })).json.records.length, 1);
    for (const bad of ['..', '../', join(tmp), '/etc']) {
      assert.equal((await s.call('GET', `/api/runs/metrics?run=${encodeURIComponent(bad)}`, { as: 'auditor' })).status, 404, bad);
    }
  });

  it('pages carry a Content-Security-Policy without inline scripts', async () => {
    const s = testStudio();
    const r = await s.call('GET', '/');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-security-policy') ?? '', /script-src 'self'(;|$)/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
    assert.equal((await s.call('GET', '/../package.json')).status, 404);
  });
});
