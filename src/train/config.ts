// Training configuration: zod schemas with the names and defaults of Hugging Face TrainingArguments and TRL's
// SFTConfig, so a config written for TRL reads the same here. Every field carries a `.describe()` text: those
// texts are the user documentation (`--help` and docs/training-config.md are generated from them).
//
// A configuration comes from a YAML or JSON file plus command-line overrides (`parseConfig`). Every schema is
// strict: an unknown key is an error, with the new name when the key was renamed upstream (max_seq_length →
// max_length), a reason when it is a TrainingArguments feature alignkit does not have (fp16, deepspeed), or
// the closest known key when it looks like a typo. All problems are collected into one ConfigError.
//
// Later trainers add their fields in one line, keeping every base field and check:
//   export const DpoConfigSchema = extendTrainingArguments({ beta: z.number().gt(0).default(0.1).describe('...') });
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parseDocument, isMap, isScalar, type Document } from 'yaml';
import { z } from 'zod';
import { AlignkitError } from '../tensor/errors.ts';
import { lrScheduleFromKwargs, warmupStepsFor, LR_SCHEDULER_TYPES, type LrScheduleConfig, type LrSchedulerType } from './schedule.ts';

/** An invalid configuration: `problems` lists every problem, one line each; the message joins them with '; '. */
export class ConfigError extends AlignkitError {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Field builders (each returns a fresh schema, so .describe() never touches a shared instance)

const posInt = () => z.number().int().gte(1);
const nonNegInt = () => z.number().int().gte(0);
const nonNeg = () => z.number().gte(0);
/** A probability-like fraction in [0, 1). */
const fraction = () => z.number().gte(0).lt(1);
const path = () => z.string().min(1);

const REPORT_TARGETS = ['tensorboard', 'none'] as const;
const reportTarget = z.enum(REPORT_TARGETS);

// ---------------------------------------------------------------------------------------------------------
// TrainingArguments

/** The fields of TrainingArguments (names and defaults of transformers / TRL; see docs/training-config.md). */
export const trainingArgumentsShape = {
  output_dir: path().describe('Folder for checkpoints, the final model, metrics.jsonl and TensorBoard logs (created if missing).'),
  run_name: z.string().nullable().default(null).describe('A name for the run, recorded in the logs; null = the name of output_dir.'),
  seed: nonNegInt().default(42).describe('Seed for model initialisation, dropout and every other random choice; the same seed gives the same run.'),
  data_seed: nonNegInt().nullable().default(null).describe('Seed for shuffling and splitting the data; null = use seed.'),

  learning_rate: z.number().gt(0).default(2e-5).describe('Peak learning rate (after warmup). TRL SFTConfig default 2e-5.'),
  num_train_epochs: z.number().gt(0).default(3).describe('Passes over the training set (may be fractional); ignored when max_steps > 0.'),
  max_steps: z.number().int().gte(-1).refine((n) => n !== 0, 'must be -1 (train for num_train_epochs) or a positive number of optimizer steps').default(-1)
    .describe('Total optimizer steps; -1 = derive from num_train_epochs. Overrides num_train_epochs when > 0.'),
  per_device_train_batch_size: posInt().default(8).describe('Sequences per micro-batch during training.'),
  per_device_eval_batch_size: posInt().default(8).describe('Sequences per batch during evaluation.'),
  gradient_accumulation_steps: posInt().default(1).describe('Micro-batches whose gradients are summed before each optimizer step; effective batch = per_device_train_batch_size × this.'),

  lr_scheduler_type: z.enum(LR_SCHEDULER_TYPES as [LrSchedulerType, ...LrSchedulerType[]]).default('linear')
    .describe("Learning-rate schedule: constant, constant_with_warmup, linear, cosine, cosine_with_restarts, polynomial (transformers' formulas), step (torch StepLR) or cyclic (torch CyclicLR 'triangular'), each after a linear warmup ('constant' has none)."),
  lr_scheduler_kwargs: z.record(z.string(), z.number()).default({})
    .describe('Extra schedule parameters, by scheduler: cosine num_cycles, min_lr_rate or min_lr; cosine_with_restarts num_cycles (restarts), min_lr_rate; polynomial power, lr_end; step step_size (required), gamma (0.1); cyclic step_size_up (required), base_lr or base_lr_ratio (0.1).'),
  warmup_ratio: z.number().gte(0).lte(1).default(0).describe('Warmup length as a fraction of the total optimizer steps (rounded up); used when warmup_steps is 0.'),
  warmup_steps: nonNegInt().default(0).describe('Warmup length in optimizer steps; overrides warmup_ratio when > 0.'),

  optim: z.enum(['adamw', 'sgd']).default('adamw').describe('Optimizer: adamw (decoupled weight decay, torch AdamW) or sgd (with optional momentum).'),
  weight_decay: nonNeg().default(0).describe('Weight decay (AdamW: decoupled from the gradient; SGD: added to it as L2).'),
  adam_beta1: fraction().default(0.9).describe('AdamW β1 (first-moment decay).'),
  adam_beta2: fraction().default(0.999).describe('AdamW β2 (second-moment decay).'),
  adam_epsilon: z.number().gt(0).default(1e-8).describe('AdamW ε added to the denominator.'),
  momentum: fraction().default(0).describe('SGD momentum (optim sgd only).'),
  max_grad_norm: nonNeg().default(1.0).describe('Clip the global gradient L2 norm to this value before each step; 0 = no clipping.'),
  dropout: fraction().nullable().default(null).describe("Dropout probability to use instead of the one in the model's config; null = keep the model's."),
  max_nan_steps: nonNegInt().default(10)
    .describe('A step whose loss or gradient is not finite is skipped (no update); training aborts after this many such steps in total. 0 = abort on the first.'),

  logging_steps: posInt().default(10).describe('Log training metrics (loss, learning rate, grad norm, tokens/s) every this many optimizer steps.'),
  logging_first_step: z.boolean().default(false).describe('Also log the first optimizer step.'),
  logging_dir: path().nullable().default(null).describe('Folder for TensorBoard event files; null = <output_dir>/runs.'),
  report_to: z.union([reportTarget, z.array(reportTarget).min(1)], { error: "must be 'tensorboard', 'none' or a list of those" })
    .transform((v) => (Array.isArray(v) ? v : [v]))
    .default(['tensorboard'])
    .describe("Where metrics go besides <output_dir>/metrics.jsonl (always written): 'tensorboard' (event files in logging_dir) or 'none'."),
  disable_tqdm: z.boolean().default(false).describe('Print plain log lines instead of the progress bar, even on a terminal.'),

  eval_strategy: z.enum(['no', 'steps', 'epoch']).default('no').describe("When to evaluate: 'no', every eval_steps optimizer steps ('steps'), or at the end of every epoch ('epoch')."),
  eval_steps: posInt().nullable().default(null).describe("Evaluate every this many optimizer steps with eval_strategy 'steps'; null = logging_steps."),
  eval_on_start: z.boolean().default(false).describe('Evaluate once before the first training step (a baseline).'),

  save_strategy: z.enum(['no', 'steps', 'epoch']).default('steps').describe("When to write a checkpoint: 'no', every save_steps optimizer steps ('steps'), or at the end of every epoch ('epoch')."),
  save_steps: posInt().default(500).describe("Checkpoint every this many optimizer steps with save_strategy 'steps'."),
  save_total_limit: posInt().nullable().default(null).describe('Keep at most this many checkpoints, deleting the oldest (the best one is kept too when load_best_model_at_end); null = keep all.'),
  save_only_model: z.boolean().default(false).describe('Checkpoints hold only the weights (no optimizer, scheduler or RNG state): smaller, but such a checkpoint cannot be resumed exactly.'),
  load_best_model_at_end: z.boolean().default(false)
    .describe('At the end, load the checkpoint with the best metric_for_best_model and save it as the final model. Needs save_strategy = eval_strategy (and save_steps a multiple of eval_steps).'),
  metric_for_best_model: z.string().min(1).default('eval_loss').describe("Evaluation metric that defines 'best' for load_best_model_at_end and early stopping ('eval_' is prefixed when missing)."),
  greater_is_better: z.boolean().nullable().default(null).describe("Whether a larger metric_for_best_model is better; null = true unless the metric name ends in 'loss'."),
  early_stopping_patience: posInt().nullable().default(null)
    .describe('Stop after this many evaluations without an improvement of metric_for_best_model; null = never stop early. Needs evaluation.'),
  early_stopping_threshold: nonNeg().default(0).describe('An evaluation improves only when it beats the best value by more than this.'),

  resume_from_checkpoint: z.union([z.null(), path(), z.literal(true)], { error: 'must be a checkpoint folder, true (the latest checkpoint in output_dir) or null' })
    .default(null)
    .describe('Continue a run from this checkpoint folder, or true for the latest checkpoint in output_dir; null = start fresh.'),
  overwrite_output_dir: z.boolean().default(false)
    .describe('Start afresh in an output_dir that already holds checkpoints (they are deleted); without it such a run is refused unless resuming.'),
  skip_invalid: z.boolean().default(false).describe('Skip (and count) malformed dataset records instead of stopping at the first one.'),
  eval_fraction: fraction().default(0).describe('When there is no eval file, hold out this fraction of the training records (chosen with data_seed) for evaluation; 0 = none.'),
  dataloader_drop_last: z.boolean().default(false).describe('Drop the last incomplete batch of every epoch.'),
} satisfies z.core.$ZodLooseShape;

type Ctx = z.RefinementCtx;

/** Adds a problem about `key` (a top-level field) from a cross-field check. */
export function configIssue(ctx: Ctx, key: string | (string | number)[], message: string): void {
  ctx.addIssue({ code: 'custom', path: Array.isArray(key) ? key : [key], message });
}

/** The evaluation interval in optimizer steps with eval_strategy 'steps' (eval_steps, else logging_steps). */
export function evalStepsOf(a: { eval_steps: number | null; logging_steps: number }): number {
  return a.eval_steps ?? a.logging_steps;
}

/** The full name of metric_for_best_model, with the 'eval_' prefix transformers adds when it is missing. */
export function bestMetricName(a: { metric_for_best_model: string }): string {
  return a.metric_for_best_model.startsWith('eval_') ? a.metric_for_best_model : `eval_${a.metric_for_best_model}`;
}

/** greater_is_better, or transformers' default for it: false for metrics whose name ends in 'loss'. */
export function greaterIsBetter(a: { greater_is_better: boolean | null; metric_for_best_model: string }): boolean {
  return a.greater_is_better ?? !a.metric_for_best_model.endsWith('loss');
}

type BaseArgs = z.output<z.ZodObject<typeof trainingArgumentsShape>>;

function checkTrainingArguments(a: BaseArgs, ctx: Ctx): void {
  const kw = lrScheduleFromKwargs(a.lr_scheduler_type, a.learning_rate, 1, 0, a.lr_scheduler_kwargs);
  for (const p of kw.problems) {
    const name = p.slice(0, p.indexOf(':'));
    configIssue(ctx, name in a.lr_scheduler_kwargs ? ['lr_scheduler_kwargs', name] : 'lr_scheduler_kwargs', name in a.lr_scheduler_kwargs ? p.slice(name.length + 2) : p);
  }
  if (a.report_to.includes('none') && a.report_to.length > 1) configIssue(ctx, 'report_to', "'none' cannot be combined with other targets");
  if (a.optim !== 'sgd' && a.momentum > 0) configIssue(ctx, 'momentum', `applies to optim 'sgd' only (optim is '${a.optim}')`);
  const evaluates = a.eval_strategy !== 'no';
  if (a.load_best_model_at_end) {
    if (!evaluates) configIssue(ctx, 'load_best_model_at_end', "needs evaluation: set eval_strategy to 'steps' or 'epoch'");
    else if (a.save_strategy !== a.eval_strategy)
      configIssue(ctx, 'load_best_model_at_end', `needs save_strategy equal to eval_strategy ('${a.save_strategy}' vs '${a.eval_strategy}') so that every evaluated step has a checkpoint`);
    else if (a.eval_strategy === 'steps' && a.save_steps % evalStepsOf(a) !== 0)
      configIssue(ctx, 'save_steps', `must be a multiple of eval_steps (${evalStepsOf(a)}) with load_best_model_at_end, got ${a.save_steps}`);
  }
  if (a.early_stopping_patience !== null && !evaluates) configIssue(ctx, 'early_stopping_patience', "needs evaluation: set eval_strategy to 'steps' or 'epoch'");
}

/**
 * HF/TRL TrainingArguments (the fields every trainer shares). Strict: unknown keys are errors. The cross-field
 * checks (checkTrainingArguments) run once every field is valid on its own, so they are reported in a second
 * round after the field problems are fixed.
 */
export const TrainingArgumentsSchema = z.strictObject(trainingArgumentsShape).superRefine(checkTrainingArguments);

export type TrainingArguments = z.output<typeof TrainingArgumentsSchema>;

/**
 * The base schema plus a trainer's own fields, in one line; strict, with every base cross-field check.
 * Add the trainer's own cross-field checks with `.superRefine((cfg, ctx) => configIssue(ctx, key, msg))`.
 */
export function extendTrainingArguments<U extends z.core.$ZodLooseShape>(shape: U) {
  return TrainingArgumentsSchema.extend(shape);
}

/** The learning-rate schedule of a run of `totalSteps` optimizer steps (warmup from warmup_steps / warmup_ratio). */
export function lrScheduleFor(a: Pick<TrainingArguments, 'lr_scheduler_type' | 'learning_rate' | 'lr_scheduler_kwargs' | 'warmup_ratio' | 'warmup_steps'>, totalSteps: number): LrScheduleConfig {
  const warmup = warmupStepsFor(totalSteps, a.warmup_ratio, a.warmup_steps);
  const r = lrScheduleFromKwargs(a.lr_scheduler_type, a.learning_rate, totalSteps, warmup, a.lr_scheduler_kwargs);
  if (r.schedule === null) throw new ConfigError(r.problems.map((p) => `key 'lr_scheduler_kwargs': ${p}`));
  return r.schedule;
}

// ---------------------------------------------------------------------------------------------------------
// SFT

export const sftConfigShape = {
  model_name_or_path: path().describe('The model to fine-tune: a local Hugging Face folder (config.json, safetensors, tokenizer).'),
  dataset_path: path().nullable().default(null)
    .describe("Training data: a .jsonl / .json / .parquet file or a folder of them. Records are conversational ('messages'), prompt-completion ('prompt'/'completion') or plain text (dataset_text_field). Give this or train_file."),
  train_file: path().nullable().default(null).describe('Another name for dataset_path (give one of the two).'),
  eval_file: path().nullable().default(null).describe('Evaluation data, in the same formats as the training data; null = none (see eval_fraction).'),
  max_length: posInt().default(1024).describe('Longest tokenized sequence (or packed row) in tokens; see truncation for longer records.'),
  truncation: z.enum(['error', 'right', 'left']).default('error')
    .describe("What to do with a record longer than max_length: 'error' (stop, naming the record), 'right' (drop the end) or 'left' (drop the start)."),
  packing: z.boolean().default(false).describe('Concatenate records into rows of max_length tokens (attention stays within each record).'),
  completion_only_loss: z.boolean().nullable().default(true)
    .describe('For prompt-completion records, train only on the completion tokens; null = as TRL: true for prompt-completion data.'),
  assistant_only_loss: z.boolean().default(true).describe("For conversational records, train only on the assistant turns (the chat template's generation mask)."),
  padding_side: z.enum(['right', 'left']).default('right').describe('Side on which batches are padded.'),
  chat_template_path: path().nullable().default(null).describe("A Jinja chat template file to use instead of the tokenizer's; null = the tokenizer's."),
  dataset_text_field: z.string().min(1).default('text').describe('Field holding the text of plain-text records.'),

  use_lora: z.boolean().default(false).describe('Train low-rank adapters (LoRA) instead of the full weights.'),
  merge_lora: z.boolean().default(false).describe('With use_lora: also write the base model with the adapters merged in, to output_dir/merged (a plain Hugging Face folder).'),
  lora_r: posInt().default(8).describe('LoRA rank: the inner dimension of each adapter.'),
  lora_alpha: z.number().gt(0).default(16).describe('LoRA scaling numerator: the update is scaled by lora_alpha / lora_r.'),
  lora_dropout: fraction().default(0.05).describe('Dropout on the LoRA input.'),
  lora_target_modules: z.union([z.literal('all-linear'), z.array(z.string().min(1)).min(1)], { error: "must be a list of module names or 'all-linear'" })
    .default(['q_proj', 'k_proj', 'v_proj', 'o_proj'])
    .describe("Linear layers that get adapters, by name (e.g. q_proj, v_proj), or 'all-linear' for every linear layer but the LM head."),
  trainable_modules: z.array(z.string().min(1)).min(1).nullable().default(null)
    .describe('Train only the parameters whose names match one of these patterns; everything else is frozen. null = train everything (or only the adapters with use_lora).'),

  rehearsal_file: path().nullable().default(null).describe('General-purpose data mixed into training to limit forgetting (same formats as the training data).'),
  rehearsal_ratio: fraction().default(0).describe('Fraction of each batch drawn from rehearsal_file.'),
  l2_init_coef: nonNeg().default(0).describe('Coefficient of an L2 penalty pulling the weights toward their initial values (0 = off).'),
  ewc_coef: nonNeg().default(0).describe('Coefficient of the elastic weight consolidation penalty (0 = off).'),
  ewc_fisher_samples: posInt().default(32).describe('Training records used to estimate the diagonal Fisher information for EWC.'),
} satisfies z.core.$ZodLooseShape;

type SftArgs = BaseArgs & z.output<z.ZodObject<typeof sftConfigShape>>;

function checkSftConfig(c: SftArgs, ctx: Ctx): void {
  if (c.dataset_path === null && c.train_file === null) configIssue(ctx, 'dataset_path', 'required (or train_file): the training data');
  if (c.dataset_path !== null && c.train_file !== null) configIssue(ctx, 'train_file', 'give dataset_path or train_file, not both');
  if (c.eval_file !== null && c.eval_fraction > 0) configIssue(ctx, 'eval_fraction', 'give eval_file or eval_fraction, not both');
  if (c.eval_strategy !== 'no' && c.eval_file === null && c.eval_fraction === 0)
    configIssue(ctx, 'eval_strategy', `'${c.eval_strategy}' needs evaluation data: set eval_file or eval_fraction`);
  if (c.rehearsal_ratio > 0 && c.rehearsal_file === null) configIssue(ctx, 'rehearsal_ratio', 'needs rehearsal_file');
  if (c.rehearsal_file !== null && c.rehearsal_ratio === 0) configIssue(ctx, 'rehearsal_file', 'is set but rehearsal_ratio is 0');
}

/** TRL SFTConfig: TrainingArguments plus the supervised fine-tuning fields. */
export const SftConfigSchema = TrainingArgumentsSchema.extend(sftConfigShape).superRefine(checkSftConfig);

export type SftConfig = z.output<typeof SftConfigSchema>;

/** The training data path of an SFT config (dataset_path or its synonym train_file). */
export function trainDataPath(c: Pick<SftConfig, 'dataset_path' | 'train_file'>): string {
  const p = c.dataset_path ?? c.train_file;
  if (p === null) throw new ConfigError([`key 'dataset_path': required (or train_file): the training data`]);
  return p;
}

// ---------------------------------------------------------------------------------------------------------
// Preference trainers (reward model, DPO and family, KTO, ORPO, SimPO): the policy and data fields of SFT that
// apply to them, plus each method's own (TRL's names and defaults).

const pick = <K extends keyof typeof sftConfigShape>(...keys: K[]): Pick<typeof sftConfigShape, K> =>
  Object.fromEntries(keys.map((k) => [k, sftConfigShape[k]])) as Pick<typeof sftConfigShape, K>;

const preferencePolicyShape = {
  ...pick('model_name_or_path', 'dataset_path', 'train_file', 'eval_file', 'chat_template_path', 'use_lora', 'merge_lora', 'lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'trainable_modules'),
  max_length: posInt().default(1024).describe('Longest prompt + completion in tokens (the prompt is truncated first, then the completion; see truncation_mode).'),
  max_prompt_length: posInt().nullable().default(512).describe('Longest prompt in tokens; null = only max_length applies.'),
  truncation_mode: z.enum(['error', 'keep_end', 'keep_start']).default('error')
    .describe("A pair longer than the limits: 'error' (stop, naming the record), 'keep_end' (drop the start of the prompt, as TRL) or 'keep_start'."),
};

type PreferenceArgs = BaseArgs & z.output<z.ZodObject<typeof preferencePolicyShape>>;

function checkPreferenceData(c: PreferenceArgs, ctx: Ctx): void {
  if (c.max_prompt_length !== null && c.max_prompt_length >= c.max_length)
    configIssue(ctx, 'max_prompt_length', `${c.max_prompt_length} leaves no room for the completion within max_length ${c.max_length}: lower it, or set null`);
  if (c.dataset_path === null && c.train_file === null) configIssue(ctx, 'dataset_path', 'required (or train_file): the training data');
  if (c.dataset_path !== null && c.train_file !== null) configIssue(ctx, 'train_file', 'give dataset_path or train_file, not both');
  if (c.eval_file !== null && c.eval_fraction > 0) configIssue(ctx, 'eval_fraction', 'give eval_file or eval_fraction, not both');
  if (c.eval_strategy !== 'no' && c.eval_file === null && c.eval_fraction === 0)
    configIssue(ctx, 'eval_strategy', `'${c.eval_strategy}' needs evaluation data: set eval_file or eval_fraction`);
}

const referenceShape = {
  ref_model: path().nullable().default(null)
    .describe('The reference policy: a model folder; null = the initial policy (with LoRA: the base model with the adapters switched off, no second copy).'),
  precompute_ref_log_probs: z.boolean().default(true)
    .describe("Compute the reference log-probs of every pair once, before training, in a no-grad pass (cached in output_dir/ref_logps.safetensors); each step then runs only the policy. false = a reference forward every step."),
};

/** TRL RewardConfig. */
export const RewardConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...preferencePolicyShape,
  learning_rate: z.number().gt(0).default(1e-5).describe('Peak learning rate (after warmup).'),
  center_rewards_coefficient: nonNeg().nullable().default(null)
    .describe('Weight of the centering regulariser mean((r_chosen + r_rejected)²), which keeps rewards near zero (Eisenstein et al. 2023); null = off.'),
}).superRefine(checkPreferenceData);
export type RewardConfig = z.output<typeof RewardConfigSchema>;

