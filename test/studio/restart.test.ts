// Kill and restart: the studio runs as a child process (the real CLI), annotators submit concurrently, the
// server is killed with SIGKILL mid-load, and a new server on the same database must hold every submission that
// was acknowledged (a 201 reached the client). Retries after the restart with the same Idempotency-Keys are
// replayed, not stored twice.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createUser } from '../../src/studio/auth.ts';
import { openStudioDb } from '../../src/studio/db.ts';
import { StudioStore } from '../../src/studio/store.ts';
import { jsonl } from './helpers.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-studio-kill-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts `alignkit studio --port 0 --json` and resolves with its URL once it prints it. */
function startServer(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [bin, 'studio', '--db', db, '--port', '0', '--json'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve({ child, url: (JSON.parse(line) as { url: string }).url });
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code) => reject(new Error(`studio exited (${code}) before listening: ${err}`)));
  });
}

describe('kill -9 and restart', () => {
  it('every acknowledged submission survives; retries after the restart are replayed', { timeout: 120_000 }, async () => {
    const dbFile = join(dir, 'studio.sqlite');
    const tokens: string[] = [];
    {
      const db = openStudioDb(dbFile);
      const store = new StudioStore(db, { seed: 2 });
      const p = store.createProject({ name: 'crash', taskType: 'pairwise', annotationsPerItem: 2, goldRate: 0 });
      store.importJsonl(p.id, jsonl(Array.from({ length: 200 }, (_, i) => ({ prompt: `p${i}`, responses: [`a${i}`, `b${i}`] }))), 'reject');
      for (let i = 0; i < 8; i++) tokens.push(createUser(db, `k${i}`, 'annotator').token);
      db.close();
    }
    const first = await startServer(dbFile);
    const acked = new Map<string, number>(); // idempotency key -> annotation id
    const pending: { token: string; assignmentId: number; key: string; body: unknown }[] = [];
    let killed = false;
    const submitBody = { taskType: 'pairwise', choice: 'left' };
    const workers = tokens.map(async (token, u) => {
      for (let n = 0; !killed; n++) {
        try {
          const next = await fetch(`${first.url}/api/projects/1/next`, { method: 'POST', headers: { Authorization: `Bearer ${token}` } });
          const task = ((await next.json()) as { task: { assignmentId: number } | null }).task;
          if (!task) return;
          const key = `w${u}-${n}`;
          const job = { token, assignmentId: task.assignmentId, key, body: submitBody };
          pending.push(job);
          const res = await fetch(`${first.url}/api/assignments/${task.assignmentId}/submit`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'Idempotency-Key': key },
            body: JSON.stringify(submitBody),
          });
          const json = (await res.json()) as { annotation: { id: number } };
          if (res.status === 201) acked.set(key, json.annotation.id);
        } catch {
          return; // the server is gone
        }
      }
    });
    // Kill once a good number of submissions is acknowledged, while the others are in flight.
    while (acked.size < 60) await new Promise((r) => setTimeout(r, 5));
    killed = true;
    first.child.kill('SIGKILL');
    await Promise.all(workers);
    assert.equal(first.child.signalCode ?? (await new Promise((r) => first.child.once('exit', (_c, s) => r(s)))), 'SIGKILL');

    const second = await startServer(dbFile);
    try {
      // Every acknowledged annotation is in the database the new server uses.
      const db = openStudioDb(dbFile);
      const stored = new Map((db.prepare('SELECT idempotency_key AS key, id FROM annotations').all() as { key: string; id: number }[]).map((r) => [r.key, r.id]));
      db.close();
      for (const [key, id] of acked) assert.equal(stored.get(key), id, `acknowledged ${key} lost`);
      // Clients retry everything they sent (acknowledged or not) with the same keys: nothing is stored twice.
      for (const job of pending) {
        const res = await fetch(`${second.url}/api/assignments/${job.assignmentId}/submit`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${job.token}`, 'Content-Type': 'application/json', 'Idempotency-Key': job.key },
          body: JSON.stringify(job.body),
        });
        const json = (await res.json()) as { replayed: boolean; annotation: { id: number } };
        assert.ok(res.status === 200 || res.status === 201, `${res.status}`);
        if (acked.has(job.key)) assert.deepEqual([json.replayed, json.annotation.id], [true, acked.get(job.key)]);
      }
      const after = openStudioDb(dbFile);
      assert.equal(after.prepare('SELECT count(*) FROM annotations').pluck().get(), pending.length);
      after.close();
    } finally {
      second.child.kill('SIGTERM');
    }
  });
});
