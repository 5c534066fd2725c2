// KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization"; TRL KTOTrainer):
// learns from unpaired examples labelled desirable / undesirable. With r(x,y) = log π(y|x) − log π_ref(y|x)
// and the reference point z0 = max(0, KL estimate) (detached), the per-example losses are
//   desirable:   λ_D (1 − σ(β (r − z0)))        undesirable:   λ_U (1 − σ(β (z0 − r)))
// z0 is estimated on mismatched pairs — prompt i with the completion of another example — as the batch mean of
// log π − log π_ref there (TRL pairs within a batch; here example i is paired with example (i+1) mod n of the
// dataset, fixed once, so the reference side can be precomputed and cached like DPO's).

import fs from 'node:fs';
import path from 'node:path';
import { AlignkitError, mulScalar, noGrad, sum, tensor, tidy } from '../tensor/index.ts';
import type { KtoConfig } from '../train/config.ts';
import { BatchSampler, type LoaderState } from '../data/loader.ts';
import { collateUnpaired, type UnpairedBatch } from '../data/pair_collate.ts';
import type { TokenizedUnpaired } from '../data/preference.ts';
import type { UnpairedDataset } from '../data/preference_dataset.ts';
import { openSafetensors, saveSafetensors } from '../io/safetensors.ts';
import type { PretrainedLM } from '../models/index.ts';
import type { LoopResult, TrainTask } from '../train/loop.ts';
import { loadPolicy, makeOptimizer, prepareOutputDir, runTrainer, totalStepsOf, type Policy } from '../train/session.ts';
import { ktoLoss } from './preference_losses.ts';
import { makeReference, openUnpaired, type ReferencePolicy } from './preference.ts';
import { sequenceLogps } from './sequence_logps.ts';

interface KtoMicroBatch {
  batch: UnpairedBatch;
  /** The same prompts with mismatched completions (the KL reference point). */
  mismatched: UnpairedBatch;
  indices: number[];
}

interface KtoReference {
  /** log π_ref of each example's completion, and of its mismatched completion. */
  matched: Float32Array;
  mismatched: Float32Array;
}

function rowLogps(model: PretrainedLM, b: UnpairedBatch) {
  return sequenceLogps(model, { rows: b.rows, seq: b.seq, inputIds: b.inputIds, attentionMask: b.attentionMask, labels: b.labels });
}

async function rowsOf(ds: UnpairedDataset, indices: readonly number[]): Promise<{ matched: TokenizedUnpaired[]; mismatched: TokenizedUnpaired[] }> {
  const matched = await Promise.all(indices.map((i) => ds.get(i)));
  const others = await Promise.all(indices.map((i) => ds.get((i + 1) % ds.length)));
  const mismatched = matched.map((m, k) => ({ ...m, completionIds: others[k].completionIds }));
  return { matched, mismatched };
}

async function precomputeKtoReference(ds: UnpairedDataset, ref: ReferencePolicy, pad: number, bs: number, file: string | null): Promise<KtoReference> {
  if (file && fs.existsSync(file)) {
    const r = openSafetensors(file);
    try {
      const matched = Float32Array.from(noGrad(() => tidy(() => r.load('matched').toArray())));
      const mismatched = Float32Array.from(noGrad(() => tidy(() => r.load('mismatched').toArray())));
      if (matched.length !== ds.length) throw new AlignkitError(`${file}: cached reference log-probs are for ${matched.length} examples, the dataset has ${ds.length}`);
      return { matched, mismatched };
    } finally {
      r.close();
    }
  }
  const matched = new Float32Array(ds.length);
  const mismatched = new Float32Array(ds.length);
  for (let i = 0; i < ds.length; i += bs) {
    const idx = Array.from({ length: Math.min(bs, ds.length - i) }, (_, k) => i + k);
    const rows = await rowsOf(ds, idx);
    ref.run((m) =>
      tidy(() => {
        matched.set(rowLogps(m, collateUnpaired(rows.matched, { padTokenId: pad })).logps.toArray(), i);
        mismatched.set(rowLogps(m, collateUnpaired(rows.mismatched, { padTokenId: pad })).logps.toArray(), i);
      }),
    );
  }
  if (file) noGrad(() => tidy(() => saveSafetensors(file, { matched: tensor(matched), mismatched: tensor(mismatched) }, { metadata: { format: 'alignkit-reference-logps' } })));
  return { matched, mismatched };
}

function ktoStep(cfg: KtoConfig, policy: Policy, mb: KtoMicroBatch, ref: { matched: Float32Array; mismatched: Float32Array }) {
  // the KL reference point: policy log-probs on mismatched pairs, no gradient (TRL detaches it too)
  const klPolicy = noGrad(() => tidy(() => rowLogps(policy.model, mb.mismatched).logps.toArray()));
  let kl = 0;
  klPolicy.forEach((v, i) => (kl += v - ref.mismatched[i]));
  kl /= Math.max(klPolicy.length, 1);
  const p = rowLogps(policy.model, mb.batch);
  const r = ktoLoss(p.logps, tensor(ref.matched), mb.batch.desirable, kl, { beta: cfg.beta, desirableWeight: cfg.desirable_weight, undesirableWeight: cfg.undesirable_weight });
  const desirable = Array.from(mb.batch.desirable);
  return { losses: r.losses, kl, chosenRewards: r.chosenRewards, rejectedRewards: r.rejectedRewards, logps: p.logps.toArray(), desirable };
}

function meanOf(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return a.length ? s / a.length : 0;
}

