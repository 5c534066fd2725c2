// The interface every causal language model implements (GPT-2, Llama family, ...). Generation, scoring,
// and every trainer talk to models only through it.

import type { Tensor } from '../tensor/index.ts';

/** Normalised configuration, whatever the family's config.json calls its fields. */
export interface ModelConfig {
  modelType: string; // 'gpt2' | 'llama' | 'mistral' | 'qwen2' | 'qwen3' | ...
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
}

/**
 * Per-layer key/value cache for incremental decoding. Keys/values are stored [B, Hkv, capacity, D];
 * `length` positions are filled (the same for every row: left padding keeps rows aligned).
 */
export interface KvCache {
  readonly batch: number;
  readonly capacity: number;
  readonly length: number;
  dispose(): void;
}

export interface ForwardOptions {
  /**
   * [B, past + T] 1 = real token, 0 = padding (left or right). Defaults to all ones.
   * With a cache, it covers the cached positions and the new ones.
   */
  attentionMask?: Tensor | null;
  /** [B, T] int32 positions; by default derived from attentionMask (cumulative sum - 1, as HF does). */
  positionIds?: Tensor | null;
  /** Appends this call's keys/values and attends over everything cached. */
  cache?: KvCache | null;
  /**
   * [B, T] int32 document ids of a packed row: a token attends only to earlier tokens of its own document
   * (pass positionIds that restart at 0 per document too). Not with a cache.
   */
  documentIds?: Tensor | null;
}

export interface CausalLM {
  readonly config: ModelConfig;
  /** ids [B, T] int32 -> final hidden states [B, T, hidden] (after the final norm). */
  forward(ids: Tensor, opts?: ForwardOptions): Tensor;
  /** The LM head weight [vocab, hidden] (the embedding when tied) for fused log-prob kernels. */
  lmHeadWeight(): Tensor;
  /** Optional LM head bias [vocab]. */
  lmHeadBias(): Tensor | null;
  /** A cache for `batch` rows of up to `capacity` positions. */
  createCache(batch: number, capacity: number): KvCache;
  /** Trainable parameters by Hugging Face name. */
  namedParameters(): Map<string, Tensor>;
  dispose(): void;
}