/** TRL DPOConfig. */
export const DpoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...preferencePolicyShape,
  ...referenceShape,
  learning_rate: z.number().gt(0).default(1e-6).describe('Peak learning rate (after warmup). TRL DPOConfig default 1e-6.'),
  beta: z.number().gt(0).default(0.1).describe('β: strength of the KL leash to the reference (higher = stay closer). For ipo, the regularisation τ.'),
  loss_type: z.enum(['sigmoid', 'ipo', 'hinge', 'robust']).default('sigmoid')
    .describe('sigmoid (DPO, Rafailov et al. 2023), ipo (Azar et al. 2023), hinge (SLiC), robust (Chowdhury et al. 2024, noisy labels).'),
  label_smoothing: z.number().gte(0).lt(0.5).default(0).describe('Probability that a preference label is flipped: conservative DPO (cDPO) for sigmoid, the noise rate for robust.'),
  reference_free: z.boolean().default(false).describe('Ignore the reference (a uniform reference policy): the loss uses policy log-probs only.'),
  kl_eval_samples: z.number().int().gte(0).default(16)
    .describe('At each evaluation, sample one completion (temperature 1) for this many eval prompts and log the sampled KL(π‖π_ref) as objective/kl (alignkit; 0 disables).'),
  kl_eval_max_new_tokens: z.number().int().gt(0).default(32).describe('Tokens sampled per prompt for objective/kl at most (alignkit).'),
}).superRefine(checkPreferenceData);
export type DpoConfig = z.output<typeof DpoConfigSchema>;

