// TER (translation edit rate) as sacreBLEU computes it (sacrebleu 2.6.0, metrics/ter.py + lib_ter.py +
// tokenizers/tokenizer_ter.py), itself a re-implementation of Tercom (Snover et al. 2006).
//
// Semantics reproduced:
// - Tercom normalisation: lowercase unless case-sensitive; with `normalized`, XML entities, Western
//   punctuation splitting and possessive 's handling, and with `asianSupport` CJK splitting; `noPunct` removes
//   punctuation (plus CJK / full-width punctuation with `asianSupport`);
// - edit distance over words with a beam around the length-scaled diagonal (width 25), unit costs, ties
//   resolved in the order substitution/match, deletion, insertion;
// - greedy block shifts (length <= 10, distance <= 50) picked by (edit-distance gain, length, earliest
//   hypothesis start, earliest target), at most 1000 candidate shifts per sentence in total;
// - segment statistics: the fewest edits over the references and the average reference length; corpus TER is
//   100 * total edits / total average reference length (100 for an empty reference with a non-empty
//   hypothesis, 0 when both are empty).
import { formatSignature, segmentReferences, type CorpusMetric, type ReferenceStreams } from './corpus_metric.ts';
import { pyRstrip, pySplit } from './text.ts';

export interface TerOptions {
  normalized?: boolean;
  noPunct?: boolean;
  asianSupport?: boolean;
  caseSensitive?: boolean;
}

// --- Tercom tokenizer ---------------------------------------------------------------------------------------

const ASIAN_PUNCT = /([\u3001\u3002\u3008-\u3011\u3014-\u301f\uff61-\uff65\u30fb])/g;
const FULL_WIDTH_PUNCT = /([\uff0e\uff0c\uff1f\uff1a\uff1b\uff01\uff02\uff08\uff09])/g;

