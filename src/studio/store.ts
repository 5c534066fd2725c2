// The studio's data operations: projects, imports, assignment of items to annotators, submissions,
// adjudication. All SQL is prepared with bound parameters. better-sqlite3 is synchronous and the server runs in
// one process, so each operation below is one transaction that no other request can interleave with.
//
// Assignment (double annotation): each non-gold item goes to `annotations_per_item` distinct annotators. An
// annotator asking for work first gets back their open (unsubmitted) assignment, if any; otherwise, with
// probability gold_rate, a gold item they have not seen (an audit: its answer is known); otherwise the item that
// is closest to complete among those they have not seen and that still need annotators — counting submitted
// annotations and assignments handed out within the lease, so an abandoned assignment frees its slot after
// ASSIGNMENT_LEASE_MS. For pairwise items the left/right order is drawn at random and recorded, so position bias
// (choosing whatever is on the left) can be measured.
import { Xoshiro128 } from '../data/loader.ts';
import type { StudioDb } from './db.ts';
import { badRequest, conflict, notFound } from './errors.ts';
import { checkRatings, parseImport, type ImportIssue, type TaskType } from './importer.ts';
import { parseMarkdown, renderMarkdown, type MdNode } from './markdown.ts';
import type { StudioUser } from './auth.ts';

export const ASSIGNMENT_LEASE_MS = 30 * 60 * 1000;
export const DEFAULT_CRITERIA = ['helpfulness', 'harmlessness', 'honesty'] as const;

export type Choice = 'a' | 'b' | 'tie';

export interface Project {
  id: number;
  name: string;
  taskType: TaskType;
  annotationsPerItem: number;
  criteria: string[];
  likertMax: number;
  goldRate: number;
  guidelines: string;
  createdAt: number;
}

export interface NewProject {
  name: string;
  taskType: TaskType;
  annotationsPerItem: number;
  criteria?: string[];
  likertMax?: number;
  goldRate?: number;
  guidelines?: string;
}

interface ProjectRow {
  id: number;
  name: string;
  task_type: TaskType;
  annotations_per_item: number;
  criteria: string;
  likert_max: number;
  gold_rate: number;
  guidelines: string;
  created_at: number;
}

const toProject = (r: ProjectRow): Project => ({
  id: r.id,
  name: r.name,
  taskType: r.task_type,
  annotationsPerItem: r.annotations_per_item,
  criteria: JSON.parse(r.criteria) as string[],
  likertMax: r.likert_max,
  goldRate: r.gold_rate,
  guidelines: r.guidelines,
  createdAt: r.created_at,
});

/** What an annotator is shown: never the canonical a/b identity of the two sides. */
export type TaskView =
  | { assignmentId: number; projectId: number; taskType: 'pairwise'; prompt: string; left: string; right: string }
  | { assignmentId: number; projectId: number; taskType: 'likert'; prompt: string; response: string; criteria: string[]; likertMax: number }
  | { assignmentId: number; projectId: number; taskType: 'edit'; prompt: string; response: string };

export type Submission =
  | { taskType: 'pairwise'; choice: 'left' | 'right' | 'tie'; strength?: number }
  | { taskType: 'likert'; ratings: Record<string, number> }
  | { taskType: 'edit'; text: string };

export interface StoredAnnotation {
  id: number;
  assignmentId: number;
  itemId: number;
  userId: number;
  choice: Choice | null;
  strength: number | null;
  choseLeft: boolean | null;
  ratings: Record<string, number> | null;
  editedText: string | null;
  durationMs: number;
  createdAt: number;
}

interface AnnotationRow {
  id: number;
  assignment_id: number;
  item_id: number;
  user_id: number;
  choice: Choice | null;
  strength: number | null;
  chose_left: number | null;
  ratings: string | null;
  edited_text: string | null;
  duration_ms: number;
  created_at: number;
}

