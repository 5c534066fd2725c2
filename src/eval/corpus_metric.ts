// The shape every sacreBLEU-style corpus metric shares: per-segment sufficient statistics that add up over a
// corpus, and a score computed from the summed statistics. Bootstrap resampling and the paired significance
// tests work on this interface alone, so they treat BLEU, chrF and TER alike, as sacreBLEU does.

/** References as sacreBLEU takes them: reference streams, each with one entry per segment (null = missing). */
export type ReferenceStreams = readonly (readonly (string | null)[])[];

export interface CorpusMetric {
  /** Display name, e.g. 'BLEU', 'chrF2', 'TER'. */
  readonly name: string;
  /** Whether a higher score is better (false for TER). */
  readonly higherIsBetter: boolean;
  /** One row of sufficient statistics per segment. */
  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): number[][];
  /** The corpus score (0..100 scale) from statistics summed over segments. */
  scoreFromStatistics(summed: readonly number[]): number;
  /** sacreBLEU-style reproducibility signature, given the number of references per segment. */
  signature(numRefs: number | 'var', extra?: Record<string, string | number>): string;
}

/** Adds the statistics of the given segments (all when `indices` is omitted). */
export function sumStatistics(stats: readonly (readonly number[])[], indices?: ArrayLike<number>): number[] {
  const width = stats.length > 0 ? stats[0].length : 0;
  const out = new Array<number>(width).fill(0);
  if (indices === undefined) {
    for (const row of stats) for (let k = 0; k < width; k++) out[k] += row[k];
  } else {
    for (let i = 0; i < indices.length; i++) {
      const row = stats[indices[i]];
      for (let k = 0; k < width; k++) out[k] += row[k];
    }
  }
  return out;
}

/**
 * Transposes reference streams to per-segment lists, dropping nulls, and checks that every stream has one entry
 * per hypothesis. Returns the per-segment references and the sacreBLEU `nrefs` value.
 */
export function segmentReferences(numSegments: number, references: ReferenceStreams): { perSegment: string[][]; numRefs: number | 'var' } {
  if (references.length === 0) throw new RangeError('at least one reference stream is needed');
  references.forEach((stream, s) => {
    if (stream.length !== numSegments)
      throw new RangeError(`reference stream ${s + 1} has ${stream.length} segments but there are ${numSegments} hypotheses`);
  });
  const perSegment: string[][] = [];
  const counts = new Set<number>();
  for (let i = 0; i < numSegments; i++) {
    const refs: string[] = [];
    for (const stream of references) {
      const r = stream[i];
      if (r !== null && r !== undefined) refs.push(r);
    }
    counts.add(refs.length);
    perSegment.push(refs);
  }
  const numRefs = counts.size === 1 ? [...counts][0] : 'var';
  return { perSegment, numRefs };
}

/** The sacreBLEU version whose semantics (and signature strings) these ports follow. */
export const SACREBLEU_VERSION = '2.6.0';

/**
 * Formats a signature as sacreBLEU's Signature.format(): `nrefs`, then bootstrap/randomisation keys, then the
 * metric's own keys, and `version` last.
 */
export function formatSignature(numRefs: number | 'var', metricInfo: [string, string | number][], extra: Record<string, string | number> = {}): string {
  const pairs: string[] = [`nrefs:${numRefs}`];
  for (const key of ['bs', 'ar', 'seed']) if (extra[key] !== undefined) pairs.push(`${key}:${extra[key]}`);
  for (const [k, v] of metricInfo) pairs.push(`${k}:${v}`);
  pairs.push(`version:${SACREBLEU_VERSION}`);
  return pairs.join('|');
}
