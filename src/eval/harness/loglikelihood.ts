// log p(continuation | context) for multiple-choice requests, tokenised and truncated the way the harness's HFLM
// does it, computed through alignkit's models with the shared context run once per question.
//
// Tokenisation (lm_eval TemplateLM._encode_pair): trailing whitespace of the context moves to the front of the
// continuation; then whole = encode(context + continuation), ctx = encode(context), and the continuation tokens
// are whole[len(ctx):] — counted, not matched, so a merge across the boundary is handled as the harness handles it.
// The model reads ctx + continuation tokens. An empty context is replaced by the prefix token (BOS, else EOS).
// Special tokens: as lm_eval 0.4.13 with add_bos_token unset, the tokenizer's own default (its post-processor),
// except that a string that already starts with the BOS text is encoded without them.
// Truncation: a request longer than max_length + 1 tokens keeps its last max_length + 1 tokens (the harness's
// (ctx + cont)[-(max_length + 1):][:-1] input).
//
// Prefix caching: the context is run once with a KV cache; its last hidden state scores every continuation's
// first token; continuations longer than one token then run as one right-padded batch on copies of the cached
// context keys/values (causal attention never lets a real token see the padding after it). Requests that need
// truncation are scored on their own, without sharing. `prefixCache: false` scores every (context +
// continuation) as its own row of one batch — the plain method, kept for measuring and cross-checking.
import type { PretrainedLM } from '../../models/index.ts';
import type { LayeredKvCache } from '../../nn/kv_cache.ts';
import { pyRstrip } from './text.ts';
import { intTensor, linearLogprob, narrow, noGrad, reshape, tensor, tidy, type Tensor } from '../../tensor/index.ts';
import type { Tokenizer } from '../../tokenizer/index.ts';

export interface EncodeOptions {
  /** true / false, or 'auto' (default): the tokenizer's default unless the text starts with the BOS token. */
  addSpecialTokens?: boolean | 'auto';
}

export interface EncodedRequest {
  contextIds: number[];
  /** One token list per continuation. */
  continuationIds: number[][];
}

function encodeText(tok: Tokenizer, text: string, opts: EncodeOptions): number[] {
  const mode = opts.addSpecialTokens ?? 'auto';
  if (mode !== 'auto') return tok.encode(text, { addSpecialTokens: mode });
  const startsWithBos = tok.bosToken !== null && tok.bosToken !== '' && text.startsWith(tok.bosToken);
  return tok.encode(text, { addSpecialTokens: !startsWithBos });
}

/** The harness's token ids for one (context, continuation) pair. */
export function encodePair(tok: Tokenizer, context: string, continuation: string, opts: EncodeOptions = {}): { contextIds: number[]; continuationIds: number[] } {
  if (context === '') {
    const prefix = tok.bosId ?? tok.eosId;
    if (prefix === null) throw new Error('encodePair: empty context and the tokenizer has neither a BOS nor an EOS token to stand for it');
    const cont = tok.encode(continuation, { addSpecialTokens: false });
    return cont[0] === prefix ? { contextIds: cont.slice(0, 1), continuationIds: cont.slice(1) } : { contextIds: [prefix], continuationIds: cont };
  }
  const trimmed = pyRstrip(context);
  const moved = context.slice(trimmed.length);
  const ctx = trimmed;
  const cont = moved + continuation;
  const whole = encodeText(tok, ctx + cont, opts);
  const contextIds = encodeText(tok, ctx, opts);
  return { contextIds, continuationIds: whole.slice(contextIds.length) };
}

/**
 * Encodes a context with its continuations. The trailing-space rule depends only on the context, so every
 * continuation shares the same context ids.
 */
export function encodeRequest(tok: Tokenizer, context: string, continuations: readonly string[], opts: EncodeOptions = {}): EncodedRequest {
  let contextIds: number[] | null = null;
  const continuationIds = continuations.map((c) => {
    const e = encodePair(tok, context, c, opts);
    contextIds ??= e.contextIds;
    return e.continuationIds;
  });
  return { contextIds: contextIds ?? encodePair(tok, context, '', opts).contextIds, continuationIds };
}

export interface ScoreOptions {
  /** Longest input the model reads (default: the model's max_position_embeddings). */
  maxLength?: number;
  /** Run the shared context once (default true). */
  prefixCache?: boolean;
}

/** Sum of log p(continuation token | everything before) for each continuation of one request. */
export function scoreRequest(model: PretrainedLM, enc: EncodedRequest, opts: ScoreOptions = {}): number[] {
  const maxLength = opts.maxLength ?? model.config.maxPositions;
  const ctx = enc.contextIds;
  const out = new Array<number>(enc.continuationIds.length).fill(0);
  const shared: number[] = [];
  const alone: number[] = [];
  enc.continuationIds.forEach((c, i) => {
    if (c.length === 0) return; // nothing to score: log p = 0
    if (opts.prefixCache === false || ctx.length + c.length > maxLength + 1) alone.push(i);
    else shared.push(i);
  });
  if (shared.length) {
    const lls = scoreSharedContext(model, ctx, shared.map((i) => enc.continuationIds[i]));
    shared.forEach((i, j) => (out[i] = lls[j]));
  }
  if (alone.length) {
    const lls = scoreFullRows(
      model,
      alone.map((i) => enc.continuationIds[i]),
      alone.map((i) => ctx),
      maxLength,
    );
    alone.forEach((i, j) => (out[i] = lls[j]));
  }
  return out;
}

