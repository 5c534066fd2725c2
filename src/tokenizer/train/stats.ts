// How a tokenizer fits a dataset: tokens per word (fertility), the unknown-token rate, and the distribution of
// sequence lengths (with the tokens the post-processor adds) against a maximum length, per text field.
// Memory is constant in the number of records: lengths are kept as a length -> count table.
import { forEachCorpusText, type CorpusFormat } from './corpus.ts';
import type { Tokenizer } from '../tokenizer.ts';

export interface TokenizerStatsOptions {
  format?: CorpusFormat;
  /** JSONL fields to measure (default ['text']); text files have the single field 'text' (one record a line). */
  fields?: readonly string[];
  /** Sequences longer than this are counted as over the limit (default 2048). */
  maxLength?: number;
  skipInvalid?: boolean;
}

export interface LengthBucket {
  /** Inclusive token-count range. */
  from: number;
  to: number;
  count: number;
}

export interface FieldStats {
  field: string;
  texts: number;
  /** Whitespace-separated words. */
  words: number;
  chars: number;
  /** Tokens of the text alone (no special tokens). */
  tokens: number;
  /** tokens / words (NaN-free: 0 when there are no words). */
  tokensPerWord: number;
  charsPerToken: number;
  unknownTokens: number;
  /** unknownTokens / tokens. */
  unknownRate: number;
  /** Sequence lengths including the special tokens the tokenizer adds. */
  length: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
  /** Power-of-two buckets (1-16, 17-32, 33-64, ...; 0 alone), empty ones left out. */
  histogram: LengthBucket[];
  overMaxLength: number;
  fractionOverMaxLength: number;
}

export interface TokenizerStats {
  maxLength: number;
  /** Special tokens added to every single sequence (BOS, [CLS] ... [SEP]). */
  addedSpecialTokens: number;
  fields: FieldStats[];
  records: { lines: number; texts: number; skipped: number; skippedExamples: string[] };
}

class FieldAccumulator {
  texts = 0;
  words = 0;
  chars = 0;
  tokens = 0;
  unknown = 0;
  readonly lengths = new Map<number, number>();

  constructor(readonly field: string) {}

  finish(maxLength: number): FieldStats {
    const sorted = [...this.lengths.entries()].sort((a, b) => a[0] - b[0]);
    const n = this.texts;
    let sum = 0;
    let over = 0;
    for (const [len, c] of sorted) {
      sum += len * c;
      if (len > maxLength) over += c;
    }
    // Nearest-rank percentile over the length table.
    const pct = (p: number): number => {
      if (n === 0) return 0;
      const rank = Math.max(1, Math.ceil((p / 100) * n));
      let seen = 0;
      for (const [len, c] of sorted) {
        seen += c;
        if (seen >= rank) return len;
      }
      return sorted[sorted.length - 1][0];
    };
    const buckets = new Map<number, LengthBucket>();
    for (const [len, c] of sorted) {
      const to = len === 0 ? 0 : Math.max(16, 2 ** Math.ceil(Math.log2(len)));
      const from = len === 0 ? 0 : to === 16 ? 1 : to / 2 + 1;
      const b = buckets.get(to) ?? { from, to, count: 0 };
      b.count += c;
      buckets.set(to, b);
    }
    return {
      field: this.field,
      texts: n,
      words: this.words,
      chars: this.chars,
      tokens: this.tokens,
      tokensPerWord: this.words > 0 ? this.tokens / this.words : 0,
      charsPerToken: this.tokens > 0 ? this.chars / this.tokens : 0,
      unknownTokens: this.unknown,
      unknownRate: this.tokens > 0 ? this.unknown / this.tokens : 0,
      length: { min: n ? sorted[0][0] : 0, mean: n ? sum / n : 0, p50: pct(50), p90: pct(90), p99: pct(99), max: n ? sorted[sorted.length - 1][0] : 0 },
      histogram: [...buckets.values()],
      overMaxLength: over,
      fractionOverMaxLength: n ? over / n : 0,
    };
  }
}

