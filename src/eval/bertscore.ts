// BERTScore (Zhang et al. 2020) with a local BERT-family encoder (src/models/bert.ts), computed as the bert_score
// package (0.3.13) computes it:
//   - each sentence is strip()ped and encoded with the tokenizer's special tokens; byte-level BPE RoBERTa
//     tokenizers get a leading space (bert_score's add_prefix_space=True); sequences longer than the model's
//     positions are cut, keeping the final special token;
//   - token embeddings are the hidden states of one layer, each scaled to unit length;
//   - weights: idf over the references (all of them, flattened) as log((M + 1) / (df + 1)), log(M + 1) for a token
//     no reference has, or 1 for every token without --idf; the [CLS]/[SEP] (<s>/</s>) ids weigh 0 in both cases
//     but remain candidates of the greedy match (bert_score masks only padding);
//   - P = Σ_h w_h max_r cos(h, r) / Σ_h w_h over hypothesis tokens, R the same over reference tokens,
//     F = 2PR / (P + R), 0 where that is NaN;
//   - with several references per hypothesis, the reference with the highest F gives P, R and F;
//   - baseline rescaling (x − b) / (1 − b) per P, R, F with b from a bert_score baseline file
//     (bertscore_rescale.ts).
import type { BertEncoder } from '../models/bert.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { rescaleWithBaseline, type Baseline } from './bertscore_rescale.ts';

export interface BertScoreOptions {
  /** Hidden-state layer (0 = embeddings; default: the last layer). */
  layer?: number;
  /** idf weighting from the references. */
  idf?: boolean;
  /** Rescale with this baseline row. */
  baseline?: Baseline | null;
  /** Sentences per forward pass (default 16). */
  batchSize?: number;
}

export interface BertScores {
  P: number[];
  R: number[];
  F: number[];
  layer: number;
  idf: boolean;
  rescaled: boolean;
}

function specialId(tok: Tokenizer, key: 'cls_token' | 'sep_token'): number | null {
  const v = tok.config[key];
  const content = typeof v === 'string' ? v : v !== null && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : null;
  return content === null ? null : tok.tokenToId(content) ?? null;
}

/** The ids of [CLS] and [SEP] (RoBERTa: <s>, </s>): from tokenizer_config, else what the post-processor adds. */
export function clsSepIds(tok: Tokenizer): { cls: number; sep: number } {
  let cls = specialId(tok, 'cls_token');
  let sep = specialId(tok, 'sep_token');
  if (cls === null || sep === null) {
    const added = tok.encode('', { addSpecialTokens: true });
    if (added.length === 2) [cls, sep] = [cls ?? added[0], sep ?? added[1]];
  }
  if (cls === null || sep === null) throw new RangeError(`${tok.source}: cannot tell the [CLS] / [SEP] tokens (no cls_token / sep_token in tokenizer_config.json, and the post-processor does not add two tokens)`);
  return { cls, sep };
}

/** Token ids of one sentence as bert_score's sent_encode makes them. */
export function bertScoreEncode(model: BertEncoder, tok: Tokenizer, sentence: string): number[] {
  const s = sentence.trim();
  const prefixSpace = model.config.robertaPositions && tok.modelType === 'BPE';
  let ids = tok.encode(prefixSpace ? ` ${s}` : s, { addSpecialTokens: true });
  const maxLen = model.config.robertaPositions ? model.config.maxPositions - model.config.padTokenId - 1 : model.config.maxPositions;
  if (ids.length > maxLen) ids = [...ids.slice(0, maxLen - 1), ids[ids.length - 1]];
  return ids;
}

/** idf weights from the references: token id -> log((M + 1) / (df + 1)); unseen ids get log(M + 1). */
export function idfWeights(refIds: readonly (readonly number[])[]): { weights: Map<number, number>; unseen: number } {
  const M = refIds.length;
  const df = new Map<number, number>();
  for (const ids of refIds) for (const id of new Set(ids)) df.set(id, (df.get(id) ?? 0) + 1);
  const weights = new Map<number, number>();
  for (const [id, c] of df) weights.set(id, Math.log((M + 1) / (c + 1)));
  return { weights, unseen: Math.log(M + 1) };
}

