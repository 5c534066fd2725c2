// The studio's HTTP API (hono) and static front end. Every /api route is declared in ROUTES with the roles that
// may call it; the auth middleware in front of each handler answers 401 without a valid bearer token and 403
// for a role not listed (test/studio/security.test.ts enumerates the registered routes and checks both). Tokens
// travel only in the Authorization header — never in cookies — so a cross-site page cannot make the browser send
// them (no CSRF). Request bodies are capped (413), validated with zod (400 naming the field), and all SQL is
// prepared (store.ts). Responses carry a strict Content-Security-Policy: scripts only from this origin, no
// inline script, so even markup that slipped into a page could not run.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { computeAgreement } from './agreement.ts';
import { createUser, listUsers, rotateToken, ROLES, userForToken, type Role, type StudioUser } from './auth.ts';
import { ExportError, exportProject, toJsonl } from './export.ts';
import { badRequest, StudioError } from './errors.ts';
import { listRuns, runMetrics, runSamples } from './runs.ts';
import { StudioStore, type Submission } from './store.ts';
import { AlignkitError } from '../tensor/errors.ts';

export const DEFAULT_BODY_LIMIT = 8 * 1024 * 1024;
export const WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

type Env = { Variables: { user: StudioUser } };

export interface RouteSpec {
  method: 'GET' | 'POST' | 'PUT';
  path: string;
  roles: readonly Role[];
}

export interface StudioAppOptions {
  /** Folder whose run folders (with metrics.jsonl) the dashboard lists; null hides the dashboard's data. */
  runsDir?: string | null;
  /** Largest request body in bytes (default 8 MiB). */
  bodyLimit?: number;
  /** Folder of the front end (default web/ of the package). */
  webDir?: string;
}

const ALL: readonly Role[] = ROLES;
const ADMIN: readonly Role[] = ['admin'];
const REVIEW: readonly Role[] = ['admin', 'auditor'];
const ANNOTATE: readonly Role[] = ['admin', 'annotator'];

// ------------------------------------------------------------------------------------------------ validation

function fieldPath(p: readonly PropertyKey[], prefix: string): string {
  const parts = p.map((x, i) => (typeof x === 'number' ? `[${x}]` : i === 0 ? String(x) : `.${String(x)}`)).join('');
  if (!parts) return prefix || 'body';
  return prefix ? `${prefix}${parts.startsWith('[') ? '' : '.'}${parts}` : parts;
}

function parse<T>(schema: z.ZodType<T>, value: unknown, prefix = ''): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw badRequest(fieldPath(issue.path, prefix), issue.message);
}

async function jsonBody(c: Context<Env>): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw badRequest('Content-Type', `expected application/json, got '${type}'`);
  try {
    return await c.req.json();
  } catch {
    throw badRequest('body', 'not valid JSON');
  }
}

const idParam = (c: Context<Env>, name = 'id'): number => parse(z.coerce.number().int().positive(), c.req.param(name), name);

const projectSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    taskType: z.enum(['pairwise', 'likert', 'edit']),
    annotationsPerItem: z.number().int().min(1).max(20).default(2),
    criteria: z.array(z.string().trim().min(1).max(100)).max(20).optional(),
    likertMax: z.number().int().min(2).max(10).optional(),
    goldRate: z.number().min(0).max(1).optional(),
    guidelines: z.string().max(200_000).optional(),
  })
  .strict();

const submissionSchema = z.discriminatedUnion('taskType', [
  z.object({ taskType: z.literal('pairwise'), choice: z.enum(['left', 'right', 'tie']), strength: z.number().int().min(1).max(3).optional() }).strict(),
  z.object({ taskType: z.literal('likert'), ratings: z.record(z.string(), z.number().int()) }).strict(),
  z.object({ taskType: z.literal('edit'), text: z.string().max(100_000) }).strict(),
]);

const adjudicationSchema = z
  .object({
    choice: z.enum(['a', 'b', 'tie']).optional(),
    ratings: z.record(z.string(), z.number().int()).optional(),
    editedText: z.string().max(100_000).optional(),
    note: z.string().max(10_000).optional(),
  })
  .strict();

const boolString = z.enum(['true', 'false']).transform((s) => s === 'true');
const exportQuery = z
  .object({
    format: z.enum(['dpo', 'kto', 'sft']),
    ties: z.enum(['skip', 'strength']).optional(),
    minAgreement: z.coerce.number().min(0).max(1).optional(),
    requireAdjudication: boolString.optional(),
    includeGold: boolString.optional(),
    margins: boolString.optional(),
    criterion: z.string().optional(),
    threshold: z.coerce.number().optional(),
  })
  .strict();

