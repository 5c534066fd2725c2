// `alignkit data inspect`: one streaming pass that describes a data set — its schema (field types, null rates),
// per-field statistics, length histograms, chat role distribution, the detected layout, and sample rows.
//
// Memory is bounded: per field a few counters, a log2 histogram, up to 1000 distinct values for the top-value
// table (beyond that the field is marked high-cardinality), and a seeded reservoir of 10,000 lengths for the
// percentiles (exact below 10,000 rows, an estimate above).
import { detectFormat, type Format } from './convert.ts';
import { charLength } from './clean.ts';
import { Rng } from './rng.ts';
import type { Row } from './stream.ts';

export type ValueType = 'string' | 'integer' | 'number' | 'boolean' | 'messages' | 'array' | 'object' | 'null';

/** log2 bins: 0 | 1 | 2-3 | 4-7 | ... ; bin b >= 1 holds [2^(b-1), 2^b). */
export function log2Bin(n: number): number {
  return n <= 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}
export function binLabel(b: number): string {
  if (b === 0) return '0';
  const lo = 2 ** (b - 1), hi = 2 ** b - 1;
  return lo === hi ? String(lo) : `${lo}-${hi}`;
}

/** A size distribution: count, min, max, mean, log2 histogram, percentiles from a reservoir. */
export class Distribution {
  count = 0;
  min = Infinity;
  max = -Infinity;
  sum = 0;
  readonly bins: number[] = [];
  private readonly reservoir: number[] = [];
  constructor(
    private readonly rng: Rng,
    private readonly capacity = 10000,
  ) {}
  add(x: number): void {
    this.count++;
    if (x < this.min) this.min = x;
    if (x > this.max) this.max = x;
    this.sum += x;
    const b = log2Bin(x);
    while (this.bins.length <= b) this.bins.push(0);
    this.bins[b]++;
    if (this.reservoir.length < this.capacity) this.reservoir.push(x);
    else {
      const j = this.rng.below(this.count);
      if (j < this.capacity) this.reservoir[j] = x;
    }
  }
  /** Nearest-rank percentile of the reservoir. */
  percentile(p: number): number {
    if (this.reservoir.length === 0) return NaN;
    const s = [...this.reservoir].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  }
  summary(): DistributionSummary {
    return {
      count: this.count,
      min: this.count ? this.min : null,
      max: this.count ? this.max : null,
      mean: this.count ? this.sum / this.count : null,
      p50: this.count ? this.percentile(50) : null,
      p90: this.count ? this.percentile(90) : null,
      p99: this.count ? this.percentile(99) : null,
      exactPercentiles: this.count <= this.capacity,
      histogram: this.bins.map((n, b) => ({ bin: binLabel(b), count: n })).filter((x) => x.count > 0),
    };
  }
}

export interface DistributionSummary {
  count: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  exactPercentiles: boolean;
  histogram: { bin: string; count: number }[];
}

export function valueType(v: unknown): ValueType {
  if (v === null) return 'null';
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  if (typeof v === 'boolean') return 'boolean';
  if (Array.isArray(v)) return v.length > 0 && v.every((m) => m !== null && typeof m === 'object' && !Array.isArray(m) && ('role' in m || 'from' in m)) ? 'messages' : 'array';
  return 'object';
}

const MAX_DISTINCT = 1000;

class FieldStats {
  present = 0;
  nulls = 0;
  readonly types = new Map<ValueType, number>();
  /** String lengths (characters), array lengths (items), message counts. */
  readonly lengths: Distribution;
  /** Numeric values. */
  readonly numbers: Distribution;
  readonly distinct = new Map<string, number>();
  highCardinality = false;
  readonly roles = new Map<string, number>();
  /** Characters per message content, for message lists. */
  readonly contentLengths: Distribution;
  constructor(rng: Rng) {
    this.lengths = new Distribution(rng);
    this.numbers = new Distribution(rng);
    this.contentLengths = new Distribution(rng);
  }
  add(v: unknown): void {
    this.present++;
    const t = valueType(v);
    this.types.set(t, (this.types.get(t) ?? 0) + 1);
    if (t === 'null') {
      this.nulls++;
      return;
    }
    if (t === 'string') this.lengths.add(charLength(v as string));
    else if (t === 'integer' || t === 'number') this.numbers.add(v as number);
    else if (t === 'array' || t === 'messages') this.lengths.add((v as unknown[]).length);
    if (t === 'messages') {
      for (const m of v as Record<string, unknown>[]) {
        const role = String(m.role ?? m.from);
        this.roles.set(role, (this.roles.get(role) ?? 0) + 1);
        const c = m.content ?? m.value;
        if (typeof c === 'string') this.contentLengths.add(charLength(c));
      }
    }
    if (!this.highCardinality && (t === 'string' || t === 'integer' || t === 'boolean')) {
      const key = String(v);
      if (key.length <= 200) {
        this.distinct.set(key, (this.distinct.get(key) ?? 0) + 1);
        if (this.distinct.size > MAX_DISTINCT) {
          this.highCardinality = true;
          this.distinct.clear();
        }
      } else {
        this.highCardinality = true;
        this.distinct.clear();
      }
    }
  }
}

