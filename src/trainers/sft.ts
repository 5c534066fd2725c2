// Supervised fine-tuning: next-token cross-entropy on the completion / assistant tokens of a dataset, full
// fine-tuning or LoRA, through the shared training loop (src/train/loop.ts). This file only says what SFT is:
// how a batch becomes a loss, how evaluation is computed, what the checkpoint holds.
//
// Loss:  L = -(1/N) Σ_{b,t: labels[b,t+1] ≠ -100} log p(labels[b,t+1] | ids[b,≤t])   with N the target tokens of
// the whole optimizer step (all accumulated micro-batches), computed by the fused chunked LM-head kernel so the
// [tokens, vocab] logits never exist in memory.

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, fusedCrossEntropy, intTensor, reshape } from '../tensor/index.ts';
import type { Optimizer } from '../optim/index.ts';
import { SftDataset, type SftDatasetOptions } from '../data/sft_dataset.ts';
import { openRowSource } from '../data/source.ts';
import { BatchSampler, splitTrainEval, type LoaderState } from '../data/loader.ts';
import { collate, type Batch } from '../data/collate.ts';
import { trainDataPath, type SftConfig } from '../train/config.ts';
import type { LoopResult, TrainTask } from '../train/loop.ts';
import { lrRangeTest, type LrFindOptions, type LrFindResult } from '../train/lr_find.ts';
import { lrFindSvg } from '../train/plot.ts';
import { writeAtomically } from '../io/file.ts';
import { ForgettingRegularizer } from '../train/regularizers.ts';
import { loadPolicy, makeOptimizer, prepareOutputDir, runTrainer, totalStepsOf, type Policy } from '../train/session.ts';
import { batchNll, countTargets, forwardInputs, sftLossBackward, shiftLabels } from './sft_loss.ts';

export { batchNll, sftLossBackward, shiftLabels } from './sft_loss.ts';

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

export interface RunSftOptions {
  /** Progress lines when not logging to a TTY bar (tests pass a sink). */
  console?: boolean;
}

/** Everything a run (or an lr range test) works with, built from the config. dispose() frees it all. */
interface SftSession {
  policy: Policy;
  train: SftDataset;
  evalSet: SftDataset | null;
  task: Omit<TrainTask<MicroBatch>, 'saveModel' | 'loadModel'>;
  optimizer: Optimizer<{ lr: number }>;
  totalSteps: number;
  stepsPerEpoch: number;
  dispose(): Promise<void>;
}

async function prepareSft(cfg: SftConfig): Promise<SftSession> {
  const trainPath = trainDataPath(cfg);

  // ---------------------------------------------------------------- model, tokenizer, adapters
  const policy = loadPolicy(cfg);
  const { model, tok, chatTemplate, trainable, padTokenId } = policy;

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
  let microBatches = 0;
  const { totalSteps, stepsPerEpoch } = totalStepsOf(cfg, sampler.batchesPerEpoch);

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
  const task: Omit<TrainTask<MicroBatch>, 'saveModel' | 'loadModel'> = {
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
    state: () => ({ data: { sampler: sampler.state(), replay: replaySampler?.state() ?? null, microBatches }, rng: {} }),
    restore(s) {
      const d = s.data as { sampler: LoaderState; replay: LoaderState | null; microBatches: number };
      sampler.restore(d.sampler);
      if (replaySampler && d.replay) replaySampler.restore(d.replay);
      microBatches = d.microBatches;
    },
  };

  const optimizer = makeOptimizer(cfg, trainable);
  return {
    policy, train, evalSet, task, optimizer, totalSteps, stepsPerEpoch,
    async dispose() {
      await train.close();
      await evalSet?.close();
      await rehearsal?.close();
      optimizer.dispose();
      regularizer?.dispose();
      policy.dispose();
    },
  };
}

export async function runSft(cfg: SftConfig, runOpts: RunSftOptions = {}): Promise<SftResult> {
  prepareOutputDir('sft', cfg); // refuse a used output_dir before the (slow) data pass
  const session = await prepareSft(cfg);
  const { policy, train, evalSet } = session;
  try {
    const r = await runTrainer(cfg, {
      name: 'sft', policy, task: session.task, optimizer: session.optimizer, totalSteps: session.totalSteps, stepsPerEpoch: session.stepsPerEpoch,
      hasEval: evalSet !== null, console: runOpts.console,
      summary: () => ({
        examples: train.length,
        eval_examples: evalSet?.length ?? 0,
        skipped_invalid_rows: train.stats.skipped + (evalSet?.stats.skipped ?? 0),
        truncated_examples: train.stats.truncated + (evalSet?.stats.truncated ?? 0),
      }),
    });
    return {
      ...r,
      trainExamples: train.length,
      evalExamples: evalSet?.length ?? 0,
      trainableParameters: policy.trainableParameters,
      totalParameters: policy.totalParameters,
      datasetStats: train.stats,
    };
  } finally {
    await session.dispose();
  }
}

/**
 * The learning-rate range test on an sft config: the same model, data, batches and optimizer as `alignkit sft`
 * would use, the schedule replaced by an exponential ramp. Writes lr_find.json and lr_find.svg to output_dir.
 */
export async function runSftLrFind(cfg: SftConfig, o: Partial<LrFindOptions>): Promise<LrFindResult> {
  const session = await prepareSft({ ...cfg, eval_file: null, eval_fraction: 0 });
  try {
    const r = await lrRangeTest({ ...session.task, saveModel: () => {}, loadModel: () => {} }, session.optimizer, { gradientAccumulationSteps: cfg.gradient_accumulation_steps, maxGradNorm: cfg.max_grad_norm, ...o });
    fs.mkdirSync(cfg.output_dir, { recursive: true });
    writeAtomically('lr-find', path.join(cfg.output_dir, 'lr_find.json'), (f) => f.write(new TextEncoder().encode(`${JSON.stringify(r, null, 2)}\n`)));
    writeAtomically('lr-find', path.join(cfg.output_dir, 'lr_find.svg'), (f) => f.write(new TextEncoder().encode(lrFindSvg(r))));
    return r;
  } finally {
    await session.dispose();
  }
}