const toAnnotation = (r: AnnotationRow): StoredAnnotation => ({
  id: r.id,
  assignmentId: r.assignment_id,
  itemId: r.item_id,
  userId: r.user_id,
  choice: r.choice,
  strength: r.strength,
  choseLeft: r.chose_left === null ? null : r.chose_left === 1,
  ratings: r.ratings === null ? null : (JSON.parse(r.ratings) as Record<string, number>),
  editedText: r.edited_text,
  durationMs: r.duration_ms,
  createdAt: r.created_at,
});

export type Gold = { choice: Choice } | { ratings: Record<string, number> };

export interface ItemDetail {
  id: number;
  projectId: number;
  prompt: string;
  promptExternalId: string;
  a: { text: string; model: string | null };
  b: { text: string; model: string | null } | null;
  gold: Gold | null;
  annotations: (StoredAnnotation & { userName: string })[];
  adjudication: { userId: number; choice: Choice | null; ratings: Record<string, number> | null; editedText: string | null; note: string; createdAt: number } | null;
}

export interface ImportResult {
  prompts: number;
  items: number;
  lines: number;
  issues: ImportIssue[];
  /** 'reject' with issues: nothing was written. */
  rejected: boolean;
}

export interface StoreOptions {
  /** Seeds the left/right and gold draws (default: random). */
  seed?: number;
  /** Clock in milliseconds (tests). */
  now?: () => number;
}

export class StudioStore {
  private readonly rng: Xoshiro128;
  private readonly now: () => number;

  constructor(
    readonly db: StudioDb,
    opts: StoreOptions = {},
  ) {
    this.rng = Xoshiro128.fromSeed([opts.seed ?? Math.floor(Math.random() * 2 ** 48)]);
    this.now = opts.now ?? Date.now;
  }

  // ------------------------------------------------------------------------------------------- projects

