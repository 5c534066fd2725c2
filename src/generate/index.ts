// Text generation and sequence scoring for any CausalLM (src/models/types.ts).
export { generate, rowSeed } from './generate.ts';
export type { FinishReason, GenerateOptions, GenerationResult } from './generate.ts';
export { completionLogprobs, maskValues, positionIdsFromMask, sequenceLogprobs, tokenLogprobs } from './logprobs.ts';
export type { SequenceLogprobOptions } from './logprobs.ts';
export {
  applyMinP, applyRepetitionPenalty, applyTemperature, applyTopK, applyTopP, argmaxIndex, logprobAt, processLogits,
  resolveSampling, sampleIndex,
} from './sampling.ts';
export type { ResolvedSampling, SamplingOptions } from './sampling.ts';