/** TRL KTOConfig. */
export const KtoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...preferencePolicyShape,
  ...referenceShape,
  learning_rate: z.number().gt(0).default(1e-6).describe('Peak learning rate (after warmup).'),
  beta: z.number().gt(0).default(0.1).describe('β of KTO\'s value function.'),
  desirable_weight: z.number().gt(0).default(1).describe('λ_D: weight of the desirable (label true) examples\' losses.'),
  undesirable_weight: z.number().gt(0).default(1).describe('λ_U: weight of the undesirable (label false) examples\' losses.'),
}).superRefine(checkPreferenceData);
export type KtoConfig = z.output<typeof KtoConfigSchema>;

/** TRL ORPOConfig. */
export const OrpoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...preferencePolicyShape,
  learning_rate: z.number().gt(0).default(1e-6).describe('Peak learning rate (after warmup).'),
  beta: z.number().gt(0).default(0.1).describe('λ of ORPO: weight of the odds-ratio term added to the SFT loss on the chosen response.'),
}).superRefine(checkPreferenceData);
export type OrpoConfig = z.output<typeof OrpoConfigSchema>;

/** TRL CPOConfig with loss_type "simpo". */
export const SimpoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...preferencePolicyShape,
  learning_rate: z.number().gt(0).default(1e-6).describe('Peak learning rate (after warmup).'),
  beta: z.number().gt(0).default(2).describe('β of SimPO: scale of the length-normalised reward (the SimPO paper uses 2.0–2.5).'),
  simpo_gamma: z.number().gte(0).default(1).describe('γ: the target reward margin (TRL\'s simpo_gamma; the SimPO paper uses γ/β = 0.5, i.e. γ = 1 with β = 2).'),
  label_smoothing: z.number().gte(0).lt(0.5).default(0).describe('Label smoothing of the sigmoid loss.'),
}).superRefine(checkPreferenceData);
export type SimpoConfig = z.output<typeof SimpoConfigSchema>;

