// Turning annotations into training files, in exactly the row formats the trainers read (src/data/preference.ts,
// src/data/formats.ts):
//   dpo  {"prompt", "chosen", "rejected"} (+ "margin" with margins: true) — reward model / DPO / ORPO / SimPO
//   kto  {"prompt", "completion", "label"} from Likert ratings
//   sft  {"prompt", "completion"} from edited responses
//
// Deciding a pairwise item, in order: an adjudication; the gold answer of a gold item (includeGold); otherwise
// the annotators' votes. Votes are counted per choice (a / b / tie); with requireAdjudication, items whose votes
// are not unanimous are left out until someone adjudicates them. When a and b get the same number of votes the
// tie policy decides: 'skip' leaves the item out, 'strength' gives it to the side with the larger summed strength
// (a vote without a strength counts 1) and leaves it out if those are equal too. An item whose winner is 'tie',
// or whose winning share of the votes is below minAgreement, is left out. Every left-out item is counted by
// reason, so the export summary says what happened to each one.
//
// KTO: an item's score on the chosen criterion (or the mean over all criteria) is the adjudicated rating, else the
// mean of the annotators'; label true above the threshold (default: the scale's midpoint), false below, and
// items exactly at it are left out.
import type { Choice, ItemDetail, Project } from './store.ts';

export type ExportFormat = 'dpo' | 'kto' | 'sft';

export interface ExportOptions {
  /** a and b with equally many votes: leave the item out, or decide by summed strength. Default 'skip'. */
  ties?: 'skip' | 'strength';
  /** Least share of votes the winning choice needs (0..1). Default 0 (a plurality is enough). */
  minAgreement?: number;
  /** Leave out non-unanimous items that nobody adjudicated. Default false. */
  requireAdjudication?: boolean;
  /** Export gold items with their known answers. Default true. */
  includeGold?: boolean;
  /** DPO: add a `margin` (mean strength of the winning votes; 1 when unknown) to every row, for reward models. */
  margins?: boolean;
  /** KTO: the criterion to score by (default: the mean of all criteria). */
  criterion?: string;
  /** KTO: the score above which a completion is desirable (default: the midpoint of 1..likertMax). */
  threshold?: number;
}

export interface ExportResult {
  format: ExportFormat;
  rows: Record<string, unknown>[];
  /** Items left out, by reason. */
  skipped: Record<string, number>;
}

export class ExportError extends Error {}

export interface PairDecision {
  winner: 'a' | 'b';
  margin: number;
  source: 'adjudication' | 'gold' | 'votes';
}

/** The decision on one pairwise item, or the reason it is left out. */
export function decidePair(item: ItemDetail, o: ExportOptions = {}): PairDecision | { skip: string } {
  const fromChoice = (c: Choice, source: PairDecision['source']): PairDecision | { skip: string } => (c === 'tie' ? { skip: `${source} tie` } : { winner: c, margin: 1, source });
  if (item.adjudication?.choice) return fromChoice(item.adjudication.choice, 'adjudication');
  if (item.gold && 'choice' in item.gold) return o.includeGold === false ? { skip: 'gold item' } : fromChoice(item.gold.choice, 'gold');
  const votes = item.annotations.filter((a) => a.choice !== null);
  if (votes.length === 0) return { skip: 'not annotated' };
  const count = { a: 0, b: 0, tie: 0 };
  const strength = { a: 0, b: 0 };
  for (const v of votes) {
    count[v.choice!]++;
    if (v.choice !== 'tie') strength[v.choice!] += v.strength ?? 1;
  }
  const unanimous = Math.max(count.a, count.b, count.tie) === votes.length;
  if (!unanimous && o.requireAdjudication) return { skip: 'disagreement not adjudicated' };
  let winner: Choice;
  if (count.tie > count.a && count.tie > count.b) winner = 'tie';
  else if (count.a > count.b) winner = 'a';
  else if (count.b > count.a) winner = 'b';
  else if (count.a === 0) winner = 'tie';
  else if ((o.ties ?? 'skip') === 'strength' && strength.a !== strength.b) winner = strength.a > strength.b ? 'a' : 'b';
  else return { skip: 'split vote' };
  if (winner === 'tie') return { skip: 'tie' };
  const share = count[winner] / votes.length;
  if (share < (o.minAgreement ?? 0)) return { skip: 'low agreement' };
  return { winner, margin: count[winner] ? strength[winner] / count[winner] : 1, source: 'votes' };
}