// ------------------------------------------------------------------------------------------------ app

export interface StudioApp {
  app: Hono<Env>;
  store: StudioStore;
  routes: readonly RouteSpec[];
}

export function createStudioApp(store: StudioStore, opts: StudioAppOptions = {}): StudioApp {
  const app = new Hono<Env>();
  const routes: RouteSpec[] = [];
  const db = store.db;
  const runsDir = opts.runsDir ?? null;
  const limit = opts.bodyLimit ?? DEFAULT_BODY_LIMIT;

  app.use('*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'");
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Referrer-Policy', 'no-referrer');
    c.header('X-Frame-Options', 'DENY');
  });
  app.use('/api/*', bodyLimit({ maxSize: limit, onError: (c) => c.json({ error: `request body larger than ${limit} bytes`, field: 'body' }, 413) }));

  const authFor = (roles: readonly Role[]) =>
    async (c: Context<Env>, next: () => Promise<void>) => {
      const header = c.req.header('authorization') ?? '';
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const user = m ? userForToken(db, m[1]) : null;
      if (!user) {
        c.header('WWW-Authenticate', 'Bearer realm="alignkit studio"');
        return c.json({ error: m ? 'invalid token' : 'missing bearer token (Authorization: Bearer <token>)', field: 'Authorization' }, 401);
      }
      if (!roles.includes(user.role)) return c.json({ error: `forbidden: this needs the role ${roles.join(' or ')}; you are ${user.role}` }, 403);
      c.set('user', user);
      await next();
    };

  const route = (method: RouteSpec['method'], p: string, roles: readonly Role[], handler: (c: Context<Env>, user: StudioUser) => Response | Promise<Response>) => {
    routes.push({ method, path: p, roles });
    app.on(method, p, authFor(roles), (c) => handler(c, c.get('user')));
  };

  // -- accounts
  route('GET', '/api/me', ALL, (c, user) => c.json({ user }));
  route('GET', '/api/users', ADMIN, (c) => c.json({ users: listUsers(db) }));
  route('POST', '/api/users', ADMIN, async (c) => {
    const body = parse(z.object({ name: z.string().trim().min(1).max(100), role: z.enum(ROLES) }).strict(), await jsonBody(c));
    try {
      return c.json(createUser(db, body.name, body.role), 201);
    } catch (e) {
      if (e instanceof AlignkitError && /already exists/.test(e.message)) throw new StudioError(409, e.message, 'name');
      throw e;
    }
  });
  route('POST', '/api/users/:id/token', ADMIN, (c) => {
    const id = idParam(c);
    try {
      return c.json({ token: rotateToken(db, id) });
    } catch (e) {
      if (e instanceof AlignkitError) throw new StudioError(404, e.message);
      throw e;
    }
  });

  // -- projects
  route('GET', '/api/projects', ALL, (c) => c.json({ projects: store.listProjects() }));
  route('POST', '/api/projects', ADMIN, async (c) => c.json({ project: store.createProject(parse(projectSchema, await jsonBody(c))) }, 201));
  route('GET', '/api/projects/:id', ALL, (c) => c.json({ project: store.projectView(idParam(c)) }));
  route('PUT', '/api/projects/:id/guidelines', ADMIN, async (c) => {
    const id = idParam(c);
    const body = parse(z.object({ markdown: z.string().max(200_000) }).strict(), await jsonBody(c));
    store.setGuidelines(id, body.markdown);
    return c.json({ project: store.projectView(id) });
  });
  route('POST', '/api/projects/:id/import', ADMIN, async (c) => {
    const id = idParam(c);
    const body = parse(z.object({ jsonl: z.string(), onError: z.enum(['skip', 'reject']).default('reject') }).strict(), await jsonBody(c));
    const result = store.importJsonl(id, body.jsonl, body.onError);
    return c.json(result, result.rejected ? 422 : 200);
  });

  // -- annotation
  route('POST', '/api/projects/:id/next', ANNOTATE, (c, user) => c.json({ task: store.nextTask(idParam(c), user) }));
  route('GET', '/api/assignments/:id', ANNOTATE, (c, user) => c.json({ task: store.taskView(idParam(c), user) }));
  route('POST', '/api/assignments/:id/submit', ANNOTATE, async (c, user) => {
    const id = idParam(c);
    const key = parse(z.string().trim().min(1, 'required: a unique key per submission, reused on retries').max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII only'), c.req.header('idempotency-key') ?? '', 'Idempotency-Key');
    const sub = parse(submissionSchema, await jsonBody(c)) as Submission;
    const { annotation, replayed } = store.submit(id, user, key, sub);
    return c.json({ annotation, replayed }, replayed ? 200 : 201);
  });

  // -- review
  route('GET', '/api/projects/:id/disagreements', REVIEW, (c) => c.json({ items: store.disagreements(idParam(c)) }));
  route('GET', '/api/items/:id', REVIEW, (c) => c.json({ item: store.item(idParam(c)) }));
  route('POST', '/api/items/:id/adjudicate', REVIEW, async (c, user) => {
    const id = idParam(c);
    return c.json({ item: store.adjudicate(id, user, parse(adjudicationSchema, await jsonBody(c))) });
  });
  route('GET', '/api/projects/:id/agreement', REVIEW, (c) => {
    const id = idParam(c);
    const project = store.project(id);
    return c.json({ agreement: computeAgreement(project, store.projectItems(id), store.disagreements(id).length) });
  });
  route('GET', '/api/projects/:id/export', ADMIN, (c) => {
    const id = idParam(c);
    const q = parse(exportQuery, c.req.query(), 'query');
    const project = store.project(id);
    const { format, ...options } = q;
    const result = exportProject(project, store.projectItems(id), format, options);
    const safeName = project.name.replace(/[^\w.-]+/g, '_');
    c.header('Content-Type', 'application/x-ndjson; charset=utf-8');
    c.header('Content-Disposition', `attachment; filename="${safeName}.${format}.jsonl"`);
    c.header('X-Export-Rows', String(result.rows.length));
    c.header('X-Export-Skipped', JSON.stringify(result.skipped));
    return c.body(toJsonl(result.rows));
  });

  // -- runs dashboard
  const needRuns = () => {
    if (runsDir === null) throw new StudioError(404, 'no runs folder: start the studio with --runs <dir>');
    return runsDir;
  };
  route('GET', '/api/runs', REVIEW, (c) => c.json({ root: runsDir, runs: runsDir === null ? [] : listRuns(runsDir) }));
  route('GET', '/api/runs/metrics', REVIEW, (c) => {
    const q = parse(z.object({ run: z.string().min(1).max(500), after: z.coerce.number().int().min(-1).default(-1) }).strict(), c.req.query(), 'query');
    return c.json({ run: q.run, records: runMetrics(needRuns(), q.run, q.after) });
  });
  route('GET', '/api/runs/samples', REVIEW, (c) => {
    const q = parse(z.object({ run: z.string().min(1).max(500) }).strict(), c.req.query(), 'query');
    return c.json({ run: q.run, samples: runSamples(needRuns(), q.run) });
  });

  app.all('/api/*', (c) => c.json({ error: `no such API route: ${c.req.method} ${c.req.path}` }, 404));

  // -- static front end (a fixed list of files read once; nothing else on disk is reachable)
  const webDir = opts.webDir ?? WEB_DIR;
  const files: Record<string, { type: string; body: string }> = {};
  for (const [name, type] of [
    ['index.html', 'text/html; charset=utf-8'],
    ['app.js', 'text/javascript; charset=utf-8'],
    ['charts.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
  ] as const) {
    const file = path.join(webDir, name);
    if (fs.existsSync(file)) files[name] = { type, body: fs.readFileSync(file, 'utf8') };
  }
  app.get('/', (c) => (files['index.html'] ? c.body(files['index.html'].body, 200, { 'Content-Type': files['index.html'].type }) : c.text('front end not found', 404)));
  app.get('/:file{[a-z]+\\.(js|css)}', (c) => {
    const f = files[c.req.param('file')];
    return f ? c.body(f.body, 200, { 'Content-Type': f.type, 'Cache-Control': 'no-cache' }) : c.text('not found', 404);
  });

  app.onError((err, c) => {
    if (err instanceof StudioError) return c.json({ error: err.message, field: err.field }, err.status);
    if (err instanceof ExportError) return c.json({ error: err.message }, 400);
    console.error(`alignkit studio: ${c.req.method} ${c.req.path}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return c.json({ error: 'internal error' }, 500);
  });

  return { app, store, routes };
}
