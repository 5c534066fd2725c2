// Deduplication for `alignkit data dedup`: exact (64-bit hash of the normalised text) and near-duplicate (MinHash
// signatures + locality-sensitive hashing), keep-first, plus a cross-split contamination check against an
// evaluation set.
//
// Normalisation for both: NFKC, lower case, whitespace runs -> one space, trimmed. So "Hello  World" and
// "hello world" are exact duplicates; anything else that differs is left to the near-duplicate stage.
//
// MinHash (Broder 1997): a text becomes the set S of its shingles (character k-grams of the normalised text, or
// word n-grams), each shingle a 32-bit hash x. For i = 1..num_perm the signature holds min over x in S of
// h_i(x) = fmix32((a_i * x + b_i) mod 2^32), where a_i (odd) and b_i come from the seeded PRNG (rng.ts, --seed)
// and fmix32 is MurmurHash3's finaliser. x -> a*x + b (a odd) and fmix32 are both bijections on 32-bit integers,
// so each h_i is a permutation of the shingle-hash space; P[min_i(A) = min_i(B)] then approximates the Jaccard
// similarity |A ∩ B| / |A ∪ B|, and the fraction of equal signature positions estimates it (standard error
// sqrt(J(1-J)/num_perm): 0.035 at J = 0.8 with 128 permutations).
//
// LSH banding: the signature is cut into b bands of r rows (b*r <= num_perm); two texts become candidates when
// all r values of at least one band agree, which happens with probability 1 - (1 - J^r)^b (an S-curve). (b, r)
// are chosen for the Jaccard threshold t by minimising w_fp * (false-positive area: ∫_0^t P) + w_fn *
// (false-negative area: ∫_t^1 (1 - P)) numerically over every b*r <= num_perm (the S-curve analysis of
// Leskovec, Rajaraman & Ullman, "Mining of Massive Datasets", ch. 3.4). A candidate is then *verified*: it is a
// near-duplicate only when the signature estimate of J reaches the threshold, so an LSH false positive costs one
// signature comparison while an LSH false negative is a missed duplicate; hence w_fp = 0.1, w_fn = 0.9 (equal
// weights would give b = 9, r = 13 at t = 0.8 and catch a pair at J = 0.8 only 40% of the time; these weights
// give b = 14, r = 9: 87% at J = 0.8, 97.5% at 0.85, 2.7% at 0.5). Keep-first: a row is compared with the rows kept before it; the first of a group survives.
//
// Memory (documented bound): exact dedup keeps one 12-byte entry (8-byte hash + 4-byte line) per distinct kept
// row in a table 35-70% full (17-34 bytes per row, independent of text length). Near dedup also keeps, per kept
// row, its signature (4 * num_perm bytes: 512 B at 128) and one entry per band in the band tables (~40-80 bytes
// each in a JS Map): about 1.5 KB per kept row at num_perm = 128, b = 16 — use a smaller num_perm or shard the
// data for corpora with tens of millions of rows.
import { hash32, hash64, HashMap64, fmix32 } from './hash.ts';
import { Rng } from './rng.ts';
import { PrepConfigError } from './errors.ts';

/** NFKC, lower case, collapsed whitespace: the text that exact dedup hashes and near dedup shingles. */
export function normalizeForDedup(text: string): string {
  return text.normalize('NFKC').toLowerCase().replace(/\s+/g, ' ').trim();
}

export interface ShingleSpec {
  unit: 'char' | 'word';
  size: number;
}

/** "char:5" / "word:3". */
export function parseShingle(s: string): ShingleSpec {
  const m = /^(char|word):(\d+)$/.exec(s.trim());
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 64) throw new PrepConfigError(`--shingle must be char:K or word:N with 1 <= K, N <= 64, got '${s}'`);
  return { unit: m[1] as 'char' | 'word', size: Number(m[2]) };
}

