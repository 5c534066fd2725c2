// What every trainer does the same way around the loop: load the policy (model, tokenizer, chat template, LoRA or
// a trainable subset, dropout), build the optimizer, and run — output-dir checks, resume, the metrics logger,
// early stopping, the loop options from TrainingArguments, the final Hugging Face folder (or PEFT adapter) and
// train_results.json. SFT, reward modelling and the preference trainers only add their data and their loss.

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, Generator, noGrad, tidy, type Tensor } from '../tensor/index.ts';
import { AdamW, SGD, type Optimizer } from '../optim/index.ts';
import { loadModel, saveModel, TOKENIZER_FILES, type PretrainedLM } from '../models/index.ts';
import { loadChatTemplate, loadTokenizer, type ChatTemplate, type Tokenizer } from '../tokenizer/index.ts';
import { applyLora, type LoraHandle } from '../nn/lora.ts';
import { saveLoraAdapter } from '../models/peft.ts';
import { openSafetensors } from '../io/safetensors.ts';
import { bestMetricName, evalStepsOf, greaterIsBetter, lrScheduleFor, type SftConfig, type TrainingArguments } from './config.ts';
import { latestCheckpoint, listCheckpoints, readTrainerState } from './checkpoint.ts';
import { EarlyStopping } from './early_stopping.ts';
import { MetricsLogger } from './logging.ts';
import { runTrainingLoop, weightDecayGroups, type LoopResult, type TrainTask } from './loop.ts';
import { selectTrainable } from './regularizers.ts';
import { learningRateAt } from './schedule.ts';

/** The config fields that describe the policy being trained (shared by every trainer's schema). */
export type PolicyConfig = Pick<
  SftConfig,
  'model_name_or_path' | 'use_lora' | 'merge_lora' | 'lora_r' | 'lora_alpha' | 'lora_dropout' | 'lora_target_modules' | 'trainable_modules' | 'chat_template_path'
> &
  Pick<TrainingArguments, 'seed' | 'dropout'>;

export interface Policy {
  model: PretrainedLM;
  tok: Tokenizer;
  chatTemplate: ChatTemplate | null;
  lora: LoraHandle | null;
  /** The tensors the optimizer updates, by name. */
  trainable: Map<string, Tensor>;
  totalParameters: number;
  trainableParameters: number;
  /** Pad id for collation (the tokenizer's, else the model's, else EOS). */
  padTokenId: number;
  /** Checkpoint weights: the full model in float32, or the adapter. */
  saveCheckpointModel(dir: string): void;
  /** Loads saveCheckpointModel's output into the live tensors (optimizer references stay valid). */
  loadCheckpointModel(dir: string): void;
  rngState(): Record<string, unknown>;
  restoreRng(rng: Record<string, unknown>): void;
  /** The final output: an HF folder (or adapter + tokenizer files, and merged/ with merge_lora). */
  saveFinal(outputDir: string): void;
  dispose(): void;
}

/** Copies tensors by name from a freshly loaded model folder into live parameters. */
export function copyWeightsFromFolder(dir: string, into: ReadonlyMap<string, Tensor>): void {
  const loaded = loadModel(dir, { trainable: false });
  try {
    const src = loaded.namedParameters();
    for (const [name, t] of into) {
      const s = src.get(name);
      if (!s) throw new AlignkitError(`resume: ${dir} has no tensor '${name}'`);
      if (s.size !== t.size) throw new AlignkitError(`resume: tensor '${name}' in ${dir} has ${s.size} values, the model ${t.size}`);
      (t.data as Float32Array).set(s.data as Float32Array);
    }
  } finally {
    loaded.dispose();
  }
}

function copyAdapterFromFolder(dir: string, handle: LoraHandle): void {
  const reader = openSafetensors(path.join(dir, 'adapter_model.safetensors'));
  try {
    for (const [key, t] of handle.trainableParameters()) {
      if (!reader.has(key)) throw new AlignkitError(`resume: ${dir}/adapter_model.safetensors has no tensor '${key}'`);
      noGrad(() => tidy(() => (t.data as Float32Array).set(reader.load(key).data as Float32Array)));
    }
  } finally {
    reader.close();
  }
}

export interface LoadPolicyOptions {
  /** Called after loading, before LoRA/trainable selection (attach a score or value head here). */
  prepare?: (model: PretrainedLM) => void;
  /** Extra parameters always trained (a freshly attached head), by name. */
  alwaysTrain?: (model: PretrainedLM) => Map<string, Tensor>;
}

