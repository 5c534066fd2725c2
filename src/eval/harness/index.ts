// alignkit's port of EleutherAI's lm-evaluation-harness for multiple-choice benchmarks (MMLU, ARC, HellaSwag,
// TruthfulQA MC1/MC2, BBQ, and users' own files): the harness's prompts, tokenisation, log-likelihood scoring,
// metrics and results table. See docs/eval-harness.md.
export * from './data.ts';
export * from './text.ts';
export * from './python_random.ts';
export * from './metrics.ts';
export * from './tasks.ts';
export * from './prompts.ts';
export * from './loglikelihood.ts';
export * from './evaluate.ts';
export * from './table.ts';