export interface FieldReport {
  field: string;
  /** The most common non-null type. */
  type: ValueType | 'mixed';
  types: Record<string, number>;
  /** (rows missing the field + rows where it is null) / rows. */
  nullRate: number;
  missing: number;
  nulls: number;
  /** Rows that have the field (null included). */
  present: number;
  lengths: DistributionSummary | null;
  numbers: DistributionSummary | null;
  /** Top values for low-cardinality fields (<= 1000 distinct), else null. */
  topValues: { value: string; count: number }[] | null;
  distinct: number | null;
  roles: Record<string, number> | null;
  contentLengths: DistributionSummary | null;
}

export interface InspectReport {
  rows: number;
  layout: Format | 'unknown';
  fields: FieldReport[];
  tokens: DistributionSummary | null;
  samples: { line: number; row: Row }[];
}

export class Inspector {
  rows = 0;
  private readonly fields = new Map<string, FieldStats>();
  private readonly rng: Rng;
  private readonly samples: { line: number; row: Row }[] = [];
  private layout: Format | 'unknown' | null = null;
  private readonly tokens: Distribution | null;

  constructor(
    seed = 0,
    private readonly sampleCount = 3,
    private readonly tokenCounter: ((row: Row) => number) | null = null,
  ) {
    this.rng = new Rng(seed);
    this.tokens = tokenCounter ? new Distribution(this.rng) : null;
  }

  add(row: Row, line: number): void {
    this.rows++;
    if (this.layout === null) {
      try {
        this.layout = detectFormat(row);
      } catch {
        this.layout = 'unknown';
      }
    }
    for (const [k, v] of Object.entries(row)) {
      let f = this.fields.get(k);
      if (!f) this.fields.set(k, (f = new FieldStats(this.rng)));
      f.add(v);
    }
    if (this.tokens && this.tokenCounter) this.tokens.add(this.tokenCounter(row));
    // Reservoir sample of whole rows (algorithm R).
    if (this.samples.length < this.sampleCount) this.samples.push({ line, row });
    else if (this.sampleCount > 0) {
      const j = this.rng.below(this.rows);
      if (j < this.sampleCount) this.samples[j] = { line, row };
    }
  }

  report(): InspectReport {
    const fields: FieldReport[] = [];
    for (const [name, f] of this.fields) {
      const nonNull = [...f.types].filter(([t]) => t !== 'null').sort((a, b) => b[1] - a[1]);
      const type: ValueType | 'mixed' = nonNull.length === 0 ? 'null' : nonNull.length === 1 || (nonNull.length === 2 && nonNull.every(([t]) => t === 'integer' || t === 'number')) ? (nonNull.length === 2 ? 'number' : nonNull[0][0]) : 'mixed';
      const missing = this.rows - f.present;
      fields.push({
        field: name,
        type,
        types: Object.fromEntries(f.types),
        nullRate: this.rows ? (missing + f.nulls) / this.rows : 0,
        missing,
        nulls: f.nulls,
        present: f.present,
        lengths: f.lengths.count ? f.lengths.summary() : null,
        numbers: f.numbers.count ? f.numbers.summary() : null,
        topValues: f.highCardinality || f.distinct.size === 0 ? null : [...f.distinct].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10).map(([value, count]) => ({ value, count })),
        distinct: f.highCardinality ? null : f.distinct.size || null,
        roles: f.roles.size ? Object.fromEntries([...f.roles].sort((a, b) => b[1] - a[1])) : null,
        contentLengths: f.contentLengths.count ? f.contentLengths.summary() : null,
      });
    }
    return { rows: this.rows, layout: this.layout ?? 'unknown', fields, tokens: this.tokens?.count ? this.tokens.summary() : null, samples: this.samples };
  }
}

// ------------------------------------------------------------------------------------------------ rendering