/** Row sums of a [B, T] log-prob tensor (ignored targets are 0). */
function rowSums(lp: Tensor): number[] {
  const [B, T] = lp.shape;
  const d = lp.data as ArrayLike<number>;
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let t = 0; t < T; t++) s += d[b * T + t];
    out.push(s);
  }
  return out;
}

function headLogprob(model: PretrainedLM, hidden: Tensor, targets: Tensor): Tensor {
  return linearLogprob(hidden, model.lmHeadWeight(), targets, { bias: model.lmHeadBias() });
}

/** The context once through a KV cache, then all continuations as one batch on copies of its keys/values. */
function scoreSharedContext(model: PretrainedLM, ctx: readonly number[], conts: readonly (readonly number[])[]): number[] {
  const C = ctx.length;
  const K = conts.length;
  const H = model.config.hiddenSize;
  return noGrad(() =>
    tidy(() => {
      const cache1 = model.createCache(1, C);
      let cacheK: LayeredKvCache | null = null;
      try {
        const hidden = model.forward(intTensor(ctx, [1, C]), { cache: cache1 }); // [1, C, H]
        const last = narrow(hidden, 1, C - 1, 1).data as Float32Array; // [H]
        const rep = new Float32Array(K * H);
        for (let k = 0; k < K; k++) rep.set(last, k * H);
        const first = headLogprob(model, tensor(rep, [K, H]), intTensor(conts.map((c) => c[0]), [K])).toArray();
        const sums = first.slice();
        const longer = conts.map((c, i) => i).filter((i) => conts[i].length > 1);
        if (longer.length) {
          const B = longer.length;
          const L = Math.max(...longer.map((i) => conts[i].length)) - 1; // inputs: tokens 0 .. len-2
          const ids = new Int32Array(B * L);
          const tg = new Int32Array(B * L).fill(-1);
          longer.forEach((i, b) => {
            const c = conts[i];
            for (let t = 0; t < c.length - 1; t++) {
              ids[b * L + t] = c[t];
              tg[b * L + t] = c[t + 1];
            }
          });
          cacheK = model.createCache(B, C + L);
          copyContextKv(cache1, cacheK, C, model.config.numLayers);
          const h = model.forward(intTensor(ids, [B, L]), { cache: cacheK }); // [B, L, H]
          const rest = rowSums(headLogprob(model, h, intTensor(tg, [B, L])));
          longer.forEach((i, b) => (sums[i] += rest[b]));
        }
        return sums;
      } finally {
        cache1.dispose();
        cacheK?.dispose();
      }
    }),
  );
}

/** Copies the C cached context positions of a batch-1 cache into every row of a batch-B cache. */
function copyContextKv(src: LayeredKvCache, dst: LayeredKvCache, C: number, layers: number): void {
  const B = dst.batch;
  for (let l = 0; l < layers; l++) {
    const { k, v } = src.read(l, C); // [1, Hkv, C, D]
    const [, Hkv, , D] = k.shape;
    const rows = (t: Tensor): Tensor => {
      const one = t.data as Float32Array | Float64Array;
      const all = new Float32Array(B * one.length);
      for (let b = 0; b < B; b++) all.set(one, b * one.length);
      return tensor(all, [B, Hkv, C, D]);
    };
    dst.write(l, rows(k), rows(v));
  }
  dst.advance(C);
}

/**
 * The plain method: each (context + continuation), truncated to its last maxLength + 1 tokens minus the final
 * one, as a row of one right-padded batch; the continuation's log-probs are read at its last positions.
 */
function scoreFullRows(model: PretrainedLM, conts: readonly (readonly number[])[], ctxs: readonly (readonly number[])[], maxLength: number): number[] {
  const rows = conts.map((c, i) => {
    const all = [...ctxs[i], ...c].slice(-(maxLength + 1));
    return { input: all.slice(0, -1), targets: all.slice(1), contLen: Math.min(c.length, all.length - 1) };
  });
  const B = rows.length;
  const T = Math.max(...rows.map((r) => r.input.length));
  const ids = new Int32Array(B * T);
  const tg = new Int32Array(B * T).fill(-1);
  rows.forEach((r, b) => {
    ids.set(r.input, b * T);
    const n = r.input.length;
    for (let t = n - r.contLen; t < n; t++) tg[b * T + t] = r.targets[t];
  });
  return noGrad(() =>
    tidy(() => {
      const hidden = model.forward(intTensor(ids, [B, T])); // right padding needs no mask: causal attention
      return rowSums(headLogprob(model, reshape(hidden, [B, T, model.config.hiddenSize]), intTensor(tg, [B, T])));
    }),
  );
}