const WORD = /\S+/g;

/** Encodes every text of the files with `tokenizer` and summarises per field. */
export function tokenizerStats(tokenizer: Tokenizer, files: readonly string[], options: TokenizerStatsOptions = {}): TokenizerStats {
  const maxLength = options.maxLength ?? 2048;
  if (!Number.isSafeInteger(maxLength) || maxLength < 1) throw new Error(`max length must be a positive integer, got ${maxLength}`);
  const fields = options.fields && options.fields.length > 0 ? [...options.fields] : ['text'];
  // The post-processor adds the same tokens to every single sequence: count them once.
  const added = tokenizer.encode('', { addSpecialTokens: true }).length - tokenizer.encode('', { addSpecialTokens: false }).length;
  const acc = new Map<string, FieldAccumulator>();
  const unk = tokenizer.unkId;
  const summary = forEachCorpusText(files, { format: options.format, fields, skipInvalid: options.skipInvalid, keepLineEndings: false }, (text, field) => {
    let a = acc.get(field);
    if (!a) {
      a = new FieldAccumulator(field);
      acc.set(field, a);
    }
    const ids = tokenizer.encode(text, { addSpecialTokens: false });
    a.texts++;
    a.words += text.match(WORD)?.length ?? 0;
    a.chars += [...text].length;
    a.tokens += ids.length;
    if (unk !== null) for (const id of ids) if (id === unk) a.unknown++;
    const len = ids.length + added;
    a.lengths.set(len, (a.lengths.get(len) ?? 0) + 1);
  });
  const order = [...fields, ...[...acc.keys()].filter((f) => !fields.includes(f))];
  return {
    maxLength,
    addedSpecialTokens: added,
    fields: order.map((f) => (acc.get(f) ?? new FieldAccumulator(f)).finish(maxLength)),
    records: { lines: summary.lines, texts: summary.texts, skipped: summary.skipped, skippedExamples: summary.skippedExamples },
  };
}

/** A plain-text report: one table row per field, then each field's length histogram. */
export function formatTokenizerStats(stats: TokenizerStats, title: string): string {
  const lines: string[] = [title];
  const header = ['field', 'texts', 'words', 'tokens', 'tok/word', 'chars/tok', 'unk rate', 'mean len', 'p50', 'p90', 'p99', 'max', `> ${stats.maxLength}`];
  const rows = stats.fields.map((f) => [
    f.field,
    String(f.texts),
    String(f.words),
    String(f.tokens),
    f.tokensPerWord.toFixed(3),
    f.charsPerToken.toFixed(2),
    `${(100 * f.unknownRate).toFixed(3)}%`,
    f.length.mean.toFixed(1),
    String(f.length.p50),
    String(f.length.p90),
    String(f.length.p99),
    String(f.length.max),
    `${f.overMaxLength} (${(100 * f.fractionOverMaxLength).toFixed(2)}%)`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  lines.push(fmt(header), ...rows.map(fmt));
  for (const f of stats.fields) {
    if (f.texts === 0) continue;
    lines.push('', `sequence lengths (${f.field}, with ${stats.addedSpecialTokens} special token(s) added):`);
    const peak = Math.max(...f.histogram.map((b) => b.count));
    for (const b of f.histogram) {
      const label = b.from === b.to ? `${b.from}` : `${b.from}-${b.to}`;
      const bar = '#'.repeat(Math.max(1, Math.round((30 * b.count) / peak)));
      lines.push(`  ${label.padStart(11)}  ${bar.padEnd(30)}  ${b.count} (${((100 * b.count) / f.texts).toFixed(1)}%)`);
    }
  }
  if (stats.records.skipped > 0) lines.push('', `skipped ${stats.records.skipped} invalid record(s), e.g. ${stats.records.skippedExamples[0]}`);
  return lines.join('\n');
}