/** The fields every preference config shares. */
export type PreferenceConfig = RewardConfig | DpoConfig | KtoConfig | OrpoConfig | SimpoConfig;

// ---------------------------------------------------------------------------------------------------------
// Online RL trainers (PPO, GRPO, RLOO; src/trainers/rl/): the policy fields of SFT, a prompt dataset, the reward
// sources, the rollout's sampling settings and the stability guards, plus each method's own fields (TRL's names
// and defaults where TRL has the field).

const REWARD_SPEC = /^(module:.+|rm:.+|http:.+|https?:\/\/.+|constitution:.+)$/;

/** The fields every online RL config shares (docs/rl.md's shared table is generated from it). */
export const onPolicyShape = {
  ...pick('model_name_or_path', 'dataset_path', 'train_file', 'chat_template_path', 'use_lora', 'merge_lora', 'lora_r', 'lora_alpha', 'lora_dropout', 'lora_target_modules', 'trainable_modules'),
  dataset_path: path().nullable().default(null)
    .describe("The prompts: a .jsonl / .json / .parquet file whose rows hold a prompt string (or a message list, rendered with the chat template and an assistant header), or a .txt file with one prompt per line. Give this or train_file."),
  prompt_field: z.string().min(1).default('prompt').describe('Field of each row that holds the prompt (a string, or a list of chat messages).'),
  eval_file: path().nullable().default(null)
    .describe("Held-out prompts (same formats as dataset_path) for evaluation during training (eval_strategy): one response each, sampled with fixed seeds, logged as eval_reward, eval_reward_std, eval_kl (when there is a reference), eval_completions/mean_length; null = none (see eval_fraction)."),
  ref_model: path().nullable().default(null)
    .describe('The reference policy for the KL penalty: a model folder; null = the initial policy (with LoRA: the base model with the adapters switched off, no second copy).'),
  reward_funcs: z.array(z.string().regex(REWARD_SPEC, "must be 'module:FILE', 'rm:DIR', 'http:URL' or 'constitution:JUDGE[@FILE.yaml]'")).default([])
    .describe("Reward sources, each 'module:FILE' (a TypeScript/JavaScript module exporting score(prompt, response) => number, or a default export), 'rm:DIR' (a reward model folder from alignkit reward), 'http:URL' (POST {prompt, response} -> {reward}) or 'constitution:JUDGE[@FILE.yaml]' (a judge model folder or chat endpoint rates adherence to a constitution, default the shipped one; docs/cai.md). Several are summed with reward_weights."),
  reward_model_path: path().nullable().default(null).describe("A reward model folder (TRL's name); the same as adding 'rm:DIR' to reward_funcs."),
  reward_weights: z.array(z.number()).min(1).nullable().default(null)
    .describe('Weight of each reward source (reward_model_path first, then reward_funcs in order); null = every weight 1.'),
  reward_timeout_s: z.number().gt(0).default(30).describe('HTTP rewards: seconds to wait for one answer before the attempt counts as failed.'),
  reward_retries: nonNegInt().default(3)
    .describe('HTTP rewards: retries of a failed request (connection refused, timeout, HTTP 5xx), with exponential backoff from 0.5 s; then the run stops with an error.'),
  temperature: z.number().gt(0).default(0.7).describe('Sampling temperature of the rollouts; the log-probs of policy and reference use the same temperature (TRL).'),
  top_k: nonNegInt().default(0).describe('Sample only from the k most likely tokens; 0 = off.'),
  top_p: z.number().gt(0).lte(1).default(1).describe('Nucleus sampling: the smallest set of tokens whose probability reaches top_p; 1 = off.'),
  missing_eos_penalty: nonNeg().nullable().default(null)
    .describe('Subtracted from the score of a response that reached the length limit without EOS (a truncated response); null = no penalty.'),
  total_episodes: posInt().nullable().default(null)
    .describe('Sampled responses (episodes) in the whole run; null = num_train_epochs × prompts × samples per prompt. max_steps > 0 overrides it.'),
  local_rollout_forward_batch_size: posInt().default(64).describe('Rows per batch when sampling and when scoring the rollout with the policy and the reference (no gradients).'),
  num_sample_generations: nonNegInt().default(10)
    .describe('How many times during the run a few sampled prompt/response pairs are written to output_dir/samples.jsonl (and TensorBoard text); 0 = never.'),
  kl_blowup_threshold: z.number().gt(0).nullable().default(null)
    .describe('Stability guard: when objective/kl (mean summed KL of a rollout, nats) exceeds this, do kl_blowup_action; null = no guard.'),
  kl_blowup_action: z.enum(['abort', 'raise_kl_coef']).default('abort')
    .describe("What the KL guard does: 'abort' (stop with an error naming the iteration) or 'raise_kl_coef' (double the KL coefficient and warn)."),
  logging_steps: posInt().default(1).describe('Log metrics every this many optimizer steps (each step is one minibatch of a rollout).'),
  metric_for_best_model: z.string().min(1).default('eval_reward')
    .describe("Evaluation metric that defines 'best' for load_best_model_at_end and early stopping ('eval_' is prefixed when missing): eval_reward (the held-out mean reward), eval_kl, ..."),
  learning_rate: z.number().gt(0).default(3e-6).describe('Peak learning rate (after warmup). TRL PPOConfig / RLOOConfig default 3e-6.'),
};

