// Train / eval / test splitting (`alignkit data split`), optionally stratified by a field, seeded, streaming.
//
// Two passes over the input: the first counts rows per stratum (value of the stratify field; one stratum when
// not stratifying), the second assigns rows. Each stratum's n rows get exact split sizes by largest remainder
// (n * fraction, rounded down, the leftover rows going to the largest fractional parts, ties to the earlier
// split). Rows are then assigned one at a time by sequential selection: with r_k rows still owed to split k, the
// next row of the stratum goes to k with probability r_k / sum(r). That draws uniformly among all assignments
// with exactly those sizes, keeps input order within each split, and needs only the counters in memory.
import { PrepConfigError } from './errors.ts';
import { Rng } from './rng.ts';

/** Exact sizes that sum to n, proportional to fractions (largest remainder method). */
export function allocate(n: number, fractions: readonly number[]): number[] {
  const total = fractions.reduce((a, b) => a + b, 0);
  const exact = fractions.map((f) => (n * f) / total);
  const sizes = exact.map(Math.floor);
  let left = n - sizes.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => ({ i, r: x - Math.floor(x) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) sizes[order[k].i]++;
  return sizes;
}

export function parseFractions(s: string): number[] {
  const fr = s.split(',').map((x) => Number(x.trim()));
  if (fr.length < 2 || fr.some((x) => !Number.isFinite(x) || x < 0) || Math.abs(fr.reduce((a, b) => a + b, 0) - 1) > 1e-6) throw new PrepConfigError(`--fractions must be 2 or more non-negative numbers summing to 1, got '${s}'`);
  return fr;
}

/** The stratum key of a value (strings as they are, anything else as JSON; missing -> "(missing)"). */
export function stratumKey(v: unknown): string {
  if (v === undefined) return '(missing)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

export class SplitAssigner {
  private readonly remaining = new Map<string, number[]>();
  private readonly rng: Rng;

  constructor(
    counts: ReadonlyMap<string, number>,
    readonly fractions: readonly number[],
    seed: number,
  ) {
    this.rng = new Rng(seed);
    // Sorted so the allocation does not depend on the order strata were first seen.
    for (const k of [...counts.keys()].sort()) this.remaining.set(k, allocate(counts.get(k)!, fractions));
  }

  /** Planned split sizes per stratum (before any assignment). */
  plan(): Map<string, number[]> {
    return new Map([...this.remaining].map(([k, v]) => [k, [...v]]));
  }

  /** The split index for the next row of this stratum. */
  assign(stratum: string): number {
    const r = this.remaining.get(stratum);
    if (!r) throw new PrepConfigError(`stratum '${stratum}' was not counted in the first pass (the input changed between passes?)`);
    const total = r.reduce((a, b) => a + b, 0);
    if (total === 0) throw new PrepConfigError(`more rows of stratum '${stratum}' than counted in the first pass (the input changed between passes?)`);
    let x = this.rng.below(total);
    for (let k = 0; k < r.length; k++) {
      if (x < r[k]) {
        r[k]--;
        return k;
      }
      x -= r[k];
    }
    throw new Error('unreachable');
  }
}