function mean(xs: readonly number[]): number {
  return xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Builds the rows of an export (writing them is the caller's: toJsonl + an atomic write, or an HTTP body). */
export function exportProject(project: Project, items: readonly ItemDetail[], format: ExportFormat, o: ExportOptions = {}): ExportResult {
  const skipped: Record<string, number> = {};
  const skip = (reason: string) => {
    skipped[reason] = (skipped[reason] ?? 0) + 1;
  };
  const rows: Record<string, unknown>[] = [];
  if (o.minAgreement !== undefined && !(o.minAgreement >= 0 && o.minAgreement <= 1)) throw new ExportError(`minAgreement must be between 0 and 1, got ${o.minAgreement}`);
  if (format === 'dpo') {
    if (project.taskType !== 'pairwise') throw new ExportError(`a DPO export needs a pairwise project; '${project.name}' is ${project.taskType}`);
    for (const it of items) {
      const d = decidePair(it, o);
      if ('skip' in d) {
        skip(d.skip);
        continue;
      }
      const [chosen, rejected] = d.winner === 'a' ? [it.a.text, it.b!.text] : [it.b!.text, it.a.text];
      if (chosen === rejected) {
        skip('identical responses');
        continue;
      }
      rows.push(o.margins ? { prompt: it.prompt, chosen, rejected, margin: d.margin } : { prompt: it.prompt, chosen, rejected });
    }
  } else if (format === 'kto') {
    if (project.taskType !== 'likert') throw new ExportError(`a KTO export needs a Likert project; '${project.name}' is ${project.taskType}`);
    if (o.criterion !== undefined && !project.criteria.includes(o.criterion)) throw new ExportError(`unknown criterion '${o.criterion}' (the project rates ${project.criteria.join(', ')})`);
    const threshold = o.threshold ?? (1 + project.likertMax) / 2;
    const scoreOf = (r: Record<string, number>): number => (o.criterion ? r[o.criterion] : mean(project.criteria.map((c) => r[c])));
    for (const it of items) {
      let score: number;
      if (it.adjudication?.ratings) score = scoreOf(it.adjudication.ratings);
      else if (it.gold && 'ratings' in it.gold && o.includeGold !== false) score = scoreOf(it.gold.ratings);
      else {
        const rated = it.annotations.filter((a) => a.ratings !== null);
        if (rated.length === 0) {
          skip('not annotated');
          continue;
        }
        score = mean(rated.map((a) => scoreOf(a.ratings!)));
      }
      if (score === threshold) {
        skip('at threshold');
        continue;
      }
      rows.push({ prompt: it.prompt, completion: it.a.text, label: score > threshold });
    }
  } else {
    if (project.taskType !== 'edit') throw new ExportError(`an SFT export needs an edit project; '${project.name}' is ${project.taskType}`);
    for (const it of items) {
      const texts = it.adjudication?.editedText != null ? [it.adjudication.editedText] : it.annotations.map((a) => a.editedText).filter((t): t is string => t !== null);
      if (texts.length === 0) {
        skip('not annotated');
        continue;
      }
      for (const t of new Set(texts)) {
        if (t.trim() === '') skip('empty edit');
        else rows.push({ prompt: it.prompt, completion: t });
      }
    }
  }
  return { format, rows, skipped };
}

export function toJsonl(rows: readonly Record<string, unknown>[]): string {
  return rows.map((r) => `${JSON.stringify(r)}\n`).join('');
}