interface Embedded {
  ids: number[];
  /** Unit vectors, [len * hidden], float64. */
  unit: Float64Array;
}

function unitRows(states: Float32Array, hidden: number): Float64Array {
  const out = new Float64Array(states.length);
  for (let r = 0; r < states.length / hidden; r++) {
    let n = 0;
    for (let h = 0; h < hidden; h++) n += states[r * hidden + h] ** 2;
    n = Math.sqrt(n);
    for (let h = 0; h < hidden; h++) out[r * hidden + h] = states[r * hidden + h] / n;
  }
  return out;
}

/** Greedy-matching precision and recall of one pair. */
function pairScore(hyp: Embedded, ref: Embedded, hidden: number, weight: (id: number) => number): { P: number; R: number; F: number } {
  const nh = hyp.ids.length, nr = ref.ids.length;
  const bestH = new Float64Array(nh).fill(-Infinity);
  const bestR = new Float64Array(nr).fill(-Infinity);
  for (let i = 0; i < nh; i++)
    for (let j = 0; j < nr; j++) {
      let s = 0;
      for (let h = 0; h < hidden; h++) s += hyp.unit[i * hidden + h] * ref.unit[j * hidden + h];
      if (s > bestH[i]) bestH[i] = s;
      if (s > bestR[j]) bestR[j] = s;
    }
  const weighted = (best: Float64Array, ids: readonly number[]) => {
    let num = 0, den = 0;
    ids.forEach((id, i) => {
      const w = weight(id);
      num += w * best[i];
      den += w;
    });
    return num / den;
  };
  const P = weighted(bestH, hyp.ids);
  const R = weighted(bestR, ref.ids);
  let F = (2 * P * R) / (P + R);
  if (Number.isNaN(F)) F = 0;
  return { P, R, F };
}

/** BERTScore of each hypothesis against its references (one or more per hypothesis). */
export function bertScore(model: BertEncoder, tok: Tokenizer, hypotheses: readonly string[], references: readonly (readonly string[])[], opts: BertScoreOptions = {}): BertScores {
  if (hypotheses.length !== references.length) throw new RangeError(`bertScore: ${hypotheses.length} hypotheses but ${references.length} reference lists`);
  references.forEach((r, i) => {
    if (r.length === 0) throw new RangeError(`bertScore: hypothesis ${i + 1} has no reference`);
  });
  const layer = opts.layer ?? model.config.numLayers;
  const hidden = model.config.hiddenSize;
  const { cls, sep } = clsSepIds(tok);
  // Each distinct sentence is encoded once.
  const unique = [...new Set([...hypotheses, ...references.flat()])];
  const ids = unique.map((s) => bertScoreEncode(model, tok, s));
  const states = model.encode(ids, layer, opts.batchSize ?? 16);
  const embedded = new Map<string, Embedded>(unique.map((s, i) => [s, { ids: ids[i], unit: unitRows(states[i], hidden) }]));
  let weight: (id: number) => number;
  if (opts.idf) {
    const { weights, unseen } = idfWeights(references.flat().map((r) => embedded.get(r)!.ids));
    weight = (id) => (id === cls || id === sep ? 0 : weights.get(id) ?? unseen);
  } else weight = (id) => (id === cls || id === sep ? 0 : 1);
  const P: number[] = [], R: number[] = [], F: number[] = [];
  hypotheses.forEach((h, i) => {
    let best: { P: number; R: number; F: number } | null = null;
    for (const r of references[i]) {
      const s = pairScore(embedded.get(h)!, embedded.get(r)!, hidden, weight);
      if (best === null || s.F > best.F) best = s;
    }
    const b = opts.baseline;
    P.push(b ? rescaleWithBaseline(best!.P, b.P) : best!.P);
    R.push(b ? rescaleWithBaseline(best!.R, b.R) : best!.R);
    F.push(b ? rescaleWithBaseline(best!.F, b.F) : best!.F);
  });
  return { P, R, F, layer, idf: !!opts.idf, rescaled: !!opts.baseline };
}