type OnPolicyArgs = BaseArgs & z.output<z.ZodObject<typeof onPolicyShape>>;

function checkOnPolicy(c: OnPolicyArgs, ctx: Ctx, samplesPerPrompt: { key: string; value: number }, rowsPerIteration: number): void {
  if (c.dataset_path === null && c.train_file === null) configIssue(ctx, 'dataset_path', 'required (or train_file): the prompts');
  if (c.dataset_path !== null && c.train_file !== null) configIssue(ctx, 'train_file', 'give dataset_path or train_file, not both');
  const sources = c.reward_funcs.length + (c.reward_model_path !== null ? 1 : 0);
  if (sources === 0) configIssue(ctx, 'reward_funcs', "required: at least one reward source (reward_funcs, e.g. ['module:reward.ts'], or reward_model_path)");
  if (c.reward_weights !== null && c.reward_weights.length !== sources)
    configIssue(ctx, 'reward_weights', `has ${c.reward_weights.length} weight(s) for ${sources} reward source(s)`);
  if (c.eval_file !== null && c.eval_fraction > 0) configIssue(ctx, 'eval_fraction', 'give eval_file or eval_fraction, not both');
  if (c.eval_strategy !== 'no' && c.eval_file === null && c.eval_fraction === 0)
    configIssue(ctx, 'eval_strategy', `'${c.eval_strategy}' needs held-out prompts: set eval_file or eval_fraction`);
  if (rowsPerIteration % samplesPerPrompt.value !== 0)
    configIssue(ctx, samplesPerPrompt.key, `${samplesPerPrompt.value} must divide the ${rowsPerIteration} responses sampled per iteration (per_device_train_batch_size × gradient_accumulation_steps × minibatches)`);
}

