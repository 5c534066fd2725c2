// Accounts and bearer tokens. A token is 32 random bytes (base64url) shown once when the user is created or the
// token rotated; only its SHA-256 is stored, so a copy of the database does not give anyone a usable token.
// (A fast hash is right here: the token has 256 bits of entropy, nothing to brute-force, unlike a password.)
import { createHash, randomBytes } from 'node:crypto';
import { AlignkitError } from '../tensor/errors.ts';
import type { StudioDb } from './db.ts';

export const ROLES = ['admin', 'annotator', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface StudioUser {
  id: number;
  name: string;
  role: Role;
  createdAt: number;
}

/** A fresh random token: 'ak_' + 43 base64url characters. */
export function newToken(): string {
  return `ak_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

interface UserRow {
  id: number;
  name: string;
  role: Role;
  created_at: number;
}

const toUser = (r: UserRow): StudioUser => ({ id: r.id, name: r.name, role: r.role, createdAt: r.created_at });

/** Creates a user; returns it with its token (the only time the token exists in clear). */
export function createUser(db: StudioDb, name: string, role: Role): { user: StudioUser; token: string } {
  if (!ROLES.includes(role)) throw new AlignkitError(`unknown role '${role}': expected ${ROLES.join(', ')}`);
  const token = newToken();
  try {
    const info = db.prepare('INSERT INTO users (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)').run(name, role, hashToken(token), Date.now());
    return { user: { id: Number(info.lastInsertRowid), name, role, createdAt: Date.now() }, token };
  } catch (e) {
    if (e instanceof Error && /UNIQUE constraint failed: users.name/.test(e.message)) throw new AlignkitError(`a user named '${name}' already exists`);
    throw e;
  }
}

/** Replaces a user's token (the old one stops working at once); returns the new token. */
export function rotateToken(db: StudioDb, userId: number): string {
  const token = newToken();
  const info = db.prepare('UPDATE users SET token_hash = ? WHERE id = ?').run(hashToken(token), userId);
  if (info.changes === 0) throw new AlignkitError(`no user with id ${userId}`);
  return token;
}

/** The user a token belongs to, or null. */
export function userForToken(db: StudioDb, token: string): StudioUser | null {
  const row = db.prepare('SELECT id, name, role, created_at FROM users WHERE token_hash = ?').get(hashToken(token)) as UserRow | undefined;
  return row ? toUser(row) : null;
}

export function listUsers(db: StudioDb): StudioUser[] {
  return (db.prepare('SELECT id, name, role, created_at FROM users ORDER BY id').all() as UserRow[]).map(toUser);
}
