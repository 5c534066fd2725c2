// Reward modelling (Ouyang et al. 2022; TRL RewardTrainer): a scalar head on a causal LM, read at the last real
// token of prompt + response, trained on preference pairs with the Bradley–Terry loss
//   L = −log σ(r_c − r_r − m)  (m = the pair's margin, 0 when absent)  [+ c·mean((r_c + r_r)²) centering]
// and saved as a Hugging Face *ForSequenceClassification checkpoint (`score.weight`, num_labels 1) that
// transformers' AutoModelForSequenceClassification and alignkit's loadModel both read.
// Metrics: accuracy (r_c > r_r), margin (mean r_c − r_r), rewards/chosen and rewards/rejected (means).

import fs from 'node:fs';
import path from 'node:path';
import { intTensor, narrow, noGrad, reshape, tidy, type Tensor } from '../tensor/index.ts';
import type { PretrainedLM } from '../models/index.ts';
import { loadModel } from '../models/index.ts';
import type { RewardConfig } from '../train/config.ts';
import { writeAtomically } from '../io/file.ts';
import type { PairBatch } from '../data/pair_collate.ts';
import { rewardModelLoss } from './preference_losses.ts';
import { evaluatePairs, runPairTrainer, type PairMethod, type PairRunResult } from './preference.ts';

/** Scores [rows] of a batch of token rows at each row's last real token. */
export function rowScores(model: PretrainedLM, b: { rows: number; seq: number; inputIds: Int32Array; attentionMask: Int32Array }): Tensor {
  const mask = intTensor(b.attentionMask, [b.rows, b.seq]);
  const h = model.forward(intTensor(b.inputIds, [b.rows, b.seq]), { attentionMask: mask });
  return reshape(model.scores(h, mask), [b.rows]);
}

function pairScores(model: PretrainedLM, b: PairBatch): { chosen: Tensor; rejected: Tensor } {
  const s = rowScores(model, { rows: 2 * b.pairs, seq: b.seq, inputIds: b.inputIds, attentionMask: b.attentionMask });
  return { chosen: narrow(s, 0, 0, b.pairs), rejected: narrow(s, 0, b.pairs, b.pairs) };
}

/** config.json of a saved causal LM rewritten as its *ForSequenceClassification twin with one label. */
export function writeRewardConfig(dir: string): void {
  const file = path.join(dir, 'config.json');
  const cfg = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  const archs = (cfg.architectures as string[] | undefined) ?? [];
  cfg.architectures = archs.map((a) => a.replace(/(ForCausalLM|LMHeadModel)$/, 'ForSequenceClassification'));
  cfg.num_labels = 1;
  cfg.id2label = { 0: 'LABEL_0' };
  cfg.label2id = { LABEL_0: 0 };
  // HF's sequence classifiers find each row's last token through pad_token_id
  if (cfg.pad_token_id === null || cfg.pad_token_id === undefined) cfg.pad_token_id = Array.isArray(cfg.eos_token_id) ? cfg.eos_token_id[0] : (cfg.eos_token_id ?? 0);
  writeAtomically('config', file, (f) => f.write(new TextEncoder().encode(`${JSON.stringify(cfg, null, 2)}\n`)));
}

export const REWARD_METHOD: PairMethod<RewardConfig> = {
  name: 'reward',
  needsReference: () => false,
  policyOptions: {
    prepare: (model) => {
      if (!model.scoreHead) model.attachScoreHead(1, 0);
    },
    alwaysTrain: (model) => (model.scoreHead ? model.scoreHead.namedParameters() : new Map()),
  },
  loss({ cfg, policy, batch }) {
    const s = pairScores(policy.model, batch);
    const r = rewardModelLoss(s.chosen, s.rejected, batch.margins, cfg.center_rewards_coefficient ?? 0);
    const c = s.chosen.toArray();
    const rj = s.rejected.toArray();
    return {
      losses: r.loss,
      metrics: { accuracy: c.map((v, i) => (v > rj[i] ? 1 : 0)), margin: c.map((v, i) => v - rj[i]), 'rewards/chosen': c, 'rewards/rejected': rj },
    };
  },
  afterSave: (_cfg, policy, outputDir) => {
    if (!policy.lora) writeRewardConfig(outputDir);
    else if (fs.existsSync(path.join(outputDir, 'merged', 'config.json'))) writeRewardConfig(path.join(outputDir, 'merged'));
  },
};

export const runReward = (cfg: RewardConfig, o: { console?: boolean } = {}): Promise<PairRunResult> => runPairTrainer(cfg, REWARD_METHOD, o);
export const evaluateReward = (cfg: RewardConfig): Promise<Record<string, number>> => evaluatePairs(cfg, REWARD_METHOD);

/** A loaded reward model that scores token rows (rm-score, best-of-n, win rates, PPO rewards). */
export class RewardScorer {
  readonly model: PretrainedLM;
  constructor(dir: string) {
    this.model = loadModel(dir, { trainable: false });
    if (!this.model.scoreHead) throw new Error(`${dir}: not a reward model (no score.weight; train one with alignkit reward)`);
  }
  /** One score per row of token ids (ragged; right-padded internally). */
  score(rows: readonly (readonly number[])[], padTokenId = 0): number[] {
    if (rows.length === 0) return [];
    const T = Math.max(...rows.map((r) => r.length));
    const ids = new Int32Array(rows.length * T).fill(padTokenId);
    const mask = new Int32Array(rows.length * T);
    rows.forEach((r, i) => {
      ids.set(r, i * T);
      mask.fill(1, i * T, i * T + r.length);
    });
    return noGrad(() => tidy(() => rowScores(this.model, { rows: rows.length, seq: T, inputIds: ids, attentionMask: mask }).toArray()));
  }
  dispose(): void {
    this.model.dispose();
  }
}

