// Logits processors and the sampler, on one row of logits at a time (a Float64Array of vocabulary size).
//
// Order, as Hugging Face `generate` applies them:
//   repetition penalty -> temperature -> top-k -> top-p -> min-p -> sample (or argmax when temperature = 0)
// Every filter writes -Infinity into the logits it removes (HF's filter_value) and always keeps at least the
// most likely token, so a row can never be left with nothing to sample.
//
// Tie rules (deterministic, documented because HF's torch.sort / torch.topk leave them unspecified):
//   - argmax: the lowest index among equal maxima (torch.argmax's rule).
//   - top-k: every token equal to the k-th largest value is kept (HF compares `< kth value`), so ties at the
//     boundary can keep more than k tokens.
//   - top-p: tokens are ranked by logit descending, then index ascending; the cut happens in that order, so
//     among equal logits at the boundary the lower indices are kept.
// The math runs in float64 so results do not depend on the summation order of a SIMD kernel.

/** Logits-processing options (the HF names, camel-cased). */
export interface SamplingOptions {
  /** Logits are divided by this before sampling; 0 = greedy (argmax). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties at the k-th value are kept); 0 = off. Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches topP; in (0, 1], 1 = off. Default 1. */
  topP?: number;
  /** Drop tokens whose probability is below minP times the top token's; in [0, 1], 0 = off. Default 0. */
  minP?: number;
  /** HF repetition penalty over the tokens already present (prompt + generated): > 0, 1 = off. Default 1. */
  repetitionPenalty?: number;
}

/** SamplingOptions with every field present and validated. */
export type ResolvedSampling = Required<SamplingOptions>;

/** Validates sampling options and fills the defaults; throws a RangeError naming the bad option. */
export function resolveSampling(o: SamplingOptions, where = 'generate'): ResolvedSampling {
  const temperature = o.temperature ?? 1;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  const minP = o.minP ?? 0;
  const repetitionPenalty = o.repetitionPenalty ?? 1;
  if (typeof temperature !== 'number' || !Number.isFinite(temperature) || temperature < 0)
    throw new RangeError(`${where}: temperature must be a finite number >= 0 (0 = greedy), got ${temperature}`);
  if (typeof topK !== 'number' || !Number.isInteger(topK) || topK < 0)
    throw new RangeError(`${where}: topK must be an integer >= 0 (0 = off), got ${topK}`);
  if (typeof topP !== 'number' || !(topP > 0 && topP <= 1))
    throw new RangeError(`${where}: topP must be in (0, 1] (1 = off), got ${topP}`);
  if (typeof minP !== 'number' || !(minP >= 0 && minP <= 1))
    throw new RangeError(`${where}: minP must be in [0, 1] (0 = off), got ${minP}`);
  if (typeof repetitionPenalty !== 'number' || !Number.isFinite(repetitionPenalty) || !(repetitionPenalty > 0))
    throw new RangeError(`${where}: repetitionPenalty must be a finite number > 0 (1 = off), got ${repetitionPenalty}`);
  return { temperature, topK, topP, minP, repetitionPenalty };
}

// ---------------------------------------------------------------------------------------------- processors

/**
 * HF RepetitionPenaltyLogitsProcessor: for every token id in `seen` (duplicates count once), a positive
 * logit is divided by `penalty` and a negative one multiplied by it, so penalty > 1 always makes the token
 * less likely. In place.
 */
export function applyRepetitionPenalty(logits: Float64Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  const done = new Set<number>();
  for (const id of seen) {
    if (done.has(id) || id < 0 || id >= logits.length) continue;
    done.add(id);
    const v = logits[id];
    logits[id] = v < 0 ? v * penalty : v / penalty;
  }
}

/** logits /= temperature (temperature > 0). In place. */
export function applyTemperature(logits: Float64Array, temperature: number): void {
  if (temperature === 1) return;
  for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
}

/** The k-th largest value (1-based k <= length) with a size-k min-heap: O(V log k), no full sort. */
function kthLargest(x: Float64Array, k: number): number {
  const heap = new Float64Array(k);
  let n = 0;
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let s = i;
      if (l < n && heap[l] < heap[s]) s = l;
      if (r < n && heap[r] < heap[s]) s = r;
      if (s === i) return;
      const t = heap[i];
      heap[i] = heap[s];
      heap[s] = t;
      i = s;
    }
  };
  for (let j = 0; j < x.length; j++) {
    const v = x[j];
    if (n < k) {
      // sift up
      let i = n++;
      heap[i] = v;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (heap[p] <= heap[i]) break;
        const t = heap[p];
        heap[p] = heap[i];
        heap[i] = t;
        i = p;
      }
    } else if (v > heap[0]) {
      heap[0] = v;
      down(0);
    }
  }
  return heap[0];
}

/** HF TopKLogitsWarper: removes tokens below the k-th largest logit (ties with it are kept). k = 0 or k >= V: no-op. */
export function applyTopK(logits: Float64Array, k: number): void {
  const V = logits.length;
  if (k <= 0 || k >= V) return;
  const kth = kthLargest(logits, k);
  for (let i = 0; i < V; i++) if (logits[i] < kth) logits[i] = -Infinity;
}

