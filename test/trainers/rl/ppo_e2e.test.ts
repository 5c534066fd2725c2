// PPO end to end on the toy task shipped in the repo (src/trainers/rl/toy_task.ts, data/rl/): a tiny byte-level chat
// model SFT'd on answers where only 1 in 8 is "yes" says "yes" rarely; PPO with the programmatic reward (fraction
// of the response's words that are "yes") makes it say "yes", with a fixed seed:
//   - mean reward of sampled responses (temperature 0.7, 8 per prompt) ≤ 0.2 before, ≥ 0.7 after;
//   - objective/kl stays below 6 nats at every iteration (the stated bound: the KL of a policy that always says
//     " yes" to a reference that does ~1 time in 10 is about 2.5 nats);
//   - every TRL metric is logged, the reward/KL plot and sample generations are written;
//   - the first minibatch is exactly on-policy (ratio 1: rollout and training log-probs agree);
//   - a run resumed from a checkpoint in the middle of a rollout's PPO epochs ends with the same weights and
//     metrics as the uninterrupted run;
//   - the KL blow-up guard aborts with a message, or raises kl_coef with a warning;
//   - missing_eos_penalty and the adaptive KL controller (target_kl) act as documented;
//   - with LoRA the reference is the policy with its adapters switched off.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PpoConfigSchema, parseConfig } from '../../../src/train/config.ts';
import { readMetrics } from '../../../src/train/logging.ts';
import { runPpo } from '../../../src/trainers/rl/ppo.ts';
import { prepareToyPolicy, toyMeanReward, TOY_PROMPTS, TOY_REWARD_MODULE } from '../../../src/trainers/rl/toy_task.ts';

const KL_BOUND = 6;

