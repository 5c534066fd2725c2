// Packing: several tokenised examples in one row of at most maxLength tokens, so a batch holds few padding
// tokens. A packed row carries per-token position ids that restart at 0 for each document and document ids;
// models given both (ForwardOptions.positionIds / documentIds) let a token attend only to its own document, so
// each document gets exactly the hidden states it would get alone (test/models/packing.test.ts), and the
// labels below make the loss equal too (test/data/packing.test.ts).
import { AlignkitError } from '../tensor/errors.ts';
import { IGNORE_INDEX, type TokenizedExample } from './sft_tokenize.ts';

export interface PackedRow {
  /** [T] the documents' ids, one after another. */
  inputIds: Int32Array;
  /** [T] the documents' labels, with the first token of every document set to -100 (see packRow). */
  labels: Int32Array;
  /** [T] position of each token within its document: 0, 1, ... restarting per document. */
  positionIds: Int32Array;
  /** [T] index of the document each token belongs to: 0,0,0,1,1,2,... */
  documentIds: Int32Array;
}

/**
 * Groups examples into bins of at most maxLength tokens by best-fit decreasing: examples are taken longest first
 * (ties: lower index first) and each goes into the open bin it fills most tightly (the one with the least room
 * left that still fits it; among bins with equal room, the one that got there last), or a new bin. Deterministic: the same lengths give the
 * same bins. Returns, per bin, the example indices in the order they were placed. O(n log n + n log maxLength).
 */
export function planPacking(lengths: readonly number[], maxLength: number): number[][] {
  if (!Number.isInteger(maxLength) || maxLength < 1) throw new AlignkitError(`planPacking: maxLength must be a positive integer, got ${maxLength}`);
  lengths.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) throw new AlignkitError(`planPacking: example ${i} has length ${n} (must be a positive integer)`);
    if (n > maxLength) throw new AlignkitError(`planPacking: example ${i} has ${n} tokens, more than maxLength ${maxLength} (truncate when tokenising)`);
  });
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[b] - lengths[a] || a - b);
  const bins: number[][] = [];
  // Open bins grouped by the room they have left (a stack per room value); `rooms` finds the smallest room >= n
  // that has a bin.
  const byRoom: number[][] = Array.from({ length: maxLength + 1 }, () => []);
  const rooms = new MinIndexTree(maxLength + 1);
  for (const i of order) {
    const n = lengths[i];
    const r = rooms.firstAtLeast(n);
    let bin: number;
    let had: number;
    if (r < 0) {
      bin = bins.length;
      bins.push([]);
      had = maxLength;
    } else {
      bin = byRoom[r].pop() as number;
      if (byRoom[r].length === 0) rooms.set(r, false);
      had = r;
    }
    bins[bin].push(i);
    const left = had - n;
    if (left > 0) {
      byRoom[left].push(bin);
      rooms.set(left, true);
    }
  }
  return bins;
}

/** A set of integers in [0, size) answering "smallest member >= k" in O(log size) (a segment tree of flags). */
class MinIndexTree {
  private readonly n: number;
  private readonly any: Uint8Array;

  constructor(size: number) {
    let n = 1;
    while (n < size) n *= 2;
    this.n = n;
    this.any = new Uint8Array(2 * n);
  }

  set(i: number, present: boolean): void {
    let p = i + this.n;
    this.any[p] = present ? 1 : 0;
    for (p >>= 1; p >= 1; p >>= 1) this.any[p] = this.any[2 * p] | this.any[2 * p + 1];
  }

  /** Smallest member >= k, or -1. */
  firstAtLeast(k: number): number {
    return this.search(1, 0, this.n, k);
  }

  private search(node: number, lo: number, hi: number, k: number): number {
    if (hi <= k || !this.any[node]) return -1;
    if (hi - lo === 1) return lo;
    const mid = (lo + hi) >> 1;
    const left = this.search(2 * node, lo, mid, k);
    return left >= 0 ? left : this.search(2 * node + 1, mid, hi, k);
  }
}

/**
 * Concatenates examples into one packed row.
 *
 * Labels at document boundaries: the trainer shifts labels left by one (the target of position t is
 * labels[t + 1]), so the label of document j's first token would be predicted from document j-1's last token —
 * a target that crosses documents and that the document on its own never has. The first token of every
 * document therefore gets label -100. (For document 0 this changes nothing: position 0 is never a target.)
 * With this, the summed loss of a packed row equals the sum of its documents' losses computed one by one.
 */
export function packRow(examples: readonly TokenizedExample[]): PackedRow {
  if (examples.length === 0) throw new AlignkitError('packRow: no examples');
  let total = 0;
  for (const [j, e] of examples.entries()) {
    if (e.inputIds.length !== e.labels.length) throw new AlignkitError(`packRow: example ${j} has ${e.inputIds.length} ids but ${e.labels.length} labels`);
    if (e.inputIds.length === 0) throw new AlignkitError(`packRow: example ${j} is empty`);
    total += e.inputIds.length;
  }
  const inputIds = new Int32Array(total);
  const labels = new Int32Array(total);
  const positionIds = new Int32Array(total);
  const documentIds = new Int32Array(total);
  let at = 0;
  for (const [j, e] of examples.entries()) {
    const n = e.inputIds.length;
    inputIds.set(e.inputIds, at);
    labels.set(e.labels, at);
    labels[at] = IGNORE_INDEX;
    for (let t = 0; t < n; t++) positionIds[at + t] = t;
    documentIds.fill(j, at, at + n);
    at += n;
  }
  return { inputIds, labels, positionIds, documentIds };
}
