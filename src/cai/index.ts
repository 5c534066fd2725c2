// Constitutional AI: constitutions, critique → revision, AI feedback, the constitutional reward and filter, debate.
export * from './constitution.ts';
export * from './chat.ts';
export { caiRevise, runRevision, sftRows, revisionPairs, resolveSampling as caiSampling } from './revise.ts';
export type { CaiReviseOptions, CaiReviseResult, CaiSamplingOptions, RevisionRound, RevisionRun, RevisionTrace } from './revise.ts';
export { caiLabel, labelPairs, preferenceRow } from './label.ts';
export type { CaiLabelOptions, CaiLabelResult, LabelItem, LabelledPair, LabelOutcome, LabelRun } from './label.ts';
export * from './reward.ts';
export * from './filter.ts';
export * from './debate.ts';
export { readRows, writeJsonl } from './io.ts';