/**
 * HF TopPLogitsWarper (nucleus): with tokens ranked most likely first (logit descending, then index
 * ascending), a token is removed when the total probability of it and every token ranked after it is
 * <= 1 - p. What survives is the shortest ranked prefix whose mass is >= p (up to rounding). The top-ranked
 * token is always kept. p = 1: no-op.
 *
 * Cost: with n candidates and e_i = exp(z_i - max z), S = sum e_i, every token with e_i < (1 - p) S / n is
 * certainly removed (all of them together weigh less than (1 - p) S, and they rank below every other
 * token), so only the others are sorted — usually a small fraction of a real vocabulary.
 */
export function applyTopP(logits: Float64Array, p: number): void {
  if (p >= 1) return;
  const V = logits.length;
  let m = -Infinity;
  let n = 0;
  for (let i = 0; i < V; i++)
    if (logits[i] !== -Infinity) {
      n++;
      if (logits[i] > m) m = logits[i];
    }
  if (n <= 1) return;
  const e = new Float64Array(V);
  let S = 0;
  for (let i = 0; i < V; i++) S += (e[i] = Math.exp(logits[i] - m));
  const limit = (1 - p) * S;
  const floor = limit / n;
  let tail = 0; // mass of the tokens removed so far (the least likely ones)
  let c = 0;
  for (let i = 0; i < V; i++) if (logits[i] !== -Infinity && e[i] >= floor) c++;
  const cand = new Int32Array(c);
  for (let i = 0, j = 0; i < V; i++) {
    if (logits[i] === -Infinity) continue;
    if (e[i] >= floor) cand[j++] = i;
    else {
      tail += e[i];
      logits[i] = -Infinity;
    }
  }
  cand.sort((a, b) => logits[b] - logits[a] || a - b);
  // Walk up from the least likely candidate (HF's ascending cumulative sum); never remove the top one.
  for (let j = c - 1; j >= 1; j--) {
    tail += e[cand[j]];
    if (tail <= limit) logits[cand[j]] = -Infinity;
    else break; // the tail only grows from here on: everything ranked higher is kept
  }
}

/**
 * HF MinPLogitsWarper: removes tokens whose probability is below minP * (probability of the top token),
 * i.e. exp(logit - maxLogit) < minP. The top token is always kept. minP = 0: no-op.
 */
export function applyMinP(logits: Float64Array, minP: number): void {
  if (minP <= 0) return;
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > m) m = logits[i];
  if (m === -Infinity) return;
  for (let i = 0; i < logits.length; i++) if (Math.exp(logits[i] - m) < minP) logits[i] = -Infinity;
}

/**
 * The whole HF chain in place: repetition penalty (over `seen`), then — unless greedy (temperature 0) —
 * temperature, top-k, top-p, min-p. Greedy stops after the penalty: the filters never remove the argmax,
 * so they cannot change a greedy choice.
 */
export function processLogits(logits: Float64Array, s: ResolvedSampling, seen: Iterable<number> = []): void {
  applyRepetitionPenalty(logits, seen, s.repetitionPenalty);
  if (s.temperature === 0) return;
  applyTemperature(logits, s.temperature);
  applyTopK(logits, s.topK);
  applyTopP(logits, s.topP);
  applyMinP(logits, s.minP);
}

// ---------------------------------------------------------------------------------------------- choosing

/** Index of the largest logit; the lowest index among ties. NaN never wins over a number. */
export function argmaxIndex(logits: ArrayLike<number>): number {
  let best = -Infinity;
  let at = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > best) {
      best = logits[i];
      at = i;
    }
  }
  return at;
}

/**
 * Inverse-CDF sampling from softmax(logits) with a uniform u in [0, 1): the first index whose cumulative
 * (unnormalised) probability exceeds u * total. Tokens at -Infinity have probability 0 and are never chosen.
 */
export function sampleIndex(logits: ArrayLike<number>, u: number): number {
  const V = logits.length;
  let m = -Infinity;
  for (let i = 0; i < V; i++) if (logits[i] > m) m = logits[i];
  if (m === -Infinity || Number.isNaN(m)) return argmaxIndex(logits);
  const e = new Float64Array(V);
  let total = 0;
  for (let i = 0; i < V; i++) total += (e[i] = Math.exp(logits[i] - m));
  const target = Math.min(Math.max(u, 0), 1) * total;
  let cum = 0;
  let last = 0;
  for (let i = 0; i < V; i++) {
    if (e[i] > 0) {
      cum += e[i];
      last = i;
      if (cum > target) return i;
    }
  }
  return last; // u rounded up to 1: the last token with nonzero probability
}

/**
 * log softmax(logits / temperature)[index], in float64, with exactly the fused `linearLogprob` kernel's
 * formula: z = logit / T, lse = max(z) + log(sum exp(z - max(z))), logprob = z[index] - lse.
 */
export function logprobAt(logits: ArrayLike<number>, index: number, temperature = 1): number {
  const V = logits.length;
  let m = -Infinity;
  for (let i = 0; i < V; i++) {
    const z = logits[i] / temperature;
    if (z > m) m = z;
  }
  let S = 0;
  for (let i = 0; i < V; i++) S += Math.exp(logits[i] / temperature - m);
  return logits[index] / temperature - (m + Math.log(S));
}
