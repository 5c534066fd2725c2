// Shared transformer building blocks (attention with GQA + rope + KV cache, MLPs, parameter declarations).
export * from './attention.ts';
export * from './fused.ts';
export * from './kv_cache.ts';
export * from './lora.ts';
export * from './mlp.ts';
export * from './params.ts';
export * from './positions.ts';
export * from './rope.ts';