  createProject(p: NewProject): Project {
    const criteria = p.criteria && p.criteria.length > 0 ? p.criteria : p.taskType === 'likert' ? [...DEFAULT_CRITERIA] : [];
    if (new Set(criteria).size !== criteria.length) throw badRequest('criteria', 'criteria must be distinct');
    try {
      const info = this.db
        .prepare('INSERT INTO projects (name, task_type, annotations_per_item, criteria, likert_max, gold_rate, guidelines, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(p.name, p.taskType, p.annotationsPerItem, JSON.stringify(criteria), p.likertMax ?? 5, p.goldRate ?? 0.1, p.guidelines ?? '', this.now());
      return this.project(Number(info.lastInsertRowid));
    } catch (e) {
      if (e instanceof Error && /UNIQUE constraint failed: projects.name/.test(e.message)) throw conflict(`a project named '${p.name}' already exists`);
      throw e;
    }
  }

  project(id: number): Project {
    const row = this.db.prepare('SELECT * FROM projects WHERE id = ?').get(id) as ProjectRow | undefined;
    if (!row) throw notFound(`project ${id}`);
    return toProject(row);
  }

  projectByName(name: string): Project {
    const row = this.db.prepare('SELECT * FROM projects WHERE name = ?').get(name) as ProjectRow | undefined;
    if (!row) throw notFound(`project '${name}'`);
    return toProject(row);
  }

  listProjects(): (Project & { items: number; annotations: number })[] {
    const rows = this.db.prepare('SELECT * FROM projects ORDER BY id').all() as ProjectRow[];
    const items = this.db.prepare('SELECT count(*) AS n FROM items WHERE project_id = ?').pluck();
    const annotations = this.db.prepare('SELECT count(*) AS n FROM annotations n JOIN items i ON i.id = n.item_id WHERE i.project_id = ?').pluck();
    return rows.map((r) => ({ ...toProject(r), items: items.get(r.id) as number, annotations: annotations.get(r.id) as number }));
  }

  /** The project with its guidelines rendered to safe HTML, and progress counts. */
  projectView(id: number): Project & { guidelinesHtml: string; guidelinesTree: MdNode[]; progress: { items: number; goldItems: number; annotations: number; completeItems: number } } {
    const p = this.project(id);
    const counts = this.db
      .prepare(
        `SELECT count(*) AS items, coalesce(sum(gold IS NOT NULL), 0) AS goldItems,
                coalesce(sum(gold IS NULL AND (SELECT count(*) FROM annotations n WHERE n.item_id = items.id) >= ?), 0) AS completeItems
         FROM items WHERE project_id = ?`,
      )
      .get(p.annotationsPerItem, id) as { items: number; goldItems: number; completeItems: number };
    const annotations = this.db.prepare('SELECT count(*) FROM annotations n JOIN items i ON i.id = n.item_id WHERE i.project_id = ?').pluck().get(id) as number;
    return { ...p, guidelinesHtml: renderMarkdown(p.guidelines), guidelinesTree: parseMarkdown(p.guidelines), progress: { ...counts, annotations } };
  }

  setGuidelines(id: number, markdown: string): void {
    const info = this.db.prepare('UPDATE projects SET guidelines = ? WHERE id = ?').run(markdown, id);
    if (info.changes === 0) throw notFound(`project ${id}`);
  }

  // ------------------------------------------------------------------------------------------- import

  /**
   * Imports JSONL text into a project in ONE transaction. onError 'reject': any bad line and nothing is written;
   * 'skip': the valid lines are written and the bad ones reported. A failure while writing rolls everything back.
   */
  importJsonl(projectId: number, text: string, onError: 'skip' | 'reject'): ImportResult {
    const p = this.project(projectId);
    const existing = new Set(this.db.prepare('SELECT external_id FROM prompts WHERE project_id = ?').pluck().all(projectId) as string[]);
    const parsed = parseImport(text, { taskType: p.taskType, criteria: p.criteria, likertMax: p.likertMax, existingIds: existing });
    if (parsed.issues.length > 0 && onError === 'reject') return { prompts: 0, items: 0, lines: parsed.lines, issues: parsed.issues, rejected: true };
    const insPrompt = this.db.prepare('INSERT INTO prompts (project_id, external_id, text, source_line) VALUES (?, ?, ?, ?)');
    const insResponse = this.db.prepare('INSERT INTO responses (prompt_id, position, text, model) VALUES (?, ?, ?, ?)');
    const insItem = this.db.prepare('INSERT INTO items (project_id, prompt_id, response_a, response_b, gold) VALUES (?, ?, ?, ?, ?)');
    let items = 0;
    this.db.transaction(() => {
      for (const row of parsed.rows) {
        const promptId = Number(insPrompt.run(projectId, row.externalId, row.prompt, row.line).lastInsertRowid);
        const ids = row.responses.map((r, k) => Number(insResponse.run(promptId, k, r.text, r.model).lastInsertRowid));
        if (p.taskType === 'pairwise') {
          for (let i = 0; i < ids.length; i++)
            for (let j = i + 1; j < ids.length; j++) {
              const gold = row.gold && 'choice' in row.gold ? JSON.stringify({ choice: row.gold.choice }) : null;
              insItem.run(projectId, promptId, ids[i], ids[j], gold);
              items++;
            }
        } else {
          ids.forEach((rid, k) => {
            const gold = row.gold && 'ratings' in row.gold ? JSON.stringify({ ratings: row.gold.ratings[k] }) : null;
            insItem.run(projectId, promptId, rid, null, gold);
            items++;
          });
        }
      }
    })();
    return { prompts: parsed.rows.length, items, lines: parsed.lines, issues: parsed.issues, rejected: false };
  }

  // ------------------------------------------------------------------------------------------- assignment

  /** The annotator's next task in a project (see the top of the file), or null when nothing is left for them. */
  nextTask(projectId: number, user: StudioUser): TaskView | null {
    const p = this.project(projectId);
    return this.db.transaction((): TaskView | null => {
      const open = this.db
        .prepare(
          `SELECT a.id FROM assignments a JOIN items i ON i.id = a.item_id
           WHERE a.user_id = ? AND i.project_id = ? AND NOT EXISTS (SELECT 1 FROM annotations n WHERE n.assignment_id = a.id)
           ORDER BY a.id LIMIT 1`,
        )
        .pluck()
        .get(user.id, projectId) as number | undefined;
      if (open !== undefined) return this.taskView(open, user);
      const unseenGold = () =>
        this.db
          .prepare('SELECT id FROM items i WHERE project_id = ? AND gold IS NOT NULL AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = ?) ORDER BY id')
          .pluck()
          .all(projectId, user.id) as number[];
      let itemId: number | null = null;
      if (p.goldRate > 0 && this.rng.next() / 4294967296 < p.goldRate) {
        const gold = unseenGold();
        if (gold.length) itemId = gold[this.rng.below(gold.length)];
      }
      if (itemId === null) {
        const candidates = this.db
          .prepare(
            `SELECT i.id, (SELECT count(*) FROM assignments a WHERE a.item_id = i.id
                             AND (a.assigned_at > ? OR EXISTS (SELECT 1 FROM annotations n WHERE n.assignment_id = a.id))) AS taken
             FROM items i
             WHERE i.project_id = ? AND i.gold IS NULL
               AND NOT EXISTS (SELECT 1 FROM assignments a WHERE a.item_id = i.id AND a.user_id = ?)
               AND taken < ?
             ORDER BY taken DESC, i.id`,
          )
          .all(this.now() - ASSIGNMENT_LEASE_MS, projectId, user.id, p.annotationsPerItem) as { id: number; taken: number }[];
        if (candidates.length) {
          // Among the items closest to complete, a random one (so annotators do not all walk the file in order).
          const best = candidates.filter((c) => c.taken === candidates[0].taken);
          itemId = best[this.rng.below(best.length)].id;
        }
      }
      if (itemId === null) {
        const gold = unseenGold();
        if (gold.length) itemId = gold[this.rng.below(gold.length)];
      }
      if (itemId === null) return null;
      const swapped = p.taskType === 'pairwise' ? this.rng.below(2) : 0;
      const id = Number(this.db.prepare('INSERT INTO assignments (item_id, user_id, swapped, assigned_at) VALUES (?, ?, ?, ?)').run(itemId, user.id, swapped, this.now()).lastInsertRowid);
      return this.taskView(id, user);
    })();
  }

  /** One of the user's assignments, as shown to them; another user's assignment is "not found". */
  taskView(assignmentId: number, user: StudioUser): TaskView {
    const row = this.db
      .prepare(
        `SELECT a.id, a.user_id, a.swapped, i.project_id, p.task_type, p.criteria, p.likert_max, pr.text AS prompt, ra.text AS a_text, rb.text AS b_text
         FROM assignments a JOIN items i ON i.id = a.item_id JOIN projects p ON p.id = i.project_id JOIN prompts pr ON pr.id = i.prompt_id
         JOIN responses ra ON ra.id = i.response_a LEFT JOIN responses rb ON rb.id = i.response_b
         WHERE a.id = ?`,
      )
      .get(assignmentId) as
      | { id: number; user_id: number; swapped: number; project_id: number; task_type: TaskType; criteria: string; likert_max: number; prompt: string; a_text: string; b_text: string | null }
      | undefined;
    if (!row || row.user_id !== user.id) throw notFound(`assignment ${assignmentId}`);
    const base = { assignmentId: row.id, projectId: row.project_id, prompt: row.prompt };
    if (row.task_type === 'pairwise') {
      const [left, right] = row.swapped ? [row.b_text!, row.a_text] : [row.a_text, row.b_text!];
      return { ...base, taskType: 'pairwise', left, right };
    }
    if (row.task_type === 'likert') return { ...base, taskType: 'likert', response: row.a_text, criteria: JSON.parse(row.criteria) as string[], likertMax: row.likert_max };
    return { ...base, taskType: 'edit', response: row.a_text };
  }

  // ------------------------------------------------------------------------------------------- submissions

  /**
   * Records a submission for one of the user's assignments. The idempotency key makes retries safe: the same key
   * again returns the stored annotation (replayed: true) and writes nothing; a second, different submission for
   * the same assignment is a conflict.
   */
  submit(assignmentId: number, user: StudioUser, idempotencyKey: string, s: Submission): { annotation: StoredAnnotation; replayed: boolean } {
    return this.db.transaction(() => {
      const prior = this.db.prepare('SELECT * FROM annotations WHERE user_id = ? AND idempotency_key = ?').get(user.id, idempotencyKey) as AnnotationRow | undefined;
      if (prior) {
        if (prior.assignment_id !== assignmentId) throw conflict(`Idempotency-Key '${idempotencyKey}' was already used for assignment ${prior.assignment_id}`);
        return { annotation: toAnnotation(prior), replayed: true };
      }
      const a = this.db
        .prepare('SELECT a.id, a.user_id, a.item_id, a.swapped, a.assigned_at, p.task_type, p.criteria, p.likert_max FROM assignments a JOIN items i ON i.id = a.item_id JOIN projects p ON p.id = i.project_id WHERE a.id = ?')
        .get(assignmentId) as { id: number; user_id: number; item_id: number; swapped: number; assigned_at: number; task_type: TaskType; criteria: string; likert_max: number } | undefined;
      if (!a || a.user_id !== user.id) throw notFound(`assignment ${assignmentId}`);
      if (s.taskType !== a.task_type) throw badRequest('taskType', `this assignment is a ${a.task_type} task, not ${s.taskType}`);
      const done = this.db.prepare('SELECT id FROM annotations WHERE assignment_id = ?').pluck().get(assignmentId);
      if (done !== undefined) throw conflict(`assignment ${assignmentId} was already submitted (with another Idempotency-Key)`);
      let choice: Choice | null = null, strength: number | null = null, choseLeft: number | null = null, ratings: string | null = null, edited: string | null = null;
      if (s.taskType === 'pairwise') {
        if (s.choice === 'tie') choice = 'tie';
        else {
          const leftIsA = a.swapped === 0;
          choice = (s.choice === 'left') === leftIsA ? 'a' : 'b';
          choseLeft = s.choice === 'left' ? 1 : 0;
        }
        strength = s.strength ?? null;
      } else if (s.taskType === 'likert') {
        const problem = checkRatings(s.ratings, JSON.parse(a.criteria) as string[], a.likert_max);
        if (problem) throw badRequest(`ratings${problem.field ? `.${problem.field}` : ''}`, problem.message);
        ratings = JSON.stringify(s.ratings);
      } else {
        edited = s.text;
      }
      const now = this.now();
      const id = Number(
        this.db
          .prepare('INSERT INTO annotations (assignment_id, item_id, user_id, idempotency_key, choice, strength, chose_left, ratings, edited_text, duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
          .run(assignmentId, a.item_id, user.id, idempotencyKey, choice, strength, choseLeft, ratings, edited, Math.max(0, now - a.assigned_at), now).lastInsertRowid,
      );
      return { annotation: toAnnotation(this.db.prepare('SELECT * FROM annotations WHERE id = ?').get(id) as AnnotationRow), replayed: false };
    })();
  }

  // ------------------------------------------------------------------------------------------- review

  item(itemId: number): ItemDetail {
    const row = this.db
      .prepare(
        `SELECT i.id, i.project_id, i.gold, pr.text AS prompt, pr.external_id, ra.text AS a_text, ra.model AS a_model, rb.text AS b_text, rb.model AS b_model
         FROM items i JOIN prompts pr ON pr.id = i.prompt_id JOIN responses ra ON ra.id = i.response_a LEFT JOIN responses rb ON rb.id = i.response_b WHERE i.id = ?`,
      )
      .get(itemId) as { id: number; project_id: number; gold: string | null; prompt: string; external_id: string; a_text: string; a_model: string | null; b_text: string | null; b_model: string | null } | undefined;
    if (!row) throw notFound(`item ${itemId}`);
    const annotations = (this.db.prepare('SELECT n.*, u.name AS user_name FROM annotations n JOIN users u ON u.id = n.user_id WHERE n.item_id = ? ORDER BY n.id').all(itemId) as (AnnotationRow & { user_name: string })[]).map(
      (r) => ({ ...toAnnotation(r), userName: r.user_name }),
    );
    const adj = this.db.prepare('SELECT * FROM adjudications WHERE item_id = ?').get(itemId) as
      | { user_id: number; choice: Choice | null; ratings: string | null; edited_text: string | null; note: string; created_at: number }
      | undefined;
    return {
      id: row.id,
      projectId: row.project_id,
      prompt: row.prompt,
      promptExternalId: row.external_id,
      a: { text: row.a_text, model: row.a_model },
      b: row.b_text === null ? null : { text: row.b_text, model: row.b_model },
      gold: row.gold === null ? null : (JSON.parse(row.gold) as Gold),
      annotations,
      adjudication: adj
        ? { userId: adj.user_id, choice: adj.choice, ratings: adj.ratings === null ? null : (JSON.parse(adj.ratings) as Record<string, number>), editedText: adj.edited_text, note: adj.note, createdAt: adj.created_at }
        : null,
    };
  }

  /**
   * Items whose annotators disagree and that nobody has adjudicated: pairwise, not all the same choice; Likert,
   * some criterion whose ratings span `likertSpread` points or more. Gold items are audits, not queued.
   */
  disagreements(projectId: number, likertSpread = 2): ItemDetail[] {
    const p = this.project(projectId);
    const ids = this.db
      .prepare(
        `SELECT i.id FROM items i WHERE i.project_id = ? AND i.gold IS NULL
           AND NOT EXISTS (SELECT 1 FROM adjudications d WHERE d.item_id = i.id)
           AND (SELECT count(*) FROM annotations n WHERE n.item_id = i.id) >= 2 ORDER BY i.id`,
      )
      .pluck()
      .all(projectId) as number[];
    const out: ItemDetail[] = [];
    for (const id of ids) {
      const item = this.item(id);
      if (p.taskType === 'pairwise') {
        if (new Set(item.annotations.map((a) => a.choice)).size > 1) out.push(item);
      } else if (p.taskType === 'likert') {
        const spread = p.criteria.some((c) => {
          const vs = item.annotations.map((a) => a.ratings![c]);
          return Math.max(...vs) - Math.min(...vs) >= likertSpread;
        });
        if (spread) out.push(item);
      }
    }
    return out;
  }

  /** Records (or replaces) the final decision on an item. */
  adjudicate(itemId: number, user: StudioUser, d: { choice?: Choice; ratings?: Record<string, number>; editedText?: string; note?: string }): ItemDetail {
    const item = this.item(itemId);
    const p = this.project(item.projectId);
    if (p.taskType === 'pairwise' && d.choice === undefined) throw badRequest('choice', "a pairwise decision needs 'choice' (a, b or tie)");
    if (p.taskType === 'likert') {
      if (d.ratings === undefined) throw badRequest('ratings', "a Likert decision needs 'ratings'");
      const problem = checkRatings(d.ratings, p.criteria, p.likertMax);
      if (problem) throw badRequest(`ratings${problem.field ? `.${problem.field}` : ''}`, problem.message);
    }
    if (p.taskType === 'edit' && d.editedText === undefined) throw badRequest('editedText', "an edit decision needs 'editedText'");
    this.db
      .prepare('INSERT OR REPLACE INTO adjudications (item_id, user_id, choice, ratings, edited_text, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(itemId, user.id, p.taskType === 'pairwise' ? d.choice! : null, p.taskType === 'likert' ? JSON.stringify(d.ratings) : null, p.taskType === 'edit' ? d.editedText! : null, d.note ?? '', this.now());
    return this.item(itemId);
  }

  /** Every item of a project with its annotations (agreement and export read this). */
  projectItems(projectId: number): ItemDetail[] {
    this.project(projectId);
    const ids = this.db.prepare('SELECT id FROM items WHERE project_id = ? ORDER BY id').pluck().all(projectId) as number[];
    return ids.map((id) => this.item(id));
  }

  /** Counts (for tests and the load report). */
  annotationCount(projectId?: number): number {
    if (projectId === undefined) return this.db.prepare('SELECT count(*) FROM annotations').pluck().get() as number;
    return this.db.prepare('SELECT count(*) FROM annotations n JOIN items i ON i.id = n.item_id WHERE i.project_id = ?').pluck().get(projectId) as number;
  }
}

