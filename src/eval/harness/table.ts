// The results table the harness prints (lm_eval.utils.make_table, rendered by pytablewriter's Markdown writer):
//   |    Tasks    |Version|Filter|n-shot| Metric |   |Value|   |Stderr|
//   |-------------|------:|------|-----:|--------|---|----:|---|------|
//   |arc_challenge|      1|none  |     0|acc     |↑  |  0.0|±  |   N/A|
// One row per metric (sorted by name), the task name and version only on its first row, groups first with their
// subtasks indented (" - stem", "  - anatomy"). Values are formatted "%.4f" and then re-typed by the writer:
// a column whose cells are all numbers is right-aligned, integral columns print as integers, and real columns
// use the fewest decimals that show every value exactly (at most the 4 of "%.4f"); headers are centred; every
// column is at least 3 wide. Stderr is "   N/A" where the harness has none, which makes that column text.
import type { BenchmarkResults, GroupDef } from './evaluate.ts';
import type { MetricValue } from './tasks.ts';

/** One table row before formatting. */
export interface TableRow {
  name: string;
  version: number | null;
  filter: string;
  nShot: number | null;
  metric: string;
  higherIsBetter: boolean | null;
  value: number;
  stderr: number | null | undefined;
}

const HEADERS = ['Tasks', 'Version', 'Filter', 'n-shot', 'Metric', '', 'Value', '', 'Stderr'];

/** "%.4f" as Python writes it (nan, inf). */
function pyFixed4(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  return x.toFixed(4);
}

/** Decimals in the shortest round-trip form of x (0.3 -> 1, 0.4659 -> 4). */
function decimalsOf(x: number): number {
  const s = String(x);
  const e = /e-(\d+)$/.exec(s);
  if (e) {
    const mant = s.slice(0, s.indexOf('e'));
    const dot = mant.indexOf('.');
    return Number(e[1]) + (dot < 0 ? 0 : mant.length - dot - 1);
  }
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

const isNumeric = (s: string): boolean => /^-?\d+(\.\d+)?$/.test(s.trim());

/** Formats one column like pytablewriter: numbers re-typed, alignment by column type. */
function formatColumn(cells: string[]): { cells: string[]; right: boolean } {
  const filled = cells.filter((c) => c !== '');
  if (filled.length === 0 || !filled.every(isNumeric)) return { cells, right: false };
  const values = filled.map(Number);
  if (values.every(Number.isInteger)) return { cells: cells.map((c) => (c === '' ? '' : String(Number(c)))), right: true };
  const places = Math.max(...values.map(decimalsOf));
  return { cells: cells.map((c) => (c === '' ? '' : Number(c).toFixed(places))), right: true };
}

/** Renders rows as the harness's Markdown table. `first` is the first header ('Tasks' or 'Groups'). */
export function renderRows(rows: readonly TableRow[], first = 'Tasks'): string {
  const raw: string[][] = [];
  let prev = '';
  for (const r of rows) {
    const repeat = r.name === prev;
    prev = r.name;
    raw.push([
      repeat ? '' : r.name,
      repeat || r.version === null ? '' : String(r.version),
      r.filter,
      r.nShot === null ? '' : String(r.nShot),
      r.metric,
      r.higherIsBetter === null ? '' : r.higherIsBetter ? '↑' : '↓',
      pyFixed4(r.value),
      r.stderr === undefined ? '' : '±',
      r.stderr === undefined ? '' : r.stderr === null ? '   N/A' : pyFixed4(r.stderr),
    ]);
  }
  const headers = [first, ...HEADERS.slice(1)];
  const cols = headers.map((_, c) => formatColumn(raw.map((row) => row[c])));
  const width = headers.map((h, c) => Math.max(3, [...h].length, ...cols[c].cells.map((x) => [...x].length)));
  const pad = (s: string, w: number, right: boolean): string => {
    const n = w - [...s].length;
    return right ? ' '.repeat(n) + s : s + ' '.repeat(n);
  };
  const center = (s: string, w: number): string => {
    // Python's str.center: the odd space goes left only when both the padding and the width are odd.
    const n = w - [...s].length;
    const left = Math.floor(n / 2) + (n & w & 1);
    return ' '.repeat(left) + s + ' '.repeat(n - left);
  };
  const lines = [`|${headers.map((h, c) => center(h, width[c])).join('|')}|`, `|${width.map((w, c) => (cols[c].right ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join('|')}|`];
  for (let i = 0; i < raw.length; i++) lines.push(`|${width.map((w, c) => pad(cols[c].cells[i], w, cols[c].right)).join('|')}|`);
  return `${lines.join('\n')}\n`;
}

function metricRows(name: string, version: number | null, nShot: number | null, metrics: readonly MetricValue[]): TableRow[] {
  return [...metrics]
    .sort((a, b) => (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0))
    .map((m) => ({ name, version, filter: 'none', nShot, metric: m.metric, higherIsBetter: m.higherIsBetter, value: m.value, stderr: m.stderr }));
}

/** The hierarchical order of the harness's table: each top group, its children sorted by name, depth-first. */
function hierarchy(groups: readonly GroupDef[], taskNames: readonly string[]): { name: string; depth: number }[] {
  const children = new Map(groups.map((g) => [g.name, g.children]));
  const childSet = new Set(groups.flatMap((g) => g.children));
  const out: { name: string; depth: number }[] = [];
  const seen = new Set<string>();
  const visit = (name: string, depth: number): void => {
    out.push({ name, depth });
    seen.add(name);
    for (const c of [...(children.get(name) ?? [])].sort()) visit(c, depth + 1);
  };
  for (const g of [...groups].map((x) => x.name).sort()) if (!childSet.has(g)) visit(g, 0);
  for (const t of [...taskNames].sort()) if (!seen.has(t)) out.push({ name: t, depth: 0 });
  return out;
}

/** The harness's results table (tasks and groups), then, when there are groups, its "Groups" table. */
export function renderResults(r: BenchmarkResults): string {
  const tasks = new Map(r.tasks.map((t) => [t.name, t]));
  const groups = new Map(r.groups.map((g) => [g.name, g]));
  const rows: TableRow[] = [];
  for (const { name, depth } of hierarchy(r.groupDefs, r.tasks.map((t) => t.name))) {
    const t = tasks.get(name);
    const g = groups.get(name);
    const alias = t?.alias ?? g?.alias ?? name;
    const shown = depth > 0 ? `${' '.repeat(depth)}- ${alias}` : alias;
    if (t) rows.push(...metricRows(shown, t.version, t.numFewshot, t.metrics));
    else if (g) rows.push(...metricRows(shown, g.version, null, g.metrics));
  }
  let out = renderRows(rows);
  if (r.groups.length) {
    const gRows: TableRow[] = [];
    for (const { name, depth } of hierarchy(r.groupDefs, [])) {
      const g = groups.get(name);
      if (g) gRows.push(...metricRows(depth > 0 ? `${' '.repeat(depth)}- ${g.alias}` : g.alias, g.version, null, g.metrics));
    }
    out += `\n${renderRows(gRows, 'Groups')}`;
  }
  return out;
}
