// The studio's SQLite database (better-sqlite3): opened in WAL mode with foreign keys on, schema created and
// upgraded by numbered migrations recorded in PRAGMA user_version. Every statement elsewhere is prepared with
// bound parameters; nothing builds SQL from request data.
//
// Durability: synchronous=FULL in WAL mode makes every committed transaction survive a process kill and a power
// loss; a submission is acknowledged only after its transaction commits, so an acknowledged annotation is never
// lost (test/studio/restart.test.ts kills the server mid-load to check it).
import Database from 'better-sqlite3';
import { AlignkitError } from '../tensor/errors.ts';

export type StudioDb = Database.Database;

/** Migrations in order; migration i (0-based) brings the schema to user_version i + 1. Never edit a shipped one. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'annotator', 'auditor')),
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task_type TEXT NOT NULL CHECK (task_type IN ('pairwise', 'likert', 'edit')),
    annotations_per_item INTEGER NOT NULL CHECK (annotations_per_item >= 1),
    criteria TEXT NOT NULL,
    likert_max INTEGER NOT NULL CHECK (likert_max >= 2),
    gold_rate REAL NOT NULL CHECK (gold_rate >= 0 AND gold_rate <= 1),
    guidelines TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  );
  CREATE TABLE prompts (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    external_id TEXT NOT NULL,
    text TEXT NOT NULL,
    source_line INTEGER,
    UNIQUE (project_id, external_id)
  );
  CREATE TABLE responses (
    id INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    model TEXT,
    UNIQUE (prompt_id, position)
  );
  CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    response_a INTEGER NOT NULL REFERENCES responses(id),
    response_b INTEGER REFERENCES responses(id),
    gold TEXT
  );
  CREATE INDEX items_by_project ON items (project_id);
  CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    item_id INTEGER NOT NULL REFERENCES items(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    swapped INTEGER NOT NULL CHECK (swapped IN (0, 1)),
    assigned_at INTEGER NOT NULL,
    UNIQUE (item_id, user_id)
  );
  CREATE INDEX assignments_by_user ON assignments (user_id);
  CREATE TABLE annotations (
    id INTEGER PRIMARY KEY,
    assignment_id INTEGER NOT NULL UNIQUE REFERENCES assignments(id),
    item_id INTEGER NOT NULL REFERENCES items(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    idempotency_key TEXT NOT NULL,
    choice TEXT CHECK (choice IN ('a', 'b', 'tie')),
    strength INTEGER,
    chose_left INTEGER,
    ratings TEXT,
    edited_text TEXT,
    duration_ms INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (user_id, idempotency_key)
  );
  CREATE INDEX annotations_by_item ON annotations (item_id);
  CREATE TABLE adjudications (
    item_id INTEGER PRIMARY KEY REFERENCES items(id),
    user_id INTEGER NOT NULL REFERENCES users(id),
    choice TEXT CHECK (choice IN ('a', 'b', 'tie')),
    ratings TEXT,
    edited_text TEXT,
    note TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating if needed) a studio database and brings its schema up to date. */
export function openStudioDb(file: string): StudioDb {
  let db: StudioDb;
  try {
    db = new Database(file);
  } catch (e) {
    throw new AlignkitError(`${file}: cannot open the studio database: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    if (file !== ':memory:') db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, file);
  } catch (e) {
    db.close();
    if (e instanceof AlignkitError) throw e;
    throw new AlignkitError(`${file}: not a usable studio database: ${e instanceof Error ? e.message : String(e)}`);
  }
  return db;
}

function migrate(db: StudioDb, file: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    throw new AlignkitError(`${file}: the database has schema version ${version}, newer than this alignkit understands (${MIGRATIONS.length}); upgrade alignkit`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
