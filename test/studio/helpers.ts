// Shared setup for the studio tests: an in-memory (or on-disk) studio with one user per role, and a request
// helper that calls the hono app in-process.
import { createStudioApp, type StudioApp, type StudioAppOptions } from '../../src/studio/app.ts';
import { createUser, type Role, type StudioUser } from '../../src/studio/auth.ts';
import { openStudioDb, type StudioDb } from '../../src/studio/db.ts';
import { StudioStore } from '../../src/studio/store.ts';

export interface TestStudio extends StudioApp {
  db: StudioDb;
  tokens: Record<string, string>;
  users: Record<string, StudioUser>;
  /** Calls the app in-process; `as` names a user created by addUser (or 'admin' / 'annotator' / 'auditor'). */
  call(method: string, path: string, opts?: { as?: string; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; json: any; text: string; headers: Headers }>;
  addUser(name: string, role: Role): StudioUser;
}

export function testStudio(opts: StudioAppOptions & { dbFile?: string; seed?: number } = {}): TestStudio {
  const db = openStudioDb(opts.dbFile ?? ':memory:');
  const store = new StudioStore(db, { seed: opts.seed ?? 1 });
  const built = createStudioApp(store, opts);
  const tokens: Record<string, string> = {};
  const users: Record<string, StudioUser> = {};
  const addUser = (name: string, role: Role) => {
    const { user, token } = createUser(db, name, role);
    tokens[name] = token;
    users[name] = user;
    return user;
  };
  addUser('admin', 'admin');
  addUser('annotator', 'annotator');
  addUser('auditor', 'auditor');
  return {
    ...built,
    db,
    tokens,
    users,
    addUser,
    async call(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.as) headers.Authorization = `Bearer ${tokens[o.as]}`;
      let body: string | undefined;
      if (o.body !== undefined) {
        headers['Content-Type'] ??= 'application/json';
        body = typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
      }
      const res = await built.app.request(path, { method, headers, body });
      const text = await res.text();
      let json: any = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: res.status, json, text, headers: res.headers };
    },
  };
}

export const jsonl = (rows: readonly unknown[]): string => rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n';