/** PpoConfigSchema: TRL PPOConfig (with the adaptive KL controller and reward clipping of TRL's earlier PPOTrainer). Its own fields (beyond onPolicyShape; its table in docs/rl.md): */
export const ppoConfigShape = {
  response_length: posInt().default(53).describe('Most tokens sampled per response (a response stops earlier at EOS).'),
  num_ppo_epochs: posInt().default(4).describe('Passes of PPO updates over each rollout batch.'),
  num_mini_batches: posInt().default(1)
    .describe('Minibatches (optimizer steps) per pass; rollout batch = per_device_train_batch_size × gradient_accumulation_steps × num_mini_batches prompts.'),
  cliprange: z.number().gt(0).default(0.2).describe('ε of the clipped surrogate objective: the policy ratio is clipped to [1 − ε, 1 + ε].'),
  cliprange_value: z.number().gt(0).default(0.2).describe('Clip range of the value function: new values stay within ± this of the rollout values in the clipped value loss.'),
  vf_coef: nonNeg().default(0.1).describe('Weight of the value loss in the total loss.'),
  gamma: z.number().gte(0).lte(1).default(1).describe('Discount factor of GAE.'),
  lam: z.number().gte(0).lte(1).default(0.95).describe('λ of GAE (bias/variance trade-off of the advantages).'),
  kl_coef: nonNeg().default(0.05).describe('β: weight of the per-token KL penalty to the reference in the rewards (the initial value with target_kl).'),
  kl_estimator: z.enum(['k1', 'k2', 'k3', 'abs']).default('k1')
    .describe("Per-token KL estimator: k1 = log π − log π_ref (unbiased), k2 = ½(log π − log π_ref)² (TRL's older 'mse'), k3 = r − 1 − log r with r = π_ref/π (unbiased, never negative), abs = |log π − log π_ref| (TRL's older 'abs')."),
  target_kl: z.number().gt(0).nullable().default(null)
    .describe('Adaptive KL controller (Ziegler et al. 2019): steer kl_coef so that objective/kl tracks this target; null = fixed kl_coef.'),
  kl_horizon: posInt().default(10000).describe('Horizon of the adaptive KL controller, in sampled responses.'),
  whiten_rewards: z.boolean().default(false).describe('Whiten the per-token rewards of each rollout before GAE.'),
  reward_clip: z.number().gt(0).nullable().default(null).describe('Clip every score to [−reward_clip, reward_clip] before the KL penalty; null = no clipping.'),
  entropy_coef: nonNeg().default(0).describe('Weight of an entropy bonus (the exact entropy of the policy at each response token) subtracted from the loss.'),
  value_model_path: path().nullable().default(null)
    .describe("A separate critic (TRL's value_model): a model folder sharing the policy's tokenizer — a reward model (its score head starts the value head, as TRL does), a folder with a value head, or any causal LM (fresh head). It is trained jointly with the policy and saved in critic/. null = a value head on the policy's own trunk."),
} satisfies z.core.$ZodLooseShape;

export const PpoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...onPolicyShape,
  ...ppoConfigShape,
}).superRefine((c, ctx) => checkOnPolicy(c, ctx, { key: 'per_device_train_batch_size', value: 1 }, c.per_device_train_batch_size * c.gradient_accumulation_steps * c.num_mini_batches));
export type PpoConfig = z.output<typeof PpoConfigSchema>;