export function loadPolicy(cfg: PolicyConfig, o: LoadPolicyOptions = {}): Policy {
  const tok = loadTokenizer(cfg.model_name_or_path);
  const chatTemplate: ChatTemplate | null = cfg.chat_template_path ? fs.readFileSync(cfg.chat_template_path, 'utf8') : loadChatTemplate(cfg.model_name_or_path);
  const model = loadModel(cfg.model_name_or_path, { trainable: true });
  o.prepare?.(model);
  const dropoutGen = new Generator(cfg.seed + 1);
  if (cfg.dropout !== null) model.setDropout(cfg.dropout, dropoutGen);
  let lora: LoraHandle | null = null;
  let trainable: Map<string, Tensor>;
  if (cfg.use_lora) {
    lora = applyLora(model, { r: cfg.lora_r, lora_alpha: cfg.lora_alpha, lora_dropout: cfg.lora_dropout, target_modules: cfg.lora_target_modules }, cfg.seed);
    trainable = lora.trainableParameters();
  } else trainable = selectTrainable(model.namedParameters(), cfg.trainable_modules);
  for (const [n, t] of o.alwaysTrain?.(model) ?? []) {
    t.requireGrad(true);
    trainable.set(n, t);
  }
  let trainableParameters = 0;
  for (const t of trainable.values()) trainableParameters += t.size;
  const padTokenId = tok.padId ?? model.config.padTokenId ?? tok.eosId ?? model.config.eosTokenIds[0] ?? 0;
  return {
    model, tok, chatTemplate, lora, trainable, padTokenId, trainableParameters,
    totalParameters: model.numParameters(),
    saveCheckpointModel(dir) {
      if (lora) {
        saveLoraAdapter(dir, lora, { baseModelNameOrPath: cfg.model_name_or_path });
        // heads attached for this run (score/value) are not in the adapter: keep them next to it
        if (o.alwaysTrain) saveModel(model, path.join(dir, 'with_heads'), { dtype: 'float32' });
      } else saveModel(model, dir, { dtype: 'float32' });
    },
    loadCheckpointModel(dir) {
      if (lora) {
        copyAdapterFromFolder(dir, lora);
        if (o.alwaysTrain) copyWeightsFromFolder(path.join(dir, 'with_heads'), o.alwaysTrain(model));
      } else copyWeightsFromFolder(dir, trainable);
    },
    rngState: () => ({ dropout: dropoutGen.getState(), lora: lora?.dropoutGenerator.getState() ?? null }),
    restoreRng(rng) {
      dropoutGen.setState(rng.dropout as ReturnType<Generator['getState']>);
      if (lora && rng.lora) lora.dropoutGenerator.setState(rng.lora as ReturnType<Generator['getState']>);
    },
    saveFinal(outputDir) {
      if (lora) {
        saveLoraAdapter(outputDir, lora, { baseModelNameOrPath: cfg.model_name_or_path });
        for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(cfg.model_name_or_path, f))) fs.copyFileSync(path.join(cfg.model_name_or_path, f), path.join(outputDir, f));
        if (cfg.merge_lora || o.alwaysTrain) {
          lora.merge();
          saveModel(model, path.join(outputDir, 'merged'));
        }
      } else saveModel(model, outputDir);
    },
    dispose() {
      lora?.dispose();
      model.dispose();
    },
  };
}

export function makeOptimizer(cfg: TrainingArguments, trainable: ReadonlyMap<string, Tensor>): Optimizer<{ lr: number }> {
  const groups = weightDecayGroups(trainable, cfg.weight_decay);
  if (groups.length === 0) throw new AlignkitError('nothing to train: every parameter is frozen (check trainable_modules / use_lora)');
  return cfg.optim === 'sgd'
    ? new SGD(groups, { lr: cfg.learning_rate, momentum: cfg.momentum })
    : new AdamW(groups, { lr: cfg.learning_rate, beta1: cfg.adam_beta1, beta2: cfg.adam_beta2, eps: cfg.adam_epsilon });
}

/** Optimizer steps of a run: max_steps, or epochs × micro-batches per epoch / accumulation. */
export function totalStepsOf(cfg: TrainingArguments, microBatchesPerEpoch: number): { totalSteps: number; stepsPerEpoch: number } {
  const stepsPerEpoch = Math.max(1, Math.round(microBatchesPerEpoch / cfg.gradient_accumulation_steps));
  const totalSteps = cfg.max_steps > 0 ? cfg.max_steps : Math.max(1, Math.ceil((cfg.num_train_epochs * microBatchesPerEpoch) / cfg.gradient_accumulation_steps));
  return { totalSteps, stepsPerEpoch };
}

export interface RunTrainerParts<MB> {
  /** 'sft', 'dpo', ...: in messages. */
  name: string;
  policy: Policy;
  /** The trainer's task; weights and policy RNG are handled here. */
  task: Omit<TrainTask<MB>, 'saveModel' | 'loadModel'>;
  optimizer: Optimizer<{ lr: number }>;
  totalSteps: number;
  stepsPerEpoch: number;
  hasEval: boolean;
  /** Show progress on the console (default: !disable_tqdm). */
  console?: boolean;
  /** Trainer-specific lines of train_results.json. */
  summary?: (r: LoopResult) => Record<string, unknown>;
}

