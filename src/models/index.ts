// Transformer language models from Hugging Face checkpoints: GPT-2 and the Llama family (llama, mistral, qwen2,
// qwen3), value and score heads, strict loading / bit-exact saving, random initialisation.
export type { CausalLM, ForwardOptions, KvCache, ModelConfig } from './types.ts';
export * from './config.ts';
export * from './base.ts';
export * from './heads.ts';
export * from './gpt2.ts';
export * from './llama.ts';
export * from './load.ts';
export * from './init.ts';
export * from './peft.ts';
export { LayeredKvCache } from '../nn/kv_cache.ts';
export * from './gguf_convert.ts';
