// Supervised fine-tuning: next-token cross-entropy on the completion / assistant tokens of a dataset, full
// fine-tuning or LoRA, through the shared training loop (src/train/loop.ts). This file only says what SFT is:
// how a batch becomes a loss, how evaluation is computed, what the checkpoint holds.
//
// Loss:  L = -(1/N) Σ_{b,t: labels[b,t+1] ≠ -100} log p(labels[b,t+1] | ids[b,≤t])   with N the target tokens of
// the whole optimizer step (all accumulated micro-batches), computed by the fused chunked LM-head kernel so the
// [tokens, vocab] logits never exist in memory.

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, Generator, fusedCrossEntropy, intTensor, noGrad, reshape, tidy, type Tensor } from '../tensor/index.ts';
import { AdamW, SGD, type Optimizer } from '../optim/index.ts';
import { loadModel, saveModel, TOKENIZER_FILES, type PretrainedLM } from '../models/index.ts';
import { loadTokenizer, loadChatTemplate, type ChatTemplate, type Tokenizer } from '../tokenizer/index.ts';
import { SftDataset, type SftDatasetOptions } from '../data/sft_dataset.ts';
import { openRowSource } from '../data/source.ts';
import { BatchSampler, splitTrainEval, type LoaderState } from '../data/loader.ts';
import { collate, type Batch } from '../data/collate.ts';
import { applyLora, type LoraHandle } from '../nn/lora.ts';
import { saveLoraAdapter } from '../models/peft.ts';
import { openSafetensors } from '../io/safetensors.ts';
import { learningRateAt, type LrScheduleConfig } from '../train/schedule.ts';
import { EarlyStopping } from '../train/early_stopping.ts';
import { MetricsLogger } from '../train/logging.ts';
import { bestMetricName, evalStepsOf, greaterIsBetter, lrScheduleFor, trainDataPath, type SftConfig } from '../train/config.ts';
import { latestCheckpoint, listCheckpoints, readTrainerState } from '../train/checkpoint.ts';
import { runTrainingLoop, weightDecayGroups, type LoopResult, type TrainTask } from '../train/loop.ts';
import { lrRangeTest, type LrFindOptions, type LrFindResult } from '../train/lr_find.ts';
import { lrFindSvg } from '../train/plot.ts';
import { writeAtomically } from '../io/file.ts';
import { batchNll, countTargets, forwardInputs, sftLossBackward, shiftLabels } from './sft_loss.ts';

export { batchNll, sftLossBackward, shiftLabels } from './sft_loss.ts';
import { ForgettingRegularizer, selectTrainable } from '../train/regularizers.ts';

export interface SftResult extends LoopResult {
  outputDir: string;
  trainExamples: number;
  evalExamples: number;
  trainableParameters: number;
  totalParameters: number;
  datasetStats: SftDataset['stats'];
}

interface MicroBatch {
  batch: Batch;
  /** Target tokens after the shift (the loss normaliser's units). */
  targets: number;
}

function padTokenOf(tok: Tokenizer, model: PretrainedLM): number {
  return tok.padId ?? model.config.padTokenId ?? tok.eosId ?? model.config.eosTokenIds[0] ?? 0;
}