/** The distinct 32-bit hashes of a normalised text's shingles, sorted. A text shorter than one shingle is one shingle. */
export function shingleHashes(norm: string, spec: ShingleSpec): Uint32Array {
  let raw: Uint32Array;
  if (spec.unit === 'char') {
    const k = spec.size;
    const n = Math.max(1, norm.length - k + 1);
    raw = new Uint32Array(n);
    if (norm.length <= k) raw[0] = hash32(norm, 0x5eed);
    else for (let i = 0; i < n; i++) raw[i] = hash32(norm, 0x5eed, i, i + k);
  } else {
    const ws = norm.split(' ').filter((w) => w.length > 0);
    const k = spec.size;
    const n = Math.max(1, ws.length - k + 1);
    raw = new Uint32Array(n);
    for (let i = 0; i < n; i++) raw[i] = hash32(ws.slice(i, i + k).join(' '), 0x5eed);
  }
  raw.sort();
  let m = 0;
  for (let i = 0; i < raw.length; i++) if (i === 0 || raw[i] !== raw[i - 1]) raw[m++] = raw[i];
  return raw.subarray(0, m);
}

/** Exact Jaccard similarity of two sorted, distinct hash arrays (tests and reports). */
export function jaccard(a: Uint32Array, b: Uint32Array): number {
  let i = 0, j = 0, inter = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      inter++;
      i++;
      j++;
    } else if (a[i] < b[j]) i++;
    else j++;
  }
  const union = a.length + b.length - inter;
  return union === 0 ? 1 : inter / union;
}

export class MinHasher {
  private readonly a: Uint32Array;
  private readonly b: Uint32Array;

  constructor(
    readonly numPerm: number,
    readonly seed: number,
  ) {
    if (!Number.isInteger(numPerm) || numPerm < 1 || numPerm > 1024) throw new PrepConfigError(`num_perm must be an integer in [1, 1024], got ${numPerm}`);
    const rng = new Rng(seed);
    this.a = new Uint32Array(numPerm);
    this.b = new Uint32Array(numPerm);
    for (let i = 0; i < numPerm; i++) {
      this.a[i] = (rng.nextU32() | 1) >>> 0;
      this.b[i] = rng.nextU32();
    }
  }

  /** The signature of a shingle-hash set: num_perm minima. */
  signature(hashes: Uint32Array): Uint32Array {
    const n = this.numPerm;
    const sig = new Uint32Array(n).fill(0xffffffff);
    const a = this.a, b = this.b;
    for (let s = 0; s < hashes.length; s++) {
      const x = hashes[s];
      for (let i = 0; i < n; i++) {
        const v = fmix32((Math.imul(a[i], x) + b[i]) | 0);
        if (v < sig[i]) sig[i] = v;
      }
    }
    return sig;
  }
}

/** Fraction of equal positions: the MinHash estimate of Jaccard similarity. */
export function estimateJaccard(a: Uint32Array, b: Uint32Array, bOffset = 0): number {
  let eq = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[bOffset + i]) eq++;
  return eq / a.length;
}

/** P[candidate | Jaccard s] for b bands of r rows. */
export function candidateProbability(s: number, bands: number, rows: number): number {
  return 1 - Math.pow(1 - Math.pow(s, rows), bands);
}

/**
 * Bands and rows for a Jaccard threshold: minimises fpWeight * ∫_0^t P(s) ds + fnWeight * ∫_t^1 (1 - P(s)) ds
 * over b * r <= numPerm (midpoint rule, 200 intervals each side).
 */
export function lshParams(threshold: number, numPerm: number, fpWeight = 0.1, fnWeight = 0.9): { bands: number; rows: number } {
  if (!(threshold > 0 && threshold < 1)) throw new PrepConfigError(`threshold must be in (0, 1), got ${threshold}`);
  const integrate = (f: (x: number) => number, lo: number, hi: number): number => {
    const n = 200, h = (hi - lo) / n;
    let s = 0;
    for (let i = 0; i < n; i++) s += f(lo + (i + 0.5) * h);
    return s * h;
  };
  let best = { bands: 1, rows: numPerm }, bestErr = Infinity;
  for (let b = 1; b <= numPerm; b++) {
    for (let r = 1; b * r <= numPerm; r++) {
      const fp = integrate((s) => candidateProbability(s, b, r), 0, threshold);
      const fn = integrate((s) => 1 - candidateProbability(s, b, r), threshold, 1);
      const err = fpWeight * fp + fnWeight * fn;
      if (err < bestErr) {
        bestErr = err;
        best = { bands: b, rows: r };
      }
    }
  }
  return best;
}