/** Checks output_dir for an earlier run: resume, start afresh (overwrite_output_dir) or refuse. */
export function prepareOutputDir(name: string, cfg: TrainingArguments): { outputDir: string; resumeFrom: string | null } {
  const outputDir = path.resolve(cfg.output_dir);
  const resumeFrom = cfg.resume_from_checkpoint === true ? 'latest' : cfg.resume_from_checkpoint || null;
  const existing = listCheckpoints(outputDir);
  if (!resumeFrom && existing.length && !cfg.overwrite_output_dir)
    throw new AlignkitError(`${name}: ${outputDir} already holds checkpoints — resume with --resume (resume_from_checkpoint: true), or set overwrite_output_dir / pick another output_dir`);
  if (!resumeFrom && cfg.overwrite_output_dir) for (const c of existing) fs.rmSync(c.dir, { recursive: true, force: true });
  return { outputDir, resumeFrom };
}

/** Runs the loop with everything TrainingArguments says, then writes the final model and train_results.json. */
export async function runTrainer<MB>(cfg: TrainingArguments, parts: RunTrainerParts<MB>): Promise<LoopResult & { outputDir: string }> {
  const { outputDir, resumeFrom } = prepareOutputDir(parts.name, cfg);
  const { policy, totalSteps, stepsPerEpoch } = parts;
  if (resumeFrom) {
    const ck = resumeFrom === 'latest' ? latestCheckpoint(outputDir) : { dir: resumeFrom, step: -1 };
    if (ck) MetricsLogger.truncateAfter(outputDir, readTrainerState(ck.dir).globalStep);
  }
  fs.mkdirSync(outputDir, { recursive: true });
  const showProgress = parts.console ?? !cfg.disable_tqdm;
  const logger = new MetricsLogger(outputDir, {
    tensorboard: cfg.report_to.includes('tensorboard'),
    console: showProgress,
    isTTY: showProgress && !cfg.disable_tqdm && Boolean(process.stderr.isTTY),
    totalSteps,
    tensorboardDir: cfg.logging_dir ?? undefined,
  });
  const earlyStopping =
    cfg.early_stopping_patience !== null
      ? new EarlyStopping({ metric: cfg.metric_for_best_model, mode: greaterIsBetter(cfg) ? 'max' : 'min', patience: cfg.early_stopping_patience, minDelta: cfg.early_stopping_threshold })
      : null;
  const evalSteps = parts.hasEval && cfg.eval_strategy === 'steps' ? evalStepsOf(cfg) : parts.hasEval && cfg.eval_strategy === 'epoch' ? stepsPerEpoch : null;
  const saveSteps = cfg.save_strategy === 'steps' ? cfg.save_steps : cfg.save_strategy === 'epoch' ? stepsPerEpoch : null;
  const schedule = lrScheduleFor(cfg, totalSteps);
  const t = parts.task;
  const task: TrainTask<MB> = {
    ...t,
    saveModel: (dir) => policy.saveCheckpointModel(dir),
    loadModel: (dir) => policy.loadCheckpointModel(dir),
    state: () => {
      const s = t.state();
      return { ...s, rng: { ...s.rng, policy: policy.rngState() } };
    },
    restore: (s) => {
      t.restore(s);
      policy.restoreRng(s.rng.policy as Record<string, unknown>);
    },
  };
  try {
    const result = await runTrainingLoop(task, parts.optimizer, logger, {
      outputDir,
      totalSteps,
      gradientAccumulationSteps: cfg.gradient_accumulation_steps,
      maxGradNorm: cfg.max_grad_norm,
      lrAt: (step) => learningRateAt(step, schedule),
      loggingSteps: cfg.logging_steps,
      loggingFirstStep: cfg.logging_first_step,
      evalOnStart: cfg.eval_on_start,
      saveOnlyModel: cfg.save_only_model,
      onStep: (i) => logger.advance(i.step, { loss: i.loss, learningRate: i.learningRate, tokensPerSecond: i.tokensPerSecond }),
      evalSteps,
      evaluateAtEnd: parts.hasEval,
      saveSteps,
      saveTotalLimit: cfg.save_total_limit,
      metricForBestModel: bestMetricName(cfg),
      greaterIsBetter: greaterIsBetter(cfg),
      loadBestModelAtEnd: cfg.load_best_model_at_end,
      earlyStopping,
      maxNanSteps: cfg.max_nan_steps,
      resumeFrom,
      config: cfg as unknown as Record<string, unknown>,
    });
    policy.saveFinal(outputDir);
    const summary: Record<string, unknown> = {
      global_step: result.globalStep,
      train_loss: result.trainLoss,
      train_runtime: result.seconds,
      train_tokens: result.tokensSeen,
      train_tokens_per_second: result.tokensSeen / Math.max(result.seconds, 1e-9),
      nan_skipped_steps: result.nanSteps,
      stopped_early: result.stoppedEarly,
      best_checkpoint: result.best?.checkpoint ?? null,
      best_metric: result.best?.value ?? null,
      resumed_from: result.resumedFrom,
      trainable_parameters: policy.trainableParameters,
      total_parameters: policy.totalParameters,
      ...(parts.summary?.(result) ?? {}),
      ...(result.lastEval ?? {}),
    };
    fs.writeFileSync(path.join(outputDir, 'train_results.json'), `${JSON.stringify(summary, null, 2)}\n`);
    logger.summary(Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'string' ? v : String(v)])));
    return { ...result, outputDir };
  } finally {
    logger.close();
  }
}