export async function runKto(cfg: KtoConfig, o: { console?: boolean } = {}): Promise<LoopResult & { outputDir: string; examples: number }> {
  const { outputDir } = prepareOutputDir('kto', cfg);
  const policy = loadPolicy(cfg);
  const { train, evalSet } = await openUnpaired(cfg, policy);
  const pad = policy.padTokenId;
  const bs = cfg.per_device_eval_batch_size;
  const refPolicy = makeReference(cfg, policy);
  let trainRef: KtoReference | null = null;
  let evalRef: KtoReference | null = null;
  const liveRef = cfg.precompute_ref_log_probs ? null : refPolicy;
  if (cfg.precompute_ref_log_probs) {
    fs.mkdirSync(outputDir, { recursive: true });
    trainRef = await precomputeKtoReference(train, refPolicy, pad, bs, path.join(outputDir, 'ref_logps_train.safetensors'));
    if (evalSet) evalRef = await precomputeKtoReference(evalSet, refPolicy, pad, bs, path.join(outputDir, 'ref_logps_eval.safetensors'));
    refPolicy.dispose();
  }
  const refFor = (mb: KtoMicroBatch, cache: KtoReference | null) => {
    if (cache) return { matched: Float32Array.from(mb.indices, (i) => cache.matched[i]), mismatched: Float32Array.from(mb.indices, (i) => cache.mismatched[i]) };
    const r = liveRef as ReferencePolicy;
    return r.run((m) => tidy(() => ({ matched: Float32Array.from(rowLogps(m, mb.batch).logps.toArray()), mismatched: Float32Array.from(rowLogps(m, mb.mismatched).logps.toArray()) })));
  };
  const B = cfg.per_device_train_batch_size;
  const sampler = new BatchSampler(train.length, { batchSize: B, seed: cfg.data_seed ?? cfg.seed, dropLast: cfg.dataloader_drop_last });
  const { totalSteps, stepsPerEpoch } = totalStepsOf(cfg, sampler.batchesPerEpoch);
  const microBatchOf = async (ds: UnpairedDataset, indices: number[]): Promise<KtoMicroBatch> => {
    const rows = await rowsOf(ds, indices);
    return { batch: collateUnpaired(rows.matched, { padTokenId: pad }), mismatched: collateUnpaired(rows.mismatched, { padTokenId: pad }), indices };
  };
  const metricsOf = (s: ReturnType<typeof ktoStep>): Record<string, number> => {
    const chosen = s.chosenRewards.filter((_, i) => s.desirable[i]);
    const rejected = s.rejectedRewards.filter((_, i) => !s.desirable[i]);
    return { kl: s.kl, 'rewards/chosen': meanOf(chosen), 'rewards/rejected': meanOf(rejected), 'logps/chosen': meanOf(s.logps.filter((_, i) => s.desirable[i])), 'logps/rejected': meanOf(s.logps.filter((_, i) => !s.desirable[i])) };
  };
  let microBatches = 0;
  const task: Omit<TrainTask<KtoMicroBatch>, 'saveModel' | 'loadModel'> = {
    async nextMicroBatch() {
      microBatches++;
      return microBatchOf(train, sampler.next().indices);
    },
    lossUnits: (mb) => mb.batch.rows,
    tokens: (mb) => 2 * mb.batch.rows * mb.batch.seq,
    forwardBackward(mb, normalizer) {
      const ref = refFor(mb, trainRef);
      return tidy(() => {
        const s = ktoStep(cfg, policy, mb, ref);
        const loss = mulScalar(sum(s.losses), 1 / normalizer);
        const value = loss.item();
        loss.backward();
        const m = metricsOf(s);
        for (const k of Object.keys(m)) m[k] *= mb.batch.rows / normalizer;
        return { loss: value, metrics: m };
      });
    },
    evaluate: evalSet
      ? async () => {
          const es = evalSet;
          let loss = 0;
          const sums: Record<string, number> = {};
          for (let i = 0; i < es.length; i += bs) {
            const mb = await microBatchOf(es, Array.from({ length: Math.min(bs, es.length - i) }, (_, k) => i + k));
            const ref = refFor(mb, evalRef);
            const r = noGrad(() => tidy(() => {
              const s = ktoStep(cfg, policy, mb, ref);
              return { loss: sum(s.losses).item(), m: metricsOf(s) };
            }));
            loss += r.loss;
            for (const [k, v] of Object.entries(r.m)) sums[k] = (sums[k] ?? 0) + v * mb.batch.rows;
          }
          return { loss: loss / es.length, ...Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / es.length])) };
        }
      : undefined,
    epoch: () => (microBatches * B) / Math.max(train.length, 1),
    state: () => ({ data: { sampler: sampler.state(), microBatches }, rng: {} }),
    restore(s) {
      const d = s.data as { sampler: LoaderState; microBatches: number };
      sampler.restore(d.sampler);
      microBatches = d.microBatches;
    },
  };
  const optimizer = makeOptimizer(cfg, policy.trainable);
  try {
    const r = await runTrainer(cfg, {
      name: 'kto', policy, task, optimizer, totalSteps, stepsPerEpoch, hasEval: evalSet !== null, console: o.console,
      summary: () => ({ examples: train.length, eval_examples: evalSet?.length ?? 0, skipped_invalid_rows: train.stats.skipped }),
    });
    return { ...r, examples: train.length };
  } finally {
    optimizer.dispose();
    liveRef?.dispose();
    await train.close();
    await evalSet?.close();
    policy.dispose();
  }
}
