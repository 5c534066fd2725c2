// GRPO and RLOO end to end on the toy task (see ppo_e2e.test.ts): both critic-free methods, sharing PPO's rollout
// code, raise the mean reward of the rule-breaking SFT policy from ≤ 0.2 to ≥ 0.7 with a fixed seed; the group
// metrics are logged; a reward function that throws for some samples drops them (with a warning naming the prompt)
// and training continues.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GrpoConfigSchema, RlooConfigSchema, parseConfig } from '../../../src/train/config.ts';
import { readMetrics } from '../../../src/train/logging.ts';
import { runGrpo } from '../../../src/trainers/rl/grpo.ts';
import { runRloo } from '../../../src/trainers/rl/rloo.ts';
import { prepareToyPolicy, toyMeanReward, TOY_PROMPTS, TOY_REWARD_MODULE } from '../../../src/trainers/rl/toy_task.ts';

describe('GRPO and RLOO on the toy task', () => {
  let dir = '';
  let sft = '';
  let before0 = 0;
  const common = () => ({
    model_name_or_path: sft, dataset_path: TOY_PROMPTS, reward_funcs: [`module:${TOY_REWARD_MODULE}`], report_to: ['none'], disable_tqdm: true,
    save_strategy: 'no', seed: 0, learning_rate: 1e-3,
  });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-grpo-e2e-'));
    sft = await prepareToyPolicy(dir, { steps: 120, seed: 0 });
    before0 = await toyMeanReward(sft);
    assert.ok(before0 <= 0.2, `the SFT policy already says yes too often: ${before0}`);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('GRPO: group-normalised advantages raise the mean reward to >= 0.7', async () => {
    const out = join(dir, 'grpo');
    const r = await runGrpo(
      parseConfig(GrpoConfigSchema, { overrides: { ...common(), output_dir: out, per_device_train_batch_size: 32, num_generations: 8, max_completion_length: 8, max_steps: 30, beta: 0.04 } }),
      { console: false },
    );
    assert.equal(r.iterations.length, 30);
    const afterReward = await toyMeanReward(out);
    assert.ok(afterReward >= 0.7, `GRPO: mean reward ${before0} -> ${afterReward}`);
    const m = readMetrics(out);
    for (const k of ['objective/scores', 'objective/kl', 'reward_std', 'frac_reward_zero_std', 'kl', 'clip_ratio/region_mean', 'loss/policy_avg', 'val/ratio', 'completions/mean_length'])
      assert.ok(k in m[0] && Number.isFinite(m[0][k]), `${k} not logged`);
    // one update per generation: every step is on-policy (ratio 1 up to float rounding between batch layouts)
    for (const x of m) assert.ok(Math.abs(x['val/ratio'] - 1) < 1e-4, `val/ratio ${x['val/ratio']} at step ${x.step}`);
  });

  it('RLOO: the leave-one-out baseline raises the mean reward to >= 0.7', async () => {
    const out = join(dir, 'rloo');
    const r = await runRloo(
      parseConfig(RlooConfigSchema, { overrides: { ...common(), output_dir: out, per_device_train_batch_size: 16, rloo_k: 4, response_length: 8, max_steps: 120, num_ppo_epochs: 4 } }),
      { console: false },
    );
    assert.equal(r.iterations.length, 30);
    const afterReward = await toyMeanReward(out);
    assert.ok(afterReward >= 0.7, `RLOO: mean reward ${before0} -> ${afterReward}`);
    const m = readMetrics(out);
    for (const k of ['objective/scores', 'objective/kl', 'objective/rlhf_reward', 'objective/non_score_reward', 'policy/approxkl_avg', 'policy/clipfrac_avg', 'val/ratio'])
      assert.ok(k in m[0] && Number.isFinite(m[0][k]), `${k} not logged`);
  });

  it('a reward that throws for some samples: they are dropped with a warning naming the prompt, training continues', async () => {
    const mod = join(dir, 'flaky.mjs');
    writeFileSync(mod, "export function score(prompt, response) { if (response.trim() === 'no') throw new Error('refusing to score no'); return response.includes('yes') ? 1 : 0; }\n");
    const warnings: string[] = [];
    const out = join(dir, 'flaky');
    const r = await runGrpo(
      parseConfig(GrpoConfigSchema, { overrides: { ...common(), reward_funcs: [`module:${mod}`], output_dir: out, per_device_train_batch_size: 32, num_generations: 8, max_completion_length: 8, max_steps: 3 } }),
      { console: false, warn: (w) => warnings.push(w) },
    );
    assert.equal(r.globalStep, 3);
    assert.ok(r.droppedSamples > 0, 'the SFT policy says " no" often enough to trigger the failure');
    assert.equal(warnings.length, r.droppedSamples);
    assert.match(warnings[0], /^iteration \d+: dropped sample \d+ \(prompt .*say_yes_prompts\.jsonl:\d+ '[^']+', response ' no'\) from the batch: flaky threw Error: refusing to score no$/);
    const m = readMetrics(out);
    assert.equal(m.reduce((s, x) => s + x['rollout/dropped_samples'], 0), r.droppedSamples);
    assert.equal(JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')).dropped_samples, r.droppedSamples);
  });
});