/** Kept signatures (in blocks, so growth never copies them all) with LSH band tables over them. */
export class NearDupIndex {
  private readonly blocks: Uint32Array[] = [];
  private readonly perBlock = 256;
  private readonly tables: Map<number, number | number[]>[];
  /** Line (or any id) of each stored signature. */
  private readonly ids: number[] = [];

  constructor(
    readonly numPerm: number,
    readonly bands: number,
    readonly rows: number,
  ) {
    if (bands * rows > numPerm) throw new PrepConfigError(`bands * rows (${bands} * ${rows}) exceeds num_perm ${numPerm}`);
    this.tables = Array.from({ length: bands }, () => new Map());
  }

  get size(): number {
    return this.ids.length;
  }

  private bandKey(sig: Uint32Array, band: number): number {
    let h = 0x811c9dc5 ^ band;
    const start = band * this.rows;
    for (let i = start; i < start + this.rows; i++) h = Math.imul(h ^ sig[i], 0x01000193) ^ (h >>> 13);
    return fmix32(h);
  }

  private sigAt(k: number): { block: Uint32Array; offset: number } {
    return { block: this.blocks[Math.floor(k / this.perBlock)], offset: (k % this.perBlock) * this.numPerm };
  }

  /** The stored entry most similar to sig among the LSH candidates, if its estimate reaches threshold. */
  query(sig: Uint32Array, threshold: number): { id: number; jaccard: number } | null {
    let best: { id: number; jaccard: number } | null = null;
    const seen = new Set<number>();
    for (let band = 0; band < this.bands; band++) {
      const hit = this.tables[band].get(this.bandKey(sig, band));
      if (hit === undefined) continue;
      for (const k of typeof hit === 'number' ? [hit] : hit) {
        if (seen.has(k)) continue;
        seen.add(k);
        const { block, offset } = this.sigAt(k);
        const j = estimateJaccard(sig, block, offset);
        if (j >= threshold && (best === null || j > best.jaccard)) best = { id: this.ids[k], jaccard: j };
      }
    }
    return best;
  }

  add(sig: Uint32Array, id: number): void {
    const k = this.ids.length;
    if (k % this.perBlock === 0) this.blocks.push(new Uint32Array(this.perBlock * this.numPerm));
    const { block, offset } = this.sigAt(k);
    block.set(sig, offset);
    this.ids.push(id);
    for (let band = 0; band < this.bands; band++) {
      const key = this.bandKey(sig, band);
      const t = this.tables[band];
      const cur = t.get(key);
      if (cur === undefined) t.set(key, k);
      else if (typeof cur === 'number') t.set(key, [cur, k]);
      else cur.push(k);
    }
  }
}

export type DedupMode = 'exact' | 'near' | 'both' | 'none';

export interface DedupOptions {
  mode: DedupMode;
  /** Jaccard threshold for near-duplicates (default 0.8). */
  threshold: number;
  numPerm: number;
  shingle: ShingleSpec;
  seed: number;
  /** Override the (bands, rows) chosen from the threshold. */
  bands?: number;
  rows?: number;
}

export const DEFAULT_DEDUP: DedupOptions = { mode: 'both', threshold: 0.8, numPerm: 128, shingle: { unit: 'char', size: 5 }, seed: 0 };

export type DropKind = 'exact' | 'near' | 'contaminated_exact' | 'contaminated_near';

export interface DedupVerdict {
  keep: boolean;
  kind?: DropKind;
  /** The line of the kept (or eval) row this one duplicates. */
  of?: number;
  /** Estimated Jaccard similarity (near kinds). */
  jaccard?: number;
}