/** GrpoConfigSchema: TRL GRPOConfig. Its own fields (beyond onPolicyShape; its table in docs/rl.md): */
export const grpoConfigShape = {
  learning_rate: z.number().gt(0).default(1e-6).describe('Peak learning rate (after warmup). TRL GRPOConfig default 1e-6.'),
  temperature: z.number().gt(0).default(1).describe('Sampling temperature of the completions (and of the log-probs).'),
  num_generations: z.number().int().gte(2).default(8).describe('G: completions sampled per prompt; advantages are normalised within each group of G.'),
  max_completion_length: posInt().default(256).describe('Most tokens sampled per completion.'),
  num_iterations: posInt().default(1).describe('μ: passes of updates over each generation batch (1 = the ratio is always 1 at the first step).'),
  steps_per_generation: posInt().default(1)
    .describe('Optimizer steps per pass over a generation batch; completions per generation = per_device_train_batch_size × gradient_accumulation_steps × this.'),
  epsilon: z.number().gt(0).default(0.2).describe('ε of the clipped objective.'),
  beta: nonNeg().default(0.04).describe('Weight of the k3 KL to the reference in the loss; 0 = no reference model at all.'),
  scale_rewards: z.boolean().default(true).describe('Divide the group-centred rewards by the group standard deviation (false: Dr. GRPO centring only).'),
  loss_type: z.enum(['grpo', 'bnpo', 'dr_grpo']).default('grpo')
    .describe("Loss aggregation: 'grpo' (token mean per completion, then mean over completions), 'bnpo' (mean over all tokens of the batch), 'dr_grpo' (sum over tokens / (completions × max_completion_length))."),
} satisfies z.core.$ZodLooseShape;

export const GrpoConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...onPolicyShape,
  ...grpoConfigShape,
}).superRefine((c, ctx) => checkOnPolicy(c, ctx, { key: 'num_generations', value: c.num_generations }, c.per_device_train_batch_size * c.gradient_accumulation_steps * c.steps_per_generation));
export type GrpoConfig = z.output<typeof GrpoConfigSchema>;

/** RlooConfigSchema: TRL RLOOConfig (the REINFORCE leave-one-out trainer of Ahmadian et al. 2024). Its own fields (beyond onPolicyShape; its table in docs/rl.md): */
export const rlooConfigShape = {
  rloo_k: z.number().int().gte(2).default(2).describe('k: responses per prompt; each one\'s baseline is the mean reward of the other k − 1.'),
  response_length: posInt().default(53).describe('Most tokens sampled per response.'),
  num_ppo_epochs: posInt().default(4).describe('Passes of updates over each rollout batch.'),
  num_mini_batches: posInt().default(1)
    .describe('Minibatches (optimizer steps) per pass; responses per rollout = per_device_train_batch_size × gradient_accumulation_steps × num_mini_batches.'),
  cliprange: z.number().gt(0).default(0.2).describe('ε: the sequence-level policy ratio is clipped to [1 − ε, 1 + ε].'),
  kl_coef: nonNeg().default(0.05).describe('β: weight of the sequence KL to the reference subtracted from each score.'),
  kl_estimator: z.enum(['k1', 'k2', 'k3', 'abs']).default('k1').describe('Per-token KL estimator summed into the sequence KL (see PPO).'),
  normalize_reward: z.boolean().default(false).describe('Whiten the scores of each rollout before the KL penalty.'),
  normalize_advantage: z.boolean().default(false).describe('Whiten the advantages of each rollout.'),
} satisfies z.core.$ZodLooseShape;

export const RlooConfigSchema = TrainingArgumentsSchema.safeExtend({
  ...onPolicyShape,
  ...rlooConfigShape,
}).superRefine((c, ctx) => checkOnPolicy(c, ctx, { key: 'rloo_k', value: c.rloo_k }, c.per_device_train_batch_size * c.gradient_accumulation_steps * c.num_mini_batches));
export type RlooConfig = z.output<typeof RlooConfigSchema>;

/** The fields every online RL config shares. */
export type OnPolicyConfig = PpoConfig | GrpoConfig | RlooConfig;

// ---------------------------------------------------------------------------------------------------------
// Unknown keys

/** Keys renamed upstream (or by alignkit) → the current name. Suggested only when the new name is in the schema. */
export const RENAMED_KEYS: Readonly<Record<string, string>> = {
  max_seq_length: 'max_length',
  critic_model_name_or_path: 'value_model_path',
  value_model: 'value_model_path',
  evaluation_strategy: 'eval_strategy',
  per_gpu_train_batch_size: 'per_device_train_batch_size',
  per_gpu_eval_batch_size: 'per_device_eval_batch_size',
  batch_size: 'per_device_train_batch_size',
  lr: 'learning_rate',
  epochs: 'num_train_epochs',
  num_epochs: 'num_train_epochs',
  model_name: 'model_name_or_path',
  model_path: 'model_name_or_path',
  model: 'model_name_or_path',
  dataset_name: 'dataset_path',
  dataset: 'dataset_path',
  validation_file: 'eval_file',
  lora_rank: 'lora_r',
  lora_target: 'lora_target_modules',
  target_modules: 'lora_target_modules',
  early_stopping_delta: 'early_stopping_threshold',
  warmup: 'warmup_steps',
  scheduler: 'lr_scheduler_type',
};

/** TrainingArguments / SFTConfig keys alignkit deliberately lacks, and why. */
export const UNSUPPORTED_KEYS: Readonly<Record<string, string>> = {
  fp16: 'alignkit trains in float32 on the CPU',
  bf16: 'alignkit trains in float32 on the CPU',
  tf32: 'alignkit trains in float32 on the CPU',
  half_precision_backend: 'alignkit trains in float32 on the CPU',
  use_cpu: 'alignkit always runs on the CPU',
  no_cuda: 'alignkit always runs on the CPU',
  deepspeed: 'distributed training is not supported',
  fsdp: 'distributed training is not supported',
  fsdp_config: 'distributed training is not supported',
  ddp_backend: 'distributed training is not supported',
  local_rank: 'distributed training is not supported',
  push_to_hub: 'alignkit never uploads; publish output_dir yourself',
  hub_model_id: 'alignkit never uploads; publish output_dir yourself',
  hub_token: 'alignkit never uploads; publish output_dir yourself',
  torch_compile: 'there is no torch here; the kernels are native already',
  dataloader_num_workers: 'data is loaded in-process',
  gradient_checkpointing: 'activation checkpointing is not implemented',
  use_liger_kernel: 'the fused kernels are always on',
};

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** Why `key` is not accepted by a schema whose keys are `known`. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const renamed = RENAMED_KEYS[key];
  if (renamed !== undefined && known.includes(renamed)) return `unknown key; it is called '${renamed}' now`;
  const unsupported = UNSUPPORTED_KEYS[key];
  if (unsupported !== undefined) return `not supported: ${unsupported}`;
  let best: string | null = null;
  let bestD = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  if (best !== null && bestD <= Math.max(1, Math.floor(key.length / 4))) return `unknown key; did you mean '${best}'?`;
  return 'unknown key';
}

