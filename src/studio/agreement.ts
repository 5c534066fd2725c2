// Agreement and annotation quality for a project, from the statistics in src/eval/stats.ts (shared with the
// evaluation tools, not reimplemented here):
//   - Fleiss' κ over the items that have the project's usual number of annotations (Fleiss needs the same count
//     for every item), Krippendorff's α over all items with two or more (α handles missing ratings), and Cohen's
//     κ for every pair of annotators who share items, with their average weighted by shared items.
//   - Per annotator: agreement with the majority of the OTHER annotators of each item (items where the others
//     have no unique majority are left out), accuracy on gold items, position bias (how often the response shown
//     on the left was chosen, with a two-sided sign test against 50%), and time per item.
// Pairwise labels are a / b / tie in canonical order (the shown order is undone at submission). Likert
// criteria are reported one by one (α ordinal, Cohen's κ quadratic-weighted, Fleiss' κ on the scale points).
import { cohenKappa, fleissKappa, fleissTable, krippendorffAlpha, percentile, signTest } from '../eval/stats.ts';
import type { ItemDetail, Project, StoredAnnotation } from './store.ts';

export interface OverallAgreement {
  /** Items (not gold) with two or more annotations. */
  items: number;
  /** Share of annotator pairs on the same item that agree. */
  percentAgreement: number | null;
  fleissKappa: number | null;
  /** Items Fleiss' κ was computed on (those with the most common annotation count). */
  fleissItems: number;
  krippendorffAlpha: number | null;
  /** Cohen's κ averaged over annotator pairs, weighted by the items they share. */
  cohenKappa: number | null;
}

export interface PairAgreement {
  a: string;
  b: string;
  shared: number;
  kappa: number | null;
}

export interface AnnotatorQuality {
  userId: number;
  name: string;
  annotations: number;
  majority: { agree: number; total: number; rate: number | null };
  gold: { correct: number; total: number; rate: number | null };
  /** Pairwise only: non-tie choices of the left / right response. */
  positionBias: { left: number; right: number; leftRate: number | null; pValue: number | null } | null;
  medianSeconds: number | null;
  meanSeconds: number | null;
}

export interface AgreementReport {
  projectId: number;
  taskType: Project['taskType'];
  annotations: number;
  /** Pairwise: the a/b/tie labels; Likert: per criterion; edit: none (free text has no categories). */
  overall: OverallAgreement | null;
  pairs: PairAgreement[];
  criteria: ({ criterion: string } & OverallAgreement & { pairs: PairAgreement[] })[];
  annotators: AnnotatorQuality[];
  disagreements: number;
}

const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

function safe(f: () => number): number | null {
  try {
    return finite(f());
  } catch (e) {
    if (e instanceof RangeError) return null; // too little data for the statistic
    throw e;
  }
}

type Label = string | number;

/** The agreement statistics of one labelling (item -> user -> label). */
function agreementOf(labels: Map<number, Map<number, Label>>, names: Map<number, string>, kind: 'nominal' | 'ordinal'): OverallAgreement & { pairs: PairAgreement[] } {
  const multi = [...labels.entries()].filter(([, m]) => m.size >= 2);
  const users = [...new Set(multi.flatMap(([, m]) => [...m.keys()]))].sort((x, y) => x - y);
  // Percent agreement over all annotator pairs within items.
  let agreePairs = 0, totalPairs = 0;
  for (const [, m] of multi) {
    const v = [...m.values()];
    for (let i = 0; i < v.length; i++) for (let j = i + 1; j < v.length; j++) {
      totalPairs++;
      if (v[i] === v[j]) agreePairs++;
    }
  }
  // Fleiss: the items with the most common number of ratings.
  const counts = new Map<number, number>();
  for (const [, m] of multi) counts.set(m.size, (counts.get(m.size) ?? 0) + 1);
  const modal = [...counts.entries()].sort((x, y) => y[1] - x[1] || y[0] - x[0])[0]?.[0];
  const fleissRows = multi.filter(([, m]) => m.size === modal).map(([, m]) => [...m.values()]);
  const fleiss = fleissRows.length ? safe(() => fleissKappa(fleissTable(fleissRows).table).kappa) : null;
  // Krippendorff: coders x units with nulls.
  const alpha = multi.length
    ? safe(() => krippendorffAlpha(users.map((u) => multi.map(([, m]) => m.get(u) ?? null)), kind))
    : null;
  // Cohen per pair of annotators.
  const pairs: PairAgreement[] = [];
  let weighted = 0, weight = 0;
  for (let i = 0; i < users.length; i++)
    for (let j = i + 1; j < users.length; j++) {
      const r1: Label[] = [], r2: Label[] = [];
      for (const [, m] of multi) {
        if (m.has(users[i]) && m.has(users[j])) {
          r1.push(m.get(users[i])!);
          r2.push(m.get(users[j])!);
        }
      }
      if (r1.length === 0) continue;
      const kappa = safe(() => cohenKappa(r1, r2, kind === 'ordinal' ? { weights: 'quadratic' } : {}));
      pairs.push({ a: names.get(users[i]) ?? String(users[i]), b: names.get(users[j]) ?? String(users[j]), shared: r1.length, kappa });
      if (kappa !== null) {
        weighted += kappa * r1.length;
        weight += r1.length;
      }
    }
  return {
    items: multi.length,
    percentAgreement: totalPairs ? agreePairs / totalPairs : null,
    fleissKappa: fleiss,
    fleissItems: fleissRows.length,
    krippendorffAlpha: alpha,
    cohenKappa: weight ? weighted / weight : null,
    pairs,
  };
}