/** A terminal histogram: one line per bin, bars of '█' scaled to `width`. */
export function textHistogram(h: readonly { bin: string; count: number }[], width = 40): string[] {
  const max = Math.max(1, ...h.map((x) => x.count));
  const labelW = Math.max(...h.map((x) => x.bin.length), 3);
  return h.map((x) => `${x.bin.padStart(labelW)} │${'█'.repeat(Math.max(x.count > 0 ? 1 : 0, Math.round((x.count / max) * width))).padEnd(width)} ${x.count}`);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A standalone SVG bar chart of a histogram. */
export function svgHistogram(title: string, h: readonly { bin: string; count: number }[], xLabel: string): string {
  const W = 640, H = 320, left = 60, right = 20, top = 40, bottom = 70;
  const plotW = W - left - right, plotH = H - top - bottom;
  const max = Math.max(1, ...h.map((x) => x.count));
  const bw = h.length ? plotW / h.length : plotW;
  const bars = h
    .map((x, i) => {
      const bh = (x.count / max) * plotH;
      const bx = left + i * bw;
      return `  <rect x="${(bx + 2).toFixed(1)}" y="${(top + plotH - bh).toFixed(1)}" width="${Math.max(1, bw - 4).toFixed(1)}" height="${bh.toFixed(1)}" fill="#4a7ab5"><title>${esc(x.bin)}: ${x.count}</title></rect>\n` +
        `  <text x="${(bx + bw / 2).toFixed(1)}" y="${top + plotH + 14}" font-size="10" text-anchor="end" transform="rotate(-40 ${(bx + bw / 2).toFixed(1)} ${top + plotH + 14})">${esc(x.bin)}</text>\n` +
        `  <text x="${(bx + bw / 2).toFixed(1)}" y="${(top + plotH - bh - 3).toFixed(1)}" font-size="9" text-anchor="middle">${x.count}</text>\n`;
    })
    .join('');
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n` +
    `  <rect width="${W}" height="${H}" fill="white"/>\n` +
    `  <text x="${W / 2}" y="22" font-size="14" text-anchor="middle">${esc(title)}</text>\n` +
    `  <line x1="${left}" y1="${top + plotH}" x2="${W - right}" y2="${top + plotH}" stroke="black"/>\n` +
    `  <line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>\n` +
    `  <text x="${left - 6}" y="${top + 4}" font-size="10" text-anchor="end">${max}</text>\n` +
    `  <text x="${left - 6}" y="${top + plotH}" font-size="10" text-anchor="end">0</text>\n` +
    bars +
    `  <text x="${W / 2}" y="${H - 8}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>\n` +
    `</svg>\n`
  );
}

function fmt(x: number | null, digits = 1): string {
  if (x === null) return '-';
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

/** The human-readable report (what the terminal shows). */
export function renderInspect(r: InspectReport, file: string): string {
  const out: string[] = [];
  out.push(`${file}: ${r.rows} rows, layout: ${r.layout}`);
  out.push('');
  out.push(`${'field'.padEnd(20)} ${'type'.padEnd(9)} ${'null%'.padStart(6)}  details`);
  for (const f of r.fields) {
    let details = '';
    if (f.lengths && (f.type === 'string' || f.type === 'messages' || f.type === 'array')) details = `${f.type === 'string' ? 'chars' : 'items'} min ${fmt(f.lengths.min)} p50 ${fmt(f.lengths.p50)} mean ${fmt(f.lengths.mean)} p99 ${fmt(f.lengths.p99)} max ${fmt(f.lengths.max)}`;
    else if (f.numbers) details = `min ${fmt(f.numbers.min, 4)} mean ${fmt(f.numbers.mean, 4)} max ${fmt(f.numbers.max, 4)}`;
    if (f.topValues && f.distinct !== null && f.distinct <= 20 && f.distinct * 2 <= f.present) details += `${details ? '; ' : ''}values: ${f.topValues.map((v) => `${JSON.stringify(v.value)}×${v.count}`).join(', ')}`;
    out.push(`${f.field.slice(0, 20).padEnd(20)} ${f.type.padEnd(9)} ${(100 * f.nullRate).toFixed(1).padStart(6)}  ${details}`);
  }
  for (const f of r.fields) {
    if (f.roles) {
      out.push('');
      out.push(`roles in '${f.field}': ${Object.entries(f.roles).map(([k, v]) => `${k} ${v}`).join(', ')}`);
      if (f.lengths) {
        out.push(`messages per conversation in '${f.field}':`);
        out.push(...textHistogram(f.lengths.histogram).map((l) => `  ${l}`));
      }
    }
  }
  for (const f of r.fields) {
    const h = f.type === 'string' ? f.lengths : f.contentLengths;
    if (!h || h.histogram.length === 0) continue;
    out.push('');
    out.push(`length of '${f.field}'${f.type === 'string' ? '' : ' message contents'} (characters):`);
    out.push(...textHistogram(h.histogram).map((l) => `  ${l}`));
  }
  if (r.tokens) {
    out.push('');
    out.push(`tokens per row: min ${fmt(r.tokens.min)} p50 ${fmt(r.tokens.p50)} mean ${fmt(r.tokens.mean)} p99 ${fmt(r.tokens.p99)} max ${fmt(r.tokens.max)}`);
    out.push(...textHistogram(r.tokens.histogram).map((l) => `  ${l}`));
  }
  if (r.samples.length) {
    out.push('');
    out.push('sample rows:');
    for (const s of r.samples) {
      const j = JSON.stringify(s.row);
      out.push(`  line ${s.line}: ${j.length > 300 ? `${j.slice(0, 300)}…` : j}`);
    }
  }
  return out.join('\n');
}