// ---------------------------------------------------------------------------------------------------------
// Reading and parsing

/** The keys of an object schema (through refinements); empty for other schemas. */
export function schemaKeys(schema: z.ZodType): string[] {
  return schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
}

export interface ConfigSources {
  /** A YAML (.yaml/.yml) or JSON (.json) file whose top level maps keys to values. */
  file?: string;
  /** Values that win over the file's, e.g. from `flagOverrides`; problems with them are reported as `--key`. */
  overrides?: Record<string, unknown>;
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

function oneLineMessage(s: string): string {
  return s.split('\n')[0].replace(/\s+/g, ' ').trim();
}

interface FileValues {
  values: Record<string, unknown>;
  /** 1-based line of each top-level key. */
  keyLines: Map<string, number>;
}

/** Reads a YAML or JSON config file into a plain object, or throws a ConfigError naming the file and line. */
export function readConfigFile(file: string): FileValues {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? (e as NodeJS.ErrnoException).code : undefined;
    throw new ConfigError([`${file}: ${code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? 'is a directory, not a config file' : e instanceof Error ? e.message : String(e)}`]);
  }
  const isJson = extname(file).toLowerCase() === '.json';
  if (isJson) {
    try {
      JSON.parse(text);
    } catch (e) {
      // Node: "Unexpected token } in JSON at position 42" (20.x) — turn the offset into a line.
      const msg = e instanceof Error ? e.message : String(e);
      const pos = /position (\d+)/.exec(msg);
      throw new ConfigError([`${file}: ${pos ? `line ${lineOf(text, Number(pos[1]))}: ` : ''}invalid JSON: ${oneLineMessage(msg)}`]);
    }
  }
  const doc: Document.Parsed = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length)
    throw new ConfigError(doc.errors.map((err) => `${file}: line ${lineOf(text, err.pos[0])}: invalid ${isJson ? 'JSON' : 'YAML'}: ${oneLineMessage(err.message)}`));
  const keyLines = new Map<string, number>();
  if (doc.contents === null) return { values: {}, keyLines };
  if (!isMap(doc.contents)) {
    const kind = Array.isArray(doc.toJS()) ? 'a list' : 'a single value';
    throw new ConfigError([`${file}: the top level must map keys to values (key: value lines), got ${kind}`]);
  }
  for (const pair of doc.contents.items) {
    if (isScalar(pair.key) && pair.key.range) keyLines.set(String(pair.key.value), lineOf(text, pair.key.range[0]));
  }
  const values = doc.toJS() as Record<string, unknown>;
  return { values, keyLines };
}

function formatPath(p: readonly PropertyKey[]): string {
  let s = '';
  for (const part of p) s += typeof part === 'number' ? `[${part}]` : s === '' ? String(part) : `.${String(part)}`;
  return s;
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `'${v.length > 60 ? `${v.slice(0, 60)}...` : v}' (a string)`;
  return String(v);
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let v = root;
  for (const part of p) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

const TYPE_NAMES: Record<string, string> = { int: 'an integer', number: 'a number', string: 'a string', boolean: 'true or false', array: 'a list', object: 'a mapping', record: 'a mapping', null: 'null' };

/** One zod issue as a human message (without the key). */
export function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'required';
      return `must be ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(value)}`;
    case 'too_small': {
      if (issue.origin === 'array') return `must have at least ${issue.minimum} item(s)`;
      if (issue.origin === 'string') return 'must not be empty';
      return `must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}, got ${describeValue(value)}`;
    }
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${issue.maximum} item(s)`;
      return `must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}, got ${describeValue(value)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => (typeof v === 'string' ? `'${v}'` : String(v))).join(', ')}, got ${describeValue(value)}`;
    default:
      return issue.message;
  }
}

/**
 * Reads a configuration: the file's values, then `overrides` on top, validated by `schema`. Returns the
 * parsed config (defaults filled in). Throws one ConfigError listing every problem, each as
 * `<file>: line N: key 'x': message` (or `--x: message` for an override).
 */
export function parseConfig<S extends z.ZodType>(schema: S, sources: ConfigSources): z.output<S> {
  const fromFile: FileValues = sources.file !== undefined ? readConfigFile(sources.file) : { values: {}, keyLines: new Map() };
  const overrides = Object.fromEntries(Object.entries(sources.overrides ?? {}).filter(([, v]) => v !== undefined));
  const merged: Record<string, unknown> = { ...fromFile.values, ...overrides };
  const result = schema.safeParse(merged);
  if (result.success) return result.data;

  const known = schemaKeys(schema);
  const where = (key: string): string => {
    if (key in overrides) return `--${key}`;
    if (sources.file !== undefined) {
      const line = fromFile.keyLines.get(key);
      return `${sources.file}: ${line !== undefined ? `line ${line}: ` : ''}key '${key}'`;
    }
    return `key '${key}'`;
  };
  // Problems in file order (by line), then those without a line (missing keys, flags) in schema order.
  const problems: { line: number; text: string }[] = [];
  const lineOfKey = (key: string) => (key in overrides ? Infinity : (fromFile.keyLines.get(key) ?? Infinity));
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys' && issue.path.length === 0) {
      for (const key of issue.keys) problems.push({ line: lineOfKey(key), text: `${where(key)}: ${unknownKeyMessage(key, known)}` });
      continue;
    }
    const top = issue.path.length ? String(issue.path[0]) : '';
    const value = valueAt(merged, issue.path);
    let msg = issueMessage(issue, value);
    if (msg === 'required' && issue.path.length === 1) {
      msg = sources.file !== undefined ? `required (set it in the file or with --${top})` : `required (--${top})`;
    }
    const nested = issue.path.length > 1 ? ` (at ${formatPath(issue.path)})` : '';
    problems.push({ line: lineOfKey(top), text: top === '' ? `${sources.file ?? 'config'}: ${msg}` : `${where(top)}${nested}: ${msg}` });
  }
  // Array.prototype.sort is stable, so equal lines keep zod's (schema) order.
  throw new ConfigError(problems.sort((a, b) => (a.line === b.line ? 0 : a.line < b.line ? -1 : 1)).map((p) => p.text));
}