/** The unique most frequent label, or null when two labels tie for most. */
export function uniqueMode(values: readonly Label[]): Label | null {
  const c = new Map<Label, number>();
  for (const v of values) c.set(v, (c.get(v) ?? 0) + 1);
  const sorted = [...c.entries()].sort((x, y) => y[1] - x[1]);
  if (sorted.length === 0 || (sorted.length > 1 && sorted[0][1] === sorted[1][1])) return null;
  return sorted[0][0];
}

/** Agreement and quality for a project's items (from StudioStore.projectItems). */
export function computeAgreement(project: Project, items: readonly ItemDetail[], disagreements: number): AgreementReport {
  const names = new Map<number, string>();
  for (const it of items) for (const a of it.annotations) names.set(a.userId, a.userName);
  const regular = items.filter((it) => it.gold === null);
  const labelings: { criterion: string | null; get: (a: StoredAnnotation) => Label | null }[] =
    project.taskType === 'pairwise'
      ? [{ criterion: null, get: (a) => a.choice }]
      : project.taskType === 'likert'
        ? project.criteria.map((c) => ({ criterion: c, get: (a: StoredAnnotation) => a.ratings?.[c] ?? null }))
        : [];
  const byLabeling = labelings.map((l) => {
    const m = new Map<number, Map<number, Label>>();
    for (const it of regular) {
      const users = new Map<number, Label>();
      for (const a of it.annotations) {
        const v = l.get(a);
        if (v !== null) users.set(a.userId, v);
      }
      m.set(it.id, users);
    }
    return { criterion: l.criterion, labels: m, stats: agreementOf(m, names, project.taskType === 'likert' ? 'ordinal' : 'nominal') };
  });

  const annotators: AnnotatorQuality[] = [...names.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([userId, name]) => {
      const mine = items.flatMap((it) => it.annotations.filter((a) => a.userId === userId).map((a) => ({ it, a })));
      let agree = 0, total = 0;
      for (const l of byLabeling) {
        for (const [, users] of l.labels) {
          const own = users.get(userId);
          if (own === undefined) continue;
          const others = [...users.entries()].filter(([u]) => u !== userId).map(([, v]) => v);
          const mode = uniqueMode(others);
          if (mode === null) continue;
          total++;
          if (mode === own) agree++;
        }
      }
      let correct = 0, goldTotal = 0;
      for (const { it, a } of mine) {
        if (it.gold === null) continue;
        if ('choice' in it.gold) {
          goldTotal++;
          if (a.choice === it.gold.choice) correct++;
        } else if (a.ratings) {
          for (const c of project.criteria) {
            goldTotal++;
            if (a.ratings[c] === it.gold.ratings[c]) correct++;
          }
        }
      }
      let positionBias: AnnotatorQuality['positionBias'] = null;
      if (project.taskType === 'pairwise') {
        const left = mine.filter(({ a }) => a.choseLeft === true).length;
        const right = mine.filter(({ a }) => a.choseLeft === false).length;
        positionBias = { left, right, leftRate: left + right ? left / (left + right) : null, pValue: left + right ? signTest(left, right).pValue : null };
      }
      const seconds = mine.map(({ a }) => a.durationMs / 1000);
      return {
        userId,
        name,
        annotations: mine.length,
        majority: { agree, total, rate: total ? agree / total : null },
        gold: { correct, total: goldTotal, rate: goldTotal ? correct / goldTotal : null },
        positionBias,
        medianSeconds: seconds.length ? percentile(seconds, 50) : null,
        meanSeconds: seconds.length ? seconds.reduce((s, x) => s + x, 0) / seconds.length : null,
      };
    });

  const pairwise = project.taskType === 'pairwise' ? byLabeling[0].stats : null;
  let overall: OverallAgreement | null = null;
  if (pairwise) {
    const { pairs: _pairs, ...rest } = pairwise;
    overall = rest;
  }
  return {
    projectId: project.id,
    taskType: project.taskType,
    annotations: items.reduce((s, it) => s + it.annotations.length, 0),
    overall,
    pairs: pairwise ? pairwise.pairs : [],
    criteria: project.taskType === 'likert' ? byLabeling.map((l) => ({ criterion: l.criterion!, ...l.stats })) : [],
    annotators,
    disagreements,
  };
}
