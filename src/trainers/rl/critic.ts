// PPO's separate critic (TRL PPOTrainer's `value_model`, here `value_model_path`): a second model whose value head
// predicts the values, instead of a head on the policy's own trunk. It reads the policy's token ids, so its
// vocabulary must cover the policy's. Initialisation: a value head already in the folder (v_head.*, e.g. a critic
// saved by an earlier run) is used as is; a reward model folder (score.weight, from `alignkit reward`) gets a value
// head initialised from its score head — TRL's recipe of starting the critic from the reward model; any other
// causal LM gets a fresh value head.
//
// Training: jointly with the policy, as TRL's PolicyAndValueWrapper does: one optimizer over both parameter sets,
// one loss (policy loss + vf_coef · value loss), one global gradient-norm clip. Its tensors are named 'critic.' +
// their HF name in the optimizer. It is written to <checkpoint>/critic/ and <output_dir>/critic/ (a Hugging Face
// folder with v_head.*), and a resumed run loads it back from the checkpoint.

import path from 'node:path';
import { AlignkitError, noGrad, tidy, type Tensor } from '../../tensor/index.ts';
import { loadModel, saveModel, type PretrainedLM } from '../../models/index.ts';
import { copyWeightsFromFolder, type Policy } from '../../train/session.ts';

/** Subfolder of a checkpoint and of output_dir holding the critic. */
export const CRITIC_DIR = 'critic';
/** Prefix of the critic's tensor names among the optimizer's trainable tensors. */
export const CRITIC_PREFIX = 'critic.';

/** How the critic's value head was initialised. */
export type CriticInit = 'value_head' | 'score_head' | 'fresh';

export interface Critic {
  model: PretrainedLM;
  init: CriticInit;
  /** Every critic tensor (body and value head), by HF name. */
  trainable: Map<string, Tensor>;
}

/** Loads the critic folder for a policy with `policyVocab` tokens; see the file comment for the value head. */
export function loadCritic(dir: string, policyVocab: number, seed: number): Critic {
  const model = loadModel(dir, { trainable: true });
  try {
    if (model.config.vocabSize < policyVocab)
      throw new AlignkitError(
        `value_model_path: ${dir} has a vocabulary of ${model.config.vocabSize} tokens but the policy's has ${policyVocab}; the critic reads the policy's token ids, so it needs the policy's tokenizer (start it from the policy, the SFT model or a reward model trained from it)`,
      );
    let init: CriticInit = 'value_head';
    if (!model.valueHead) {
      const head = model.attachValueHead(seed);
      const score = model.scoreHead;
      if (score && score.weight.shape[0] === 1) {
        // the reward model's score head (score = h · w, no bias) as the starting value function
        noGrad(() => tidy(() => {
          (head.weight.data as Float32Array).set(score.weight.data as Float32Array);
          (head.bias.data as Float32Array).fill(0);
        }));
        init = 'score_head';
      } else init = 'fresh';
    }
    if (model.scoreHead) {
      model.scoreHead.dispose();
      model.scoreHead = null; // not part of the critic: neither trained nor saved
    }
    const trainable = model.namedParameters();
    for (const t of trainable.values()) t.requireGrad(true);
    return { model, init, trainable };
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/**
 * The policy with the critic trained alongside: its trainable tensors gain the critic's (prefixed), checkpoints and
 * the final output gain a critic/ folder, resume loads it back, dispose frees both.
 */
export function withCritic(policy: Policy, critic: Critic): Policy {
  const trainable = new Map(policy.trainable);
  let criticParameters = 0;
  for (const [name, t] of critic.trainable) {
    trainable.set(CRITIC_PREFIX + name, t);
    criticParameters += t.size;
  }
  return {
    ...policy,
    trainable,
    trainableParameters: policy.trainableParameters + criticParameters,
    totalParameters: policy.totalParameters + criticParameters,
    saveCheckpointModel(dir) {
      policy.saveCheckpointModel(dir);
      saveModel(critic.model, path.join(dir, CRITIC_DIR), { dtype: 'float32' });
    },
    loadCheckpointModel(dir) {
      policy.loadCheckpointModel(dir);
      copyWeightsFromFolder(path.join(dir, CRITIC_DIR), critic.trainable);
    },
    saveFinal(outputDir) {
      policy.saveFinal(outputDir);
      saveModel(critic.model, path.join(outputDir, CRITIC_DIR));
    },
    dispose() {
      critic.model.dispose();
      policy.dispose();
    },
  };
}