describe('PPO on the toy task', () => {
  let dir = '';
  let sft = '';
  const config = (over: Record<string, unknown>) =>
    parseConfig(PpoConfigSchema, {
      overrides: {
        model_name_or_path: sft, dataset_path: TOY_PROMPTS, reward_funcs: [`module:${TOY_REWARD_MODULE}`], per_device_train_batch_size: 16,
        response_length: 8, learning_rate: 5e-4, num_ppo_epochs: 4, report_to: ['none'], disable_tqdm: true, save_strategy: 'no', seed: 0,
        ...over,
      },
    });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-ppo-e2e-'));
    sft = await prepareToyPolicy(dir, { steps: 120, seed: 0 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('raises the mean reward from <= 0.2 to >= 0.7 with objective/kl below the bound', async () => {
    const before = await toyMeanReward(sft);
    assert.ok(before <= 0.2, `the SFT policy already says yes too often: ${before}`);
    const out = join(dir, 'ppo');
    const r = await runPpo(config({ output_dir: out, max_steps: 120, report_to: ['tensorboard'], num_sample_generations: 5 }), { console: false });
    assert.equal(r.globalStep, 120);
    assert.equal(r.iterations.length, 30);
    const afterReward = await toyMeanReward(out);
    assert.ok(afterReward >= 0.7, `mean reward after PPO ${afterReward} (before ${before})`);
    for (const h of r.iterations) assert.ok(h.kl < KL_BOUND, `objective/kl ${h.kl} at iteration ${h.iteration} exceeds ${KL_BOUND}`);
    assert.equal(r.iterations[0].kl, 0, 'the first rollout is the reference itself');

    const m = readMetrics(out);
    assert.equal(m.length, 120, 'one line per optimizer step (logging_steps 1)');
    for (const k of [
      'objective/scores', 'objective/non_score_reward', 'objective/rlhf_reward', 'objective/kl', 'objective/entropy', 'objective/kl_coef',
      'policy/approxkl_avg', 'policy/clipfrac_avg', 'policy/entropy_avg', 'loss/policy_avg', 'loss/value_avg', 'val/clipfrac_avg', 'val/ratio',
      'val/num_eos_tokens', 'completions/mean_length', 'completions/repetition_rate', 'completions/clipped_ratio', 'rollout/dropped_samples', 'episode',
    ])
      assert.ok(k in m[0] && Number.isFinite(m[0][k]), `${k} not logged`);
    // the first minibatch of the first rollout is on-policy: ratio 1, no clipping, no policy KL
    assert.ok(Math.abs(m[0]['val/ratio'] - 1) < 1e-5, `val/ratio ${m[0]['val/ratio']}`);
    assert.ok(m[0]['policy/approxkl_avg'] < 1e-10 && m[0]['policy/clipfrac_avg'] === 0);
    assert.equal(m[0].episode, 16);
    assert.equal(m[119].episode, 480);
    // non_score_reward = −β · KL, rlhf_reward = score + non_score_reward
    const last = m[116];
    assert.ok(Math.abs(last['objective/non_score_reward'] + 0.05 * last['objective/kl']) < 1e-6);
    assert.ok(Math.abs(last['objective/rlhf_reward'] - last['objective/scores'] - last['objective/non_score_reward']) < 1e-6);

    const svg = readFileSync(join(out, 'reward_kl.svg'), 'utf8');
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    const samples = readFileSync(join(out, 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { iteration: number; prompt: string; response: string; score: number });
    assert.deepEqual([...new Set(samples.map((s) => s.iteration))], [1, 7, 13, 19, 25]);
    assert.ok(samples.every((s) => typeof s.response === 'string' && Number.isFinite(s.score)));
    assert.ok(existsSync(join(out, 'runs')), 'TensorBoard events');
    const results = JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')) as Record<string, number>;
    assert.equal(results.iterations, 30);
    assert.equal(results.dropped_samples, 0);
  });

  it('resumes exactly from a checkpoint in the middle of a rollout', async () => {
    const a = join(dir, 'full');
    const common = { max_steps: 10, save_strategy: 'steps', save_steps: 6, per_device_train_batch_size: 8, num_mini_batches: 2, gradient_accumulation_steps: 2, num_ppo_epochs: 2, learning_rate: 1e-3 };
    // 8 × 2 × 2 = 32 rows per rollout, 2 epochs × 2 minibatches = 4 steps per rollout: step 6 is mid-rollout 2
    const ra = await runPpo(config({ ...common, output_dir: a }), { console: false });
    const b = join(dir, 'resumed');
    cpSync(join(a, 'checkpoint-6'), join(b, 'checkpoint-6'), { recursive: true });
    const r = await runPpo(config({ ...common, output_dir: b, resume_from_checkpoint: true }), { console: false });
    assert.match(String(r.resumedFrom), /checkpoint-6$/);
    assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))), 'final weights differ');
    const strip = (rec: Record<string, number>) => Object.fromEntries(Object.entries(rec).filter(([k]) => k !== 'time' && k !== 'tokens_per_second'));
    assert.deepEqual(readMetrics(b).map(strip), readMetrics(a).slice(6).map(strip));
    assert.deepEqual(r.iterations, ra.iterations, 'the per-iteration history (and so the plot) survives the resume');
  });

  it('the KL guard aborts with a message, or raises kl_coef with a warning', async () => {
    const guard = { max_steps: 8, per_device_train_batch_size: 8, num_ppo_epochs: 2, learning_rate: 3e-3, kl_blowup_threshold: 1e-4 };
    await assert.rejects(
      runPpo(config({ ...guard, output_dir: join(dir, 'abort') }), { console: false }),
      /ppo: iteration 2: objective\/kl = [\d.]+ nats exceeds kl_blowup_threshold 0\.0001: the policy has drifted far from the reference\. Lower learning_rate/,
    );
    const warnings: string[] = [];
    const r = await runPpo(config({ ...guard, output_dir: join(dir, 'raise'), kl_blowup_action: 'raise_kl_coef' }), { console: false, warn: (w) => warnings.push(w) });
    assert.ok(warnings.some((w) => /^iteration 2: objective\/kl = [\d.]+ nats exceeds kl_blowup_threshold 0\.0001; raising the KL coefficient 0\.05000 -> 0\.1000$/.test(w)), warnings.join('\n'));
    assert.deepEqual(r.iterations.map((h) => h.klCoef), [0.05, 0.1, 0.2, 0.4]);
  });
  it('missing_eos_penalty lowers the score of truncated responses; target_kl adapts kl_coef (Ziegler et al.)', async () => {
    const one = join(dir, 'one.mjs');
    writeFileSync(one, 'export default () => 1;\n');
    // the untrained base model almost never says EOS in 2 tokens: most responses are truncated
    const r = await runPpo(
      config({ model_name_or_path: join(dir, 'base'), reward_funcs: [`module:${one}`], output_dir: join(dir, 'eos'), response_length: 2, missing_eos_penalty: 0.5, max_steps: 3, num_ppo_epochs: 1, per_device_train_batch_size: 8, target_kl: 1, kl_horizon: 100 }),
      { console: false },
    );
    const m = readMetrics(join(dir, 'eos'));
    for (const x of m) {
      assert.ok(x['completions/clipped_ratio'] > 0.5);
      assert.ok(Math.abs(x['objective/scores'] - (1 - 0.5 * x['completions/clipped_ratio'])) < 1e-6, `score ${x['objective/scores']}, truncated ${x['completions/clipped_ratio']}`);
    }
    // β ← β (1 + clip(KL / target − 1, ±0.2) · n / horizon), n = 8 responses per rollout
    const [h1, h2, h3] = r.iterations;
    assert.equal(h1.klCoef, 0.05);
    assert.ok(Math.abs(h2.klCoef - 0.05 * (1 - 0.2 * 0.08)) < 1e-12);
    assert.ok(Math.abs(h3.klCoef - h2.klCoef * (1 + Math.min(Math.max(h2.kl - 1, -0.2), 0.2) * 0.08)) < 1e-12);
    assert.ok(Math.abs(m[1]['objective/kl_coef'] - h2.klCoef) < 1e-12);
  });
  it('with LoRA the reference is the base with adapters off (one model), and the value head is saved in merged/', async () => {
    const out = join(dir, 'lora');
    const r = await runPpo(config({ output_dir: out, max_steps: 8, use_lora: true, lora_target_modules: 'all-linear', learning_rate: 5e-3 }), { console: false });
    assert.equal(r.iterations[0].kl, 0, 'adapters start at zero: policy = reference');
    assert.ok(r.iterations[1].kl > 0, 'the adapters moved the policy away from the base');
    assert.ok(existsSync(join(out, 'adapter_model.safetensors')));
    const header = readFileSync(join(out, 'merged', 'model.safetensors'));
    assert.ok(header.subarray(0, 4096).toString('latin1').includes('v_head.summary.weight'));
  });
});
