// Text embeddings from a causal LM's final hidden states (after the final norm — Hugging Face's
// last_hidden_state), and what to do with them: a cosine-similarity matrix, nearest neighbours, and the silhouette
// score of a labelled clustering (Rousseeuw 1987, as scikit-learn's silhouette_score).
//   pooling 'mean': the average over the text's tokens; 'last': the last token's state (what a causal model has
//   seen the whole text at).
import type { PretrainedLM } from '../models/index.ts';
import { intTensor, noGrad, tidy } from '../tensor/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

export type Pooling = 'mean' | 'last';

export interface EmbedOptions {
  pooling?: Pooling;
  /** Texts are cut to their first maxLength tokens (default: the model's max_position_embeddings). */
  maxLength?: number;
  /** Texts per forward pass (right-padded; default 8). */
  batchSize?: number;
  /** Add the tokenizer's special tokens (default true). */
  addSpecialTokens?: boolean;
}

/** One vector [hidden] per text (float64 copies of the float32 states). Empty texts are an error. */
export function embedTexts(model: PretrainedLM, tok: Tokenizer, texts: readonly string[], opts: EmbedOptions = {}): Float64Array[] {
  const pooling = opts.pooling ?? 'mean';
  const maxLength = opts.maxLength ?? model.config.maxPositions;
  const batch = opts.batchSize ?? 8;
  const H = model.config.hiddenSize;
  const ids = texts.map((t, i) => {
    const e = tok.encode(t, { addSpecialTokens: opts.addSpecialTokens ?? true }).slice(0, maxLength);
    if (e.length === 0) throw new RangeError(`embedTexts: text ${i} encodes to no tokens`);
    return e;
  });
  const out: Float64Array[] = [];
  for (let s = 0; s < ids.length; s += batch) {
    const group = ids.slice(s, s + batch);
    const B = group.length;
    const T = Math.max(...group.map((g) => g.length));
    const flat = new Int32Array(B * T);
    const mask = new Int32Array(B * T);
    group.forEach((g, b) => {
      flat.set(g, b * T);
      mask.fill(1, b * T, b * T + g.length);
    });
    noGrad(() =>
      tidy(() => {
        // Right padding: real tokens never attend to the padding after them (causal), so each row's states are
        // those of the text alone; the mask keeps position ids right.
        const hidden = model.forward(intTensor(flat, [B, T]), { attentionMask: intTensor(mask, [B, T]) }).data as ArrayLike<number>; // [B, T, H]
        group.forEach((g, b) => {
          const v = new Float64Array(H);
          if (pooling === 'last') for (let h = 0; h < H; h++) v[h] = hidden[(b * T + g.length - 1) * H + h];
          else {
            for (let t = 0; t < g.length; t++) for (let h = 0; h < H; h++) v[h] += hidden[(b * T + t) * H + h];
            for (let h = 0; h < H; h++) v[h] /= g.length;
          }
          out.push(v);
        });
      }),
    );
  }
  return out;
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

function checkVectors(op: string, vs: readonly ArrayLike<number>[]): number {
  if (vs.length === 0) throw new RangeError(`${op}: no vectors`);
  const d = vs[0].length;
  vs.forEach((v, i) => {
    if (v.length !== d) throw new RangeError(`${op}: vector ${i} has ${v.length} dimensions, vector 0 has ${d}`);
  });
  return d;
}

/** cos(a, b) = a.b / (|a| |b|); 0 when either vector is zero. */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`cosineSimilarity: ${a.length} vs ${b.length} dimensions`);
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i] * b[i];
  const n = norm(a) * norm(b);
  return n === 0 ? 0 : dot / n;
}

/** The n x n matrix of cosine similarities. */
export function cosineSimilarityMatrix(vectors: readonly ArrayLike<number>[]): number[][] {
  checkVectors('cosineSimilarityMatrix', vectors);
  const n = vectors.length;
  const m = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    m[i][i] = norm(vectors[i]) === 0 ? 0 : 1;
    for (let j = i + 1; j < n; j++) m[i][j] = m[j][i] = cosineSimilarity(vectors[i], vectors[j]);
  }
  return m;
}

export interface Neighbour {
  index: number;
  similarity: number;
}

/** For each vector, the k others most cosine-similar to it (most similar first; ties by lower index). */
export function nearestNeighbours(vectors: readonly ArrayLike<number>[], k: number): Neighbour[][] {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`nearestNeighbours: k must be a positive integer, got ${k}`);
  const sim = cosineSimilarityMatrix(vectors);
  return sim.map((row, i) =>
    row
      .map((similarity, index) => ({ index, similarity }))
      .filter((x) => x.index !== i)
      .sort((a, b) => b.similarity - a.similarity || a.index - b.index)
      .slice(0, k),
  );
}

export type DistanceMetric = 'euclidean' | 'cosine';

/** Pairwise distances: euclidean, or cosine distance 1 - cos (scikit-learn's 'cosine'). */
export function pairwiseDistances(vectors: readonly ArrayLike<number>[], metric: DistanceMetric = 'euclidean'): number[][] {
  checkVectors('pairwiseDistances', vectors);
  const n = vectors.length;
  const d = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      let v: number;
      if (metric === 'cosine') v = 1 - cosineSimilarity(vectors[i], vectors[j]);
      else {
        let s = 0;
        const a = vectors[i];
        const b = vectors[j];
        for (let t = 0; t < a.length; t++) s += (a[t] - b[t]) ** 2;
        v = Math.sqrt(s);
      }
      d[i][j] = d[j][i] = v;
    }
  return d;
}

export interface Silhouette {
  /** Mean of the per-sample values. */
  score: number;
  /** s(i) = (b - a) / max(a, b): a = mean distance to the other members of i's cluster, b = the smallest mean
   *  distance to another cluster; 0 for a point alone in its cluster. */
  samples: number[];
}

/** Silhouette of a clustering (2 <= number of clusters <= n - 1, as scikit-learn requires). */
export function silhouetteScore(vectors: readonly ArrayLike<number>[], labels: readonly (string | number)[], metric: DistanceMetric = 'euclidean'): Silhouette {
  if (labels.length !== vectors.length) throw new RangeError(`silhouetteScore: ${vectors.length} vectors but ${labels.length} labels`);
  const clusters = [...new Set(labels)];
  if (clusters.length < 2 || clusters.length > vectors.length - 1)
    throw new RangeError(`silhouetteScore: needs 2 to n - 1 = ${vectors.length - 1} clusters, got ${clusters.length}`);
  const d = pairwiseDistances(vectors, metric);
  const members = new Map(clusters.map((c) => [c, labels.map((l, i) => (l === c ? i : -1)).filter((i) => i >= 0)]));
  const samples = labels.map((l, i) => {
    const own = members.get(l) as number[];
    if (own.length === 1) return 0;
    const a = own.reduce((s, j) => s + d[i][j], 0) / (own.length - 1);
    let b = Infinity;
    for (const [c, m] of members) if (c !== l) b = Math.min(b, m.reduce((s, j) => s + d[i][j], 0) / m.length);
    const den = Math.max(a, b);
    return den === 0 ? 0 : (b - a) / den;
  });
  return { score: samples.reduce((s, x) => s + x, 0) / samples.length, samples };
}
