// Perplexity of a causal LM on texts longer than its context, by the sliding-window method of Hugging Face's
// "Perplexity of fixed-length models" guide: windows of up to `maxLength` tokens start every `stride` tokens; in
// each window only the tokens not scored by an earlier window are targets, so with stride < maxLength every token
// after a text's first is scored exactly once, with as much left context as its window gives (at least
// maxLength - stride tokens once the first window is past). stride = maxLength is the fast, disjoint-chunk variant:
// there the first token of each window has no context inside it and is not scored (as in the guide); smaller
// strides give each token more context and a lower, more honest perplexity.
//
// The number reported is exp(sum of token NLLs / number of scored tokens), summed over all texts (each text is
// windowed on its own; its first token has no prefix and is not scored). The guide's code instead weights each
// window's mean loss by (targets - 1), which slightly under-counts windows after the first; this module uses the
// exact count (fixtures/harness/perplexity.json holds both, computed with torch).
import type { PretrainedLM } from '../models/index.ts';
import { intTensor, linearLogprob, narrow, noGrad, tidy } from '../tensor/index.ts';
import type { Tokenizer } from '../tokenizer/index.ts';

export interface PerplexityOptions {
  /** Window length in tokens (default: the model's max_position_embeddings). */
  maxLength?: number;
  /** Tokens between window starts (default: maxLength, i.e. disjoint windows). */
  stride?: number;
  /** Encodes string texts (required when texts are strings). */
  tokenizer?: Tokenizer;
  /** Add the tokenizer's special tokens (BOS...) to each text (default true, like tokenizer(text)). */
  addSpecialTokens?: boolean;
}

export interface TextPerplexity {
  /** Tokens in the text. */
  tokens: number;
  /** Tokens scored (tokens - 1 when stride < maxLength; one fewer per extra window with disjoint windows). */
  scored: number;
  /** Sum of -log p over the scored tokens (nats). */
  nll: number;
  perplexity: number;
}

export interface PerplexityResult {
  /** exp(total NLL / total scored tokens). */
  perplexity: number;
  /** Mean NLL per scored token (nats). */
  meanNll: number;
  scored: number;
  windows: number;
  perText: TextPerplexity[];
}

/** The windows of an n-token text: [begin, end) and how many trailing tokens of each are targets. */
export function slidingWindows(n: number, maxLength: number, stride: number): { begin: number; end: number; targets: number }[] {
  if (!Number.isSafeInteger(maxLength) || maxLength < 2) throw new RangeError(`perplexity: maxLength must be an integer >= 2, got ${maxLength}`);
  if (!Number.isSafeInteger(stride) || stride < 1 || stride > maxLength) throw new RangeError(`perplexity: stride must be an integer in [1, maxLength ${maxLength}], got ${stride}`);
  const out: { begin: number; end: number; targets: number }[] = [];
  let prevEnd = 0;
  for (let begin = 0; begin < n; begin += stride) {
    const end = Math.min(begin + maxLength, n);
    // The first window's first token has no prefix; later windows always keep >= 1 token of context.
    const targets = Math.min(end - prevEnd, end - begin - 1);
    if (targets > 0) out.push({ begin, end, targets });
    prevEnd = end;
    if (end === n) break;
  }
  return out;
}

/** Sliding-window perplexity of `model` on texts (strings with opts.tokenizer, or token-id lists). */
export function perplexity(model: PretrainedLM, texts: readonly (string | readonly number[])[], opts: PerplexityOptions = {}): PerplexityResult {
  const maxLength = opts.maxLength ?? model.config.maxPositions;
  const stride = opts.stride ?? maxLength;
  let totalNll = 0;
  let totalScored = 0;
  let windows = 0;
  const perText: TextPerplexity[] = [];
  for (const t of texts) {
    let ids: readonly number[];
    if (typeof t === 'string') {
      if (!opts.tokenizer) throw new TypeError('perplexity: string texts need opts.tokenizer');
      ids = opts.tokenizer.encode(t, { addSpecialTokens: opts.addSpecialTokens ?? true });
    } else ids = t;
    let nll = 0;
    let scored = 0;
    for (const w of slidingWindows(ids.length, maxLength, stride)) {
      nll += windowNll(model, ids.slice(w.begin, w.end), w.targets);
      scored += w.targets;
      windows++;
    }
    perText.push({ tokens: ids.length, scored, nll, perplexity: scored > 0 ? Math.exp(nll / scored) : NaN });
    totalNll += nll;
    totalScored += scored;
  }
  return { perplexity: Math.exp(totalNll / totalScored), meanNll: totalNll / totalScored, scored: totalScored, windows, perText };
}

/** -sum log p of the last `targets` tokens of one window, each given everything before it in the window. */
function windowNll(model: PretrainedLM, ids: readonly number[], targets: number): number {
  const L = ids.length;
  return noGrad(() =>
    tidy(() => {
      const hidden = model.forward(intTensor(ids, [1, L])); // [1, L, H]
      const h = narrow(hidden, 1, L - 1 - targets, targets); // positions predicting the last `targets` tokens
      const lp = linearLogprob(h, model.lmHeadWeight(), intTensor(ids.slice(L - targets), [1, targets]), { bias: model.lmHeadBias() });
      const d = lp.data as ArrayLike<number>;
      let s = 0;
      for (let i = 0; i < d.length; i++) s -= d[i];
      return s;
    }),
  );
}