/** Copies tensors by name from a freshly loaded model folder into the live parameters (optimizer references stay valid). */
function copyWeightsFromFolder(dir: string, into: ReadonlyMap<string, Tensor>): void {
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

export interface RunSftOptions {
  /** Progress lines when not logging to a TTY bar (tests pass a sink). */
  console?: boolean;
}

/** Everything a run (or an lr range test) works with, built from the config. dispose() frees it all. */
interface SftSession {
  model: PretrainedLM;
  lora: LoraHandle | null;
  trainable: Map<string, Tensor>;
  train: SftDataset;
  evalSet: SftDataset | null;
  task: TrainTask<MicroBatch>;
  optimizer: Optimizer<{ lr: number }>;
  totalSteps: number;
  stepsPerEpoch: number;
  schedule: LrScheduleConfig;
  totalParameters: number;
  trainableParameters: number;
  dispose(): Promise<void>;
}

async function prepareSft(cfg: SftConfig): Promise<SftSession> {
  const trainPath = trainDataPath(cfg);

  // ---------------------------------------------------------------- model, tokenizer, adapters
  const tok = loadTokenizer(cfg.model_name_or_path);
  const chatTemplate: ChatTemplate | null = cfg.chat_template_path ? fs.readFileSync(cfg.chat_template_path, 'utf8') : loadChatTemplate(cfg.model_name_or_path);
  const model = loadModel(cfg.model_name_or_path, { trainable: true });
  const dropoutGen = new Generator(cfg.seed + 1);
  if (cfg.dropout !== null) model.setDropout(cfg.dropout, dropoutGen);
  let lora: LoraHandle | null = null;
  let trainable: Map<string, Tensor>;
  if (cfg.use_lora) {
    lora = applyLora(model, { r: cfg.lora_r, lora_alpha: cfg.lora_alpha, lora_dropout: cfg.lora_dropout, target_modules: cfg.lora_target_modules }, cfg.seed);
    trainable = lora.trainableParameters();
  } else trainable = selectTrainable(model.namedParameters(), cfg.trainable_modules);
  const totalParameters = model.numParameters();
  let trainableParameters = 0;
  for (const t of trainable.values()) trainableParameters += t.size;

  // ---------------------------------------------------------------- data
  const dataOpts: SftDatasetOptions = {
    maxLength: cfg.max_length,
    truncation: cfg.truncation,
    completionOnlyLoss: cfg.completion_only_loss ?? true,
    assistantOnlyLoss: cfg.assistant_only_loss,
    chatTemplate,
    packing: cfg.packing,
    skipInvalid: cfg.skip_invalid,
  };
  let train: SftDataset;
  let evalSet: SftDataset | null = null;
  if (cfg.eval_file) {
    train = await SftDataset.open(trainPath, tok, dataOpts);
    evalSet = await SftDataset.open(cfg.eval_file, tok, dataOpts);
  } else if (cfg.eval_fraction > 0) {
    const src = await openRowSource(trainPath);
    const n = src.length;
    await src.close();
    const split = splitTrainEval(n, { evalFraction: cfg.eval_fraction, seed: cfg.data_seed ?? cfg.seed });
    train = await SftDataset.open(trainPath, tok, dataOpts, split.train);
    evalSet = await SftDataset.open(trainPath, tok, dataOpts, split.eval);
  } else train = await SftDataset.open(trainPath, tok, dataOpts);
  if (train.length === 0) throw new AlignkitError(`sft: ${trainPath} has no usable examples`);
  const rehearsal = cfg.rehearsal_file && cfg.rehearsal_ratio > 0 ? await SftDataset.open(cfg.rehearsal_file, tok, dataOpts) : null;
  const B = cfg.per_device_train_batch_size;
  const replayRows = rehearsal ? Math.round(B * cfg.rehearsal_ratio) : 0;
  if (rehearsal && (replayRows === 0 || replayRows >= B))
    throw new AlignkitError(`sft: rehearsal_ratio ${cfg.rehearsal_ratio} of per_device_train_batch_size ${B} gives ${replayRows} replay rows per micro-batch; it must be between 1 and ${B - 1}`);
  const sampler = new BatchSampler(train.length, { batchSize: B - replayRows, seed: cfg.data_seed ?? cfg.seed, dropLast: cfg.dataloader_drop_last });
  const replaySampler = rehearsal ? new BatchSampler(rehearsal.length, { batchSize: replayRows, seed: (cfg.data_seed ?? cfg.seed) + 7 }) : null;
  const padTokenId = padTokenOf(tok, model);
  let microBatches = 0;

  const accum = cfg.gradient_accumulation_steps;
  const totalSteps = cfg.max_steps > 0 ? cfg.max_steps : Math.max(1, Math.ceil((cfg.num_train_epochs * sampler.batchesPerEpoch) / accum));
  const schedule: LrScheduleConfig = lrScheduleFor(cfg, totalSteps);

  // ---------------------------------------------------------------- regularisers against forgetting
  const regularizer =
    cfg.l2_init_coef > 0 || cfg.ewc_coef > 0
      ? await ForgettingRegularizer.create(trainable, {
          l2InitCoef: cfg.l2_init_coef,
          ewcCoef: cfg.ewc_coef,
          fisherBatches: async function* () {
            // Empirical Fisher on the old task's data (the rehearsal set) when given, else on the training data,
            // at the initial weights, in fixed order: recomputed identically on resume.
            const data = rehearsal ?? train;
            const n = Math.min(cfg.ewc_fisher_samples, data.length);
            for (let i = 0; i < n; i++) yield collate([await data.get(i)], { padTokenId, padSide: cfg.padding_side });
          },
          lossOf: (b: Batch) => {
            const targets = shiftLabels(b.labels, b.batch, b.seq);
            const inp = forwardInputs(b);
            const h = model.forward(inp.ids, { attentionMask: inp.attentionMask, positionIds: inp.positionIds, documentIds: inp.documentIds });
            return fusedCrossEntropy(reshape(h, [b.batch * b.seq, model.config.hiddenSize]), model.lmHeadWeight(), intTensor(targets), { bias: model.lmHeadBias() });
          },
        })
      : null;

  // ---------------------------------------------------------------- the task the loop runs
  const task: TrainTask<MicroBatch> = {
    async nextMicroBatch() {
      const { indices } = sampler.next();
      const rows = await Promise.all(indices.map((i) => train.get(i)));
      if (rehearsal && replaySampler) rows.push(...(await Promise.all(replaySampler.next().indices.map((i) => rehearsal.get(i)))));
      microBatches++;
      const batch = collate(rows, { padTokenId, padSide: cfg.padding_side });
      return { batch, targets: countTargets(shiftLabels(batch.labels, batch.batch, batch.seq)) };
    },
    lossUnits: (mb) => mb.targets,
    tokens: (mb) => mb.batch.batch * mb.batch.seq,
    forwardBackward: (mb, normalizer) => ({ loss: sftLossBackward(model, mb.batch, normalizer) }),
    regularize: regularizer ? () => regularizer.addGradients() : undefined,
    evaluate: evalSet
      ? async () => {
          const es = evalSet as SftDataset;
          let nll = 0;
          let tokens = 0;
          for (let i = 0; i < es.length; i += cfg.per_device_eval_batch_size) {
            const rows = [];
            for (let j = i; j < Math.min(i + cfg.per_device_eval_batch_size, es.length); j++) rows.push(await es.get(j));
            const r = batchNll(model, collate(rows, { padTokenId, padSide: cfg.padding_side }));
            nll += r.nll;
            tokens += r.tokens;
          }
          const loss = nll / Math.max(tokens, 1);
          return { loss, perplexity: Math.exp(loss), tokens };
        }
      : undefined,
    epoch: () => (microBatches * (B - replayRows)) / Math.max(train.length, 1),
    saveModel(dir) {
      if (lora) saveLoraAdapter(dir, lora, { baseModelNameOrPath: cfg.model_name_or_path });
      else saveModel(model, dir, { dtype: 'float32' });
    },
    loadModel(dir) {
      if (lora) copyAdapterFromFolder(dir, lora);
      else copyWeightsFromFolder(dir, trainable);
    },
    state: () => ({
      data: { sampler: sampler.state(), replay: replaySampler?.state() ?? null, microBatches },
      rng: { dropout: dropoutGen.getState(), lora: lora?.dropoutGenerator.getState() ?? null },
    }),
    restore(s) {
      const d = s.data as { sampler: LoaderState; replay: LoaderState | null; microBatches: number };
      sampler.restore(d.sampler);
      if (replaySampler && d.replay) replaySampler.restore(d.replay);
      microBatches = d.microBatches;
      const rng = s.rng as { dropout: ReturnType<Generator['getState']>; lora: unknown };
      dropoutGen.setState(rng.dropout);
      if (lora && rng.lora) lora.dropoutGenerator.setState(rng.lora as ReturnType<Generator['getState']>);
    },
  };

  const optimizer: Optimizer<{ lr: number }> =
    cfg.optim === 'sgd'
      ? new SGD(weightDecayGroups(trainable, cfg.weight_decay), { lr: cfg.learning_rate, momentum: cfg.momentum })
      : new AdamW(weightDecayGroups(trainable, cfg.weight_decay), { lr: cfg.learning_rate, beta1: cfg.adam_beta1, beta2: cfg.adam_beta2, eps: cfg.adam_epsilon });

  const stepsPerEpoch = Math.max(1, Math.round(sampler.batchesPerEpoch / accum));
  return {
    model, lora, trainable, train, evalSet, task, optimizer, totalSteps, stepsPerEpoch, schedule, totalParameters, trainableParameters,
    async dispose() {
      await train.close();
      await evalSet?.close();
      await rehearsal?.close();
      optimizer.dispose();
      regularizer?.dispose();
      lora?.dispose();
      model.dispose();
    },
  };
}

export async function runSft(cfg: SftConfig, runOpts: RunSftOptions = {}): Promise<SftResult> {
  const outputDir = path.resolve(cfg.output_dir);
  const resumeFrom = cfg.resume_from_checkpoint === true ? 'latest' : cfg.resume_from_checkpoint || null;
  if (!resumeFrom && fs.existsSync(outputDir) && fs.readdirSync(outputDir).some((f) => /^checkpoint-\d+$/.test(f)) && !cfg.overwrite_output_dir)
    throw new AlignkitError(`sft: ${outputDir} already holds checkpoints — resume with --resume (resume_from_checkpoint: true), or set overwrite_output_dir / pick another output_dir`);
  if (!resumeFrom && cfg.overwrite_output_dir) for (const c of listCheckpoints(outputDir)) fs.rmSync(c.dir, { recursive: true, force: true });
  const session = await prepareSft(cfg);
  const { model, lora, train, evalSet, task, optimizer, totalSteps, stepsPerEpoch, schedule, totalParameters, trainableParameters } = session;
  if (resumeFrom) {
    const ck = resumeFrom === 'latest' ? latestCheckpoint(outputDir) : { dir: resumeFrom, step: -1 };
    if (ck) MetricsLogger.truncateAfter(outputDir, readTrainerState(ck.dir).globalStep);
  }
  fs.mkdirSync(outputDir, { recursive: true });
  const showProgress = runOpts.console ?? !cfg.disable_tqdm;
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
  const evalSteps = evalSet && cfg.eval_strategy === 'steps' ? evalStepsOf(cfg) : evalSet && cfg.eval_strategy === 'epoch' ? stepsPerEpoch : null;
  const saveSteps = cfg.save_strategy === 'steps' ? cfg.save_steps : cfg.save_strategy === 'epoch' ? stepsPerEpoch : null;

  let result: LoopResult;
  try {
    result = await runTrainingLoop(task, optimizer, logger, {
      outputDir,
      totalSteps,
      gradientAccumulationSteps: cfg.gradient_accumulation_steps,
      maxGradNorm: cfg.max_grad_norm,
      lrAt: (step) => learningRateAt(step, schedule),
      loggingSteps: cfg.logging_steps,
      loggingFirstStep: cfg.logging_first_step,
      evalOnStart: cfg.eval_on_start,
      saveOnlyModel: cfg.save_only_model,
      onStep: (i) => {
        logger.advance(i.step, { loss: i.loss, learningRate: i.learningRate, tokensPerSecond: i.tokensPerSecond });
      },
      evalSteps,
      evaluateAtEnd: evalSet !== null,
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

    // ---------------------------------------------------------------- the final model: a normal HF folder
    if (lora) {
      saveLoraAdapter(outputDir, lora, { baseModelNameOrPath: cfg.model_name_or_path });
      for (const f of TOKENIZER_FILES) if (fs.existsSync(path.join(cfg.model_name_or_path, f))) fs.copyFileSync(path.join(cfg.model_name_or_path, f), path.join(outputDir, f));
      if (cfg.merge_lora) {
        lora.merge();
        saveModel(model, path.join(outputDir, 'merged'));
      }
    } else saveModel(model, outputDir);
    const summary = {
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
      examples: train.length,
      eval_examples: evalSet?.length ?? 0,
      skipped_invalid_rows: train.stats.skipped + (evalSet?.stats.skipped ?? 0),
      truncated_examples: train.stats.truncated + (evalSet?.stats.truncated ?? 0),
      trainable_parameters: trainableParameters,
      total_parameters: totalParameters,
      ...(result.lastEval ?? {}),
    };
    fs.writeFileSync(path.join(outputDir, 'train_results.json'), `${JSON.stringify(summary, null, 2)}\n`);
    logger.summary(Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, typeof v === 'number' || typeof v === 'string' ? v : String(v)])));
  } finally {
    logger.close();
    await session.dispose();
  }
  return {
    ...result,
    outputDir,
    trainExamples: train.length,
    evalExamples: evalSet?.length ?? 0,
    trainableParameters,
    totalParameters,
    datasetStats: train.stats,
  };
}

/**
 * The learning-rate range test on an sft config: the same model, data, batches and optimizer as `alignkit sft`
 * would use, the schedule replaced by an exponential ramp. Writes lr_find.json and lr_find.svg to output_dir.
 */
export async function runSftLrFind(cfg: SftConfig, o: Partial<LrFindOptions>): Promise<LrFindResult> {
  const session = await prepareSft({ ...cfg, eval_file: null, eval_fraction: 0 });
  try {
    const r = await lrRangeTest(session.task, session.optimizer, { gradientAccumulationSteps: cfg.gradient_accumulation_steps, maxGradNorm: cfg.max_grad_norm, ...o });
    fs.mkdirSync(cfg.output_dir, { recursive: true });
    writeAtomically('lr-find', path.join(cfg.output_dir, 'lr_find.json'), (f) => f.write(new TextEncoder().encode(`${JSON.stringify(r, null, 2)}\n`)));
    writeAtomically('lr-find', path.join(cfg.output_dir, 'lr_find.svg'), (f) => f.write(new TextEncoder().encode(lrFindSvg(r))));
    return r;
  } finally {
    await session.dispose();
  }
}