/** Keep-first deduplicator over a stream of texts, with an optional evaluation set to check contamination against. */
export class Deduplicator {
  readonly options: DedupOptions;
  readonly bands: number;
  readonly rows: number;
  private readonly hasher: MinHasher;
  private readonly exact = new HashMap64(1024);
  private readonly near: NearDupIndex;
  private evalExact: HashMap64 | null = null;
  private evalNear: NearDupIndex | null = null;
  readonly counts: Record<DropKind | 'kept' | 'seen', number> = { seen: 0, kept: 0, exact: 0, near: 0, contaminated_exact: 0, contaminated_near: 0 };

  constructor(options: Partial<DedupOptions> = {}) {
    this.options = { ...DEFAULT_DEDUP, ...options };
    const o = this.options;
    if (!(o.threshold > 0 && o.threshold < 1)) throw new PrepConfigError(`--threshold must be in (0, 1), got ${o.threshold}`);
    const p = o.bands !== undefined && o.rows !== undefined ? { bands: o.bands, rows: o.rows } : lshParams(o.threshold, o.numPerm);
    this.bands = p.bands;
    this.rows = p.rows;
    this.hasher = new MinHasher(o.numPerm, o.seed);
    this.near = new NearDupIndex(o.numPerm, p.bands, p.rows);
  }

  private signatureOf(norm: string): Uint32Array | null {
    if (norm.length === 0) return null;
    return this.hasher.signature(shingleHashes(norm, this.options.shingle));
  }

  /** Adds one evaluation-set text (call for every eval row before checking any training row). */
  addEval(text: string, line: number): void {
    const norm = normalizeForDedup(text);
    this.evalExact ??= new HashMap64(1024);
    this.evalExact.setIfAbsent(hash64(norm), line);
    const sig = this.signatureOf(norm);
    if (sig) {
      this.evalNear ??= new NearDupIndex(this.options.numPerm, this.bands, this.rows);
      this.evalNear.add(sig, line);
    }
  }

  /** Decides for one row's text; a kept row is remembered so later copies of it are dropped. */
  check(text: string, line: number): DedupVerdict {
    this.counts.seen++;
    const o = this.options;
    const norm = normalizeForDedup(text);
    const h = hash64(norm);
    const useNear = o.mode === 'near' || o.mode === 'both';
    let sig: Uint32Array | null = null;
    const drop = (v: DedupVerdict): DedupVerdict => {
      this.counts[v.kind!]++;
      return v;
    };
    if (this.evalExact) {
      const e = this.evalExact.get(h);
      if (e !== undefined) return drop({ keep: false, kind: 'contaminated_exact', of: e });
    }
    if (this.evalNear) {
      sig = this.signatureOf(norm);
      const m = sig && this.evalNear.query(sig, o.threshold);
      if (m) return drop({ keep: false, kind: 'contaminated_near', of: m.id, jaccard: m.jaccard });
    }
    if (o.mode === 'exact' || o.mode === 'both') {
      const prev = this.exact.get(h);
      if (prev !== undefined) return drop({ keep: false, kind: 'exact', of: prev });
    }
    if (useNear) {
      sig ??= this.signatureOf(norm);
      if (sig) {
        const m = this.near.query(sig, o.threshold);
        if (m) return drop({ keep: false, kind: 'near', of: m.id, jaccard: m.jaccard });
        this.near.add(sig, line);
      }
    }
    if (o.mode !== 'none') this.exact.setIfAbsent(h, line);
    this.counts.kept++;
    return { keep: true };
  }

  /** Bytes held by the exact-hash tables and the signature blocks (band tables not counted). */
  approxBytes(): number {
    const sigBytes = (n: number): number => Math.ceil(n / 256) * 256 * this.options.numPerm * 4;
    return this.exact.bytes + (this.evalExact?.bytes ?? 0) + sigBytes(this.near.size) + sigBytes(this.evalNear?.size ?? 0);
  }
}
