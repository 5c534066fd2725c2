// `alignkit studio` subcommands as users run them on a database file: users (the token printed once, never
// listed), a project, imports that reject or skip bad lines (reported as file:line), agreement and an export
// written atomically; --help documents the server flags.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { userForToken } from '../../src/studio/auth.ts';
import { openStudioDb } from '../../src/studio/db.ts';
import { StudioStore } from '../../src/studio/store.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, 'studio.sqlite');
const run = (args: string[]) => spawnSync(process.execPath, [bin, 'studio', ...args], { cwd: dir, encoding: 'utf8', timeout: 60_000 });

describe('alignkit studio CLI', () => {
  it('users, project, import, agreement, export', () => {
    const add = run(['user', 'add', 'root', '--role', 'admin', '--db', db, '--json']);
    assert.equal(add.status, 0, add.stderr);
    const { token, user } = JSON.parse(add.stdout) as { token: string; user: { role: string } };
    assert.equal(user.role, 'admin');
    assert.match(token, /^ak_[\w-]{43}$/);
    const list = run(['user', 'list', '--db', db]);
    assert.match(list.stdout, /admin\s+root/);
    assert.ok(!list.stdout.includes(token));
    assert.equal(run(['user', 'add', 'x', '--role', 'boss', '--db', db]).status, 1);
    assert.match(run(['user', 'add', 'root', '--role', 'admin', '--db', db]).stderr, /already exists/);

    assert.equal(run(['project', 'cli', '--task', 'pairwise', '--k', '2', '--gold-rate', '0', '--db', db]).status, 0);
    const file = join(dir, 'in.jsonl');
    writeFileSync(file, ['{"prompt": "P1", "responses": [" yes", " no"]}', '{"prompt": "P2", "responses": [" yes"]}', '{"prompt": "P3", "responses": [" yes", " no"]}'].join('\n'));
    const rejected = run(['import', 'cli', file, '--db', db]);
    assert.equal(rejected.status, 1);
    assert.match(rejected.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: field 'responses': a pairwise project needs at least 2 responses`));
    const skipped = run(['import', 'cli', file, '--on-error', 'skip', '--db', db, '--json']);
    assert.equal(skipped.status, 0, skipped.stderr);
    assert.deepEqual((({ prompts, items }) => ({ prompts, items }))(JSON.parse(skipped.stdout) as { prompts: number; items: number }), { prompts: 2, items: 2 });

    // Two annotators agree that " yes" is better.
    {
      const conn = openStudioDb(db);
      const store = new StudioStore(conn, { seed: 1 });
      assert.equal(userForToken(conn, token)?.name, 'root');
      const p = store.projectByName('cli');
      for (const name of ['a1', 'a2']) {
        const u = conn.prepare("INSERT INTO users (name, role, token_hash, created_at) VALUES (?, 'annotator', ?, 0)").run(name, `h-${name}`);
        const me = { id: Number(u.lastInsertRowid), name, role: 'annotator' as const, createdAt: 0 };
        for (let t = store.nextTask(p.id, me); t && t.taskType === 'pairwise'; t = store.nextTask(p.id, me)) store.submit(t.assignmentId, me, `${name}${t.assignmentId}`, { taskType: 'pairwise', choice: t.left === ' yes' ? 'left' : 'right' });
      }
      conn.close();
    }
    const agreement = run(['agreement', 'cli', '--db', db, '--json']);
    const report = JSON.parse(agreement.stdout) as { overall: { percentAgreement: number; items: number } };
    assert.deepEqual([report.overall.items, report.overall.percentAgreement], [2, 1]);
    assert.match(run(['agreement', 'cli', '--db', db]).stdout, /choice: Cohen κ/);

    const out = join(dir, 'out.dpo.jsonl');
    const exported = run(['export', 'cli', '--format', 'dpo', '--out', out, '--db', db]);
    assert.equal(exported.status, 0, exported.stderr);
    assert.match(exported.stdout, /wrote 2 dpo row\(s\)/);
    assert.deepEqual(readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l)), [{ prompt: 'P1', chosen: ' yes', rejected: ' no' }, { prompt: 'P3', chosen: ' yes', rejected: ' no' }]);
    const wrong = run(['export', 'cli', '--format', 'kto', '--out', join(dir, 'k.jsonl'), '--db', db]);
    assert.equal(wrong.status, 1);
    assert.match(wrong.stderr, /a KTO export needs a Likert project/);
    assert.ok(!existsSync(join(dir, 'k.jsonl')));
  });

  it('--help documents the server options and subcommands', () => {
    const help = run(['--help']);
    for (const s of ['--db <file>', '--port <n>', '--host <address>', '--runs <dir>', '--body-limit', 'user', 'project', 'import', 'agreement', 'export']) assert.ok(help.stdout.includes(s), s);
  });
});