function normalizeGeneralAndWestern(sent: string): string {
  sent = sent.replace(/\n-/g, '');
  sent = sent.replace(/\n/g, ' ');
  sent = sent.replace(/&quot;/g, '"');
  sent = sent.replace(/&amp;/g, '&');
  sent = sent.replace(/&lt;/g, '<');
  sent = sent.replace(/&gt;/g, '>');
  sent = ` ${sent} `;
  sent = sent.replace(/([{-~[-` -&(-+:-@/])/g, ' $1 ');
  sent = sent.replace(/'s /g, " 's ");
  // Python's `$` also matches before a final newline; the text has no newline left at this point.
  sent = sent.replace(/'s$/g, " 's");
  sent = sent.replace(/([^0-9])([.,])/g, '$1 $2 ');
  sent = sent.replace(/([.,])([^0-9])/g, ' $1 $2');
  sent = sent.replace(/([0-9])(-)/g, '$1 $2 ');
  return sent;
}

function normalizeAsian(sent: string): string {
  sent = sent.replace(/([\u4e00-\u9fff\u3400-\u4dbf])/g, ' $1 ');
  sent = sent.replace(/([\u31c0-\u31ef\u2e80-\u2eff])/g, ' $1 ');
  sent = sent.replace(/([\u3300-\u33ff\uf900-\ufaff\ufe30-\ufe4f])/g, ' $1 ');
  sent = sent.replace(/([\u3200-\u3f22])/g, ' $1 ');
  // Tercom's kana rules; `^` inside the group only matches at the start of the string (as in the original).
  sent = sent.replace(/(^|^[\u3040-\u309f])([\u3040-\u309f]+)(?=$|^[\u3040-\u309f])/g, '$1 $2 ');
  sent = sent.replace(/(^|^[\u30a0-\u30ff])([\u30a0-\u30ff]+)(?=$|^[\u30a0-\u30ff])/g, '$1 $2 ');
  sent = sent.replace(/(^|^[\u31f0-\u31ff])([\u31f0-\u31ff]+)(?=$|^[\u31f0-\u31ff])/g, '$1 $2 ');
  sent = sent.replace(ASIAN_PUNCT, ' $1 ');
  sent = sent.replace(FULL_WIDTH_PUNCT, ' $1 ');
  return sent;
}

/** sacreBLEU's TercomTokenizer. */
export function tercomTokenize(sent: string, opts: TerOptions = {}): string {
  if (!sent) return '';
  if (!opts.caseSensitive) sent = sent.toLowerCase();
  if (opts.normalized) {
    sent = normalizeGeneralAndWestern(sent);
    if (opts.asianSupport) sent = normalizeAsian(sent);
  }
  if (opts.noPunct) {
    sent = sent.replace(/[.,?:;!"()]/g, '');
    if (opts.asianSupport) sent = sent.replace(ASIAN_PUNCT, '').replace(FULL_WIDTH_PUNCT, '');
  }
  return pySplit(sent).join(' ');
}

// --- edit distance with shifts --------------------------------------------------------------------------------

const MAX_SHIFT_SIZE = 10;
const MAX_SHIFT_DIST = 50;
const BEAM_WIDTH = 25;
const MAX_SHIFT_CANDIDATES = 1000;
/** Larger than any reachable cost; adding 1 to it stays exact in float64. */
const INF = 2 ** 50;

const OP_NOP = 0, OP_SUB = 1, OP_INS = 2, OP_DEL = 3, OP_UNDEF = 4;

/**
 * Beam edit distance from a hypothesis to the fixed reference. Returns the distance and the trace of operations
 * (hypothesis-to-reference: 'd' consumes a hypothesis word, 'i' a reference word). Rows for a hypothesis prefix
 * are cached in a trie, as sacreBLEU does, since shifted candidates share long prefixes.
 */
class BeamEditDistance {
  private readonly nRef: number;
  private readonly initialCost: Int32Array | Float64Array;
  private readonly initialOp: Uint8Array;
  private readonly root: TrieNode = { children: new Map(), cost: null, op: null };
  private cacheSize = 0;

  constructor(private readonly ref: readonly string[]) {
    this.nRef = ref.length;
    this.initialCost = new Float64Array(this.nRef + 1);
    this.initialOp = new Uint8Array(this.nRef + 1).fill(OP_INS);
    for (let j = 0; j <= this.nRef; j++) this.initialCost[j] = j;
  }

  distance(hyp: readonly string[]): { cost: number; trace: Uint8Array } {
    const nHyp = hyp.length;
    const costs: (Float64Array | Int32Array)[] = [this.initialCost];
    const ops: Uint8Array[] = [this.initialOp];
    // Reuse cached rows for the longest cached prefix.
    let node = this.root;
    let start = 0;
    for (const w of hyp) {
      const next = node.children.get(w);
      if (next === undefined) break;
      node = next;
      costs.push(next.cost!);
      ops.push(next.op!);
      start++;
    }
    const lengthRatio = nHyp > 0 ? this.nRef / nHyp : 1;
    const beam = BEAM_WIDTH < lengthRatio / 2 ? Math.ceil(lengthRatio / 2 + BEAM_WIDTH) : BEAM_WIDTH;
    const width = this.nRef + 1;
    for (let i = start + 1; i <= nHyp; i++) {
      const cost = new Float64Array(width).fill(INF);
      const op = new Uint8Array(width).fill(OP_UNDEF);
      const prevCost = costs[i - 1];
      const pseudoDiag = Math.floor(i * lengthRatio);
      const minJ = Math.max(0, pseudoDiag - beam);
      const maxJ = i === nHyp ? width : Math.min(width, pseudoDiag + beam);
      const word = hyp[i - 1];
      for (let j = minJ; j < maxJ; j++) {
        if (j === 0) {
          cost[0] = prevCost[0] + 1;
          op[0] = OP_DEL;
          continue;
        }
        const same = word === this.ref[j - 1];
        // Candidates in sacreBLEU's order; a later one replaces only a strictly smaller cost.
        const sub = prevCost[j - 1] + (same ? 0 : 1);
        if (cost[j] > sub) {
          cost[j] = sub;
          op[j] = same ? OP_NOP : OP_SUB;
        }
        const del = prevCost[j] + 1;
        if (cost[j] > del) {
          cost[j] = del;
          op[j] = OP_DEL;
        }
        const ins = cost[j - 1] + 1;
        if (cost[j] > ins) {
          cost[j] = ins;
          op[j] = OP_INS;
        }
      }
      costs.push(cost);
      ops.push(op);
    }
    // Backtrace.
    const trace: number[] = [];
    let i = nHyp, j = this.nRef;
    while (i > 0 || j > 0) {
      const o = ops[i][j];
      trace.push(o);
      if (o === OP_SUB || o === OP_NOP) {
        i--;
        j--;
      } else if (o === OP_INS) j--;
      else if (o === OP_DEL) i--;
      else throw new Error(`TER: unknown edit operation at (${i}, ${j})`);
    }
    trace.reverse();
    this.addToCache(hyp, start, costs, ops);
    return { cost: costs[nHyp][this.nRef], trace: Uint8Array.from(trace) };
  }

  private addToCache(hyp: readonly string[], start: number, costs: (Float64Array | Int32Array)[], ops: Uint8Array[]): void {
    if (this.cacheSize >= 10000) return;
    let node = this.root;
    for (let i = 0; i < start; i++) node = node.children.get(hyp[i])!;
    for (let i = start; i < hyp.length; i++) {
      let next = node.children.get(hyp[i]);
      if (next === undefined) {
        next = { children: new Map(), cost: costs[i + 1], op: ops[i + 1] };
        node.children.set(hyp[i], next);
        this.cacheSize++;
      }
      node = next;
    }
  }
}

interface TrieNode {
  children: Map<string, TrieNode>;
  cost: Float64Array | Int32Array | null;
  op: Uint8Array | null;
}

/** From a hypothesis-to-reference trace, the alignment ref position -> hyp position and the error flags. */
function traceToAlignment(trace: Uint8Array): { align: Int32Array; refErr: Uint8Array; hypErr: Uint8Array } {
  // The trace is flipped first (insertions <-> deletions) to read it as reference-to-hypothesis.
  let posHyp = -1, posRef = -1;
  const hypErr: number[] = [];
  const refErr: number[] = [];
  const alignList: number[] = [];
  for (const raw of trace) {
    const o = raw === OP_INS ? OP_DEL : raw === OP_DEL ? OP_INS : raw;
    if (o === OP_NOP || o === OP_SUB) {
      posHyp++;
      posRef++;
      alignList[posRef] = posHyp;
      hypErr.push(o === OP_SUB ? 1 : 0);
      refErr.push(o === OP_SUB ? 1 : 0);
    } else if (o === OP_INS) {
      posHyp++;
      hypErr.push(1);
    } else {
      posRef++;
      alignList[posRef] = posHyp;
      refErr.push(1);
    }
  }
  return { align: Int32Array.from(alignList), refErr: Uint8Array.from(refErr), hypErr: Uint8Array.from(hypErr) };
}

function performShift(words: readonly string[], start: number, length: number, target: number): string[] {
  if (target < start) return [...words.slice(0, target), ...words.slice(start, start + length), ...words.slice(target, start), ...words.slice(start + length)];
  if (target > start + length) return [...words.slice(0, start), ...words.slice(start + length, target), ...words.slice(start, start + length), ...words.slice(target)];
  return [...words.slice(0, start), ...words.slice(start + length, length + target), ...words.slice(start, start + length), ...words.slice(length + target)];
}

function sumRange(a: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let k = from; k < to && k < a.length; k++) s += a[k];
  return s;
}

/** One greedy shift step: the best shift found, or delta 0 when none helps. */
function bestShift(hyp: readonly string[], ref: readonly string[], ed: BeamEditDistance, checked: number): { delta: number; words: readonly string[]; checked: number } {
  const pre = ed.distance(hyp);
  const { align, refErr, hypErr } = traceToAlignment(pre.trace);
  let best: { score: number; length: number; negStart: number; negIdx: number; words: string[] } | null = null;
  const nH = hyp.length, nR = ref.length;
  outer: for (let startH = 0; startH < nH; startH++) {
    for (let startR = 0; startR < nR; startR++) {
      if (Math.abs(startR - startH) > MAX_SHIFT_DIST) continue;
      let length = 0;
      while (hyp[startH + length] === ref[startR + length] && length < MAX_SHIFT_SIZE) {
        length++;
        // A candidate block hyp[startH, startH+length) = ref[startR, startR+length).
        if (sumRange(hypErr, startH, startH + length) !== 0 && sumRange(refErr, startR, startR + length) !== 0 && !(startH <= align[startR] && align[startR] < startH + length)) {
          let prevIdx = -1;
          for (let offset = -1; offset < length; offset++) {
            let idx: number;
            if (startR + offset === -1) idx = 0;
            else if (startR + offset < align.length) idx = align[startR + offset] + 1;
            else break;
            if (idx === prevIdx) continue;
            prevIdx = idx;
            const shifted = performShift(hyp, startH, length, idx);
            const score = pre.cost - ed.distance(shifted).cost;
            checked++;
            const cand = { score, length, negStart: -startH, negIdx: -idx, words: shifted };
            if (best === null || better(cand, best)) best = cand;
          }
          if (checked >= MAX_SHIFT_CANDIDATES) break outer;
        }
        if (nH === startH + length || nR === startR + length) break;
      }
    }
  }
  if (best === null) return { delta: 0, words: hyp, checked };
  return { delta: best.score, words: best.words, checked };
}

function better(a: { score: number; length: number; negStart: number; negIdx: number; words: string[] }, b: typeof a): boolean {
  if (a.score !== b.score) return a.score > b.score;
  if (a.length !== b.length) return a.length > b.length;
  if (a.negStart !== b.negStart) return a.negStart > b.negStart;
  if (a.negIdx !== b.negIdx) return a.negIdx > b.negIdx;
  // Python then compares the shifted word lists; equal keys imply equal lists, so nothing more to decide.
  return false;
}

/** Number of edits (shifts + edit distance) from hypothesis words to reference words, and the reference length. */
export function translationEditRate(hypWords: readonly string[], refWords: readonly string[]): { edits: number; refLength: number } {
  if (refWords.length === 0) return { edits: hypWords.length, refLength: 0 };
  const ed = new BeamEditDistance(refWords);
  let shifts = 0;
  let words = hypWords;
  let checked = 0;
  for (;;) {
    const step = bestShift(words, refWords, ed, checked);
    checked = step.checked;
    if (checked >= MAX_SHIFT_CANDIDATES) break;
    if (step.delta <= 0) break;
    shifts++;
    words = step.words;
  }
  return { edits: shifts + ed.distance(words).cost, refLength: refWords.length };
}

export class Ter implements CorpusMetric {
  readonly name = 'TER';
  readonly higherIsBetter = false;
  readonly opts: Required<TerOptions>;

  constructor(opts: TerOptions = {}) {
    this.opts = { normalized: opts.normalized ?? false, noPunct: opts.noPunct ?? false, asianSupport: opts.asianSupport ?? false, caseSensitive: opts.caseSensitive ?? false };
  }

  preprocess(sentence: string): string {
    return tercomTokenize(pyRstrip(sentence), this.opts);
  }

  /** [best edits, average reference length] for one hypothesis. */
  sentenceStatistics(hypothesis: string, references: readonly string[]): number[] {
    const hyp = pySplit(this.preprocess(hypothesis));
    let refLengths = 0;
    let best = 1e16;
    for (const r of references) {
      const { edits, refLength } = translationEditRate(hyp, pySplit(this.preprocess(r)));
      refLengths += refLength;
      if (edits < best) best = edits;
    }
    return [best, refLengths / references.length];
  }

  segmentStatistics(hypotheses: readonly string[], references: ReferenceStreams): number[][] {
    const { perSegment } = segmentReferences(hypotheses.length, references);
    return hypotheses.map((h, i) => this.sentenceStatistics(h, perSegment[i]));
  }

  scoreFromStatistics(summed: readonly number[]): number {
    const [edits, refLen] = summed;
    if (refLen > 0) return (100 * edits) / refLen;
    return edits > 0 ? 100 : 0;
  }

  corpusScore(hypotheses: readonly string[], references: ReferenceStreams): { score: number; numEdits: number; refLength: number; signature: string } {
    const { numRefs } = segmentReferences(hypotheses.length, references);
    const stats = this.segmentStatistics(hypotheses, references);
    let edits = 0, refLen = 0;
    for (const [e, r] of stats) {
      edits += e;
      refLen += r;
    }
    return { score: this.scoreFromStatistics([edits, refLen]), numEdits: edits, refLength: refLen, signature: this.signature(numRefs) };
  }

  sentenceScore(hypothesis: string, references: readonly string[]): { score: number; numEdits: number; refLength: number; signature: string } {
    const [edits, refLen] = this.sentenceStatistics(hypothesis, references);
    return { score: this.scoreFromStatistics([edits, refLen]), numEdits: edits, refLength: refLen, signature: this.signature(references.length) };
  }

  signature(numRefs: number | 'var', extra: Record<string, string | number> = {}): string {
    const yn = (b: boolean) => (b ? 'yes' : 'no');
    return formatSignature(
      numRefs,
      [
        ['case', this.opts.caseSensitive ? 'mixed' : 'lc'],
        ['tok', 'tercom'],
        ['norm', yn(this.opts.normalized)],
        ['punct', yn(!this.opts.noPunct)],
        ['asian', yn(this.opts.asianSupport)],
      ],
      extra,
    );
  }
}

export function corpusTer(hypotheses: readonly string[], references: ReferenceStreams, opts: TerOptions = {}) {
  return new Ter(opts).corpusScore(hypotheses, references);
}
