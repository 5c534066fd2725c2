// Evaluation during RL training (eval_strategy / eval_steps, eval_file or eval_fraction): one response per held-out
// prompt, sampled from fixed per-prompt seeds, logged as eval_reward, eval_reward_std, eval_kl,
// eval_completions/mean_length, eval_dropped_samples. Checked on the toy task:
//   - the baseline evaluation (eval_on_start) equals the mean toy reward recomputed by hand from the same seeds, and
//     its KL to the reference is exactly 0 (the policy is the reference);
//   - eval_reward rises as PPO trains, eval_kl becomes positive; evaluations happen at the eval_steps multiples;
//   - evaluating changes nothing about training: the same run without evaluation logs the same training metrics
//     and ends with the same weights;
//   - eval_fraction holds prompts out of training; the best checkpoint is picked by eval_reward.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import { loadTokenizer } from '../../../src/tokenizer/index.ts';
import { GrpoConfigSchema, PpoConfigSchema, parseConfig } from '../../../src/train/config.ts';
import { readMetrics } from '../../../src/train/logging.ts';
import { runGrpo } from '../../../src/trainers/rl/grpo.ts';
import { runPpo } from '../../../src/trainers/rl/ppo.ts';
import { evalRowSeed, loadPrompts, sampleResponses } from '../../../src/trainers/rl/rollout.ts';
import { prepareToyPolicy, score, TOY_PROMPTS, TOY_REWARD_MODULE } from '../../../src/trainers/rl/toy_task.ts';

describe('evaluation during RL training', () => {
  let dir = '';
  let sft = '';
  const common = {
    dataset_path: TOY_PROMPTS, reward_funcs: [`module:${TOY_REWARD_MODULE}`], per_device_train_batch_size: 16,
    learning_rate: 5e-4, report_to: ['none'], disable_tqdm: true, save_strategy: 'no', seed: 0,
  };
  const ppo = (over: Record<string, unknown>) => parseConfig(PpoConfigSchema, { overrides: { model_name_or_path: sft, ...common, response_length: 8, num_ppo_epochs: 4, ...over } });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-rl-eval-'));
    sft = await prepareToyPolicy(dir, { steps: 120, seed: 0 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('PPO: held-out reward and KL at eval_steps; the baseline recomputed by hand; reward rises', async () => {
    const out = join(dir, 'eval');
    await runPpo(ppo({ output_dir: out, max_steps: 80, eval_strategy: 'steps', eval_steps: 40, eval_on_start: true, eval_file: TOY_PROMPTS }), { console: false });
    const evals = readMetrics(out).filter((m) => 'eval_reward' in m);
    assert.deepEqual(evals.map((m) => m.step), [0, 40, 80]);
    for (const m of evals)
      for (const k of ['eval_reward', 'eval_reward_std', 'eval_kl', 'eval_completions/mean_length', 'eval_dropped_samples']) assert.ok(Number.isFinite(m[k]), `${k} at step ${m.step}`);
    // the baseline by hand: one response per prompt from evalRowSeed(seed, r), the toy reward, the mean
    const tok = loadTokenizer(sft);
    const model = loadModel(sft, { trainable: false });
    const prompts = await loadPrompts(TOY_PROMPTS, tok, { maxPositions: model.config.maxPositions, responseLength: 8 });
    const s = sampleResponses(model, prompts.ids, prompts.ids.map((_, r) => evalRowSeed(0, r)), {
      responseLength: 8, temperature: 0.7, topK: 0, topP: 1, stopTokenIds: [...tok.stopIds], padTokenId: tok.padId ?? 0, forwardBatchSize: 8,
    });
    model.dispose();
    const byHand = s.ids.reduce((t, ids, r) => t + score(prompts.texts[r], tok.decode(ids, { skipSpecialTokens: true })), 0) / prompts.ids.length;
    assert.ok(Math.abs(evals[0].eval_reward - byHand) < 1e-9, `eval_reward ${evals[0].eval_reward} vs ${byHand} by hand`);
    assert.equal(evals[0].eval_kl, 0, 'before any update the policy is its reference');
    assert.equal(evals[0].eval_dropped_samples, 0);
    assert.ok(evals[0].eval_reward <= 0.3, `baseline ${evals[0].eval_reward}`);
    assert.ok(evals[2].eval_reward >= evals[0].eval_reward + 0.3, `eval_reward ${evals.map((m) => m.eval_reward).join(' -> ')}`);
    assert.ok(evals[2].eval_kl > 0);
    const results = JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')) as Record<string, number>;
    assert.equal(results.eval_reward, evals[2].eval_reward, 'the last evaluation is in train_results.json');
  });

  it('evaluating does not change training; eval_fraction holds prompts out', async () => {
    const a = join(dir, 'with');
    const b = join(dir, 'without');
    const ra = await runPpo(ppo({ output_dir: a, max_steps: 8, per_device_train_batch_size: 4, eval_strategy: 'steps', eval_steps: 3, eval_fraction: 0.25 }), { console: false });
    const rb = await runPpo(ppo({ output_dir: b, max_steps: 8, per_device_train_batch_size: 4, eval_fraction: 0.25 }), { console: false });
    assert.equal(ra.prompts, 12, '4 of the 16 prompts held out');
    assert.equal(rb.prompts, 12);
    const train = (out: string) => readMetrics(out).filter((m) => !('eval_reward' in m)).map((m) => Object.fromEntries(Object.entries(m).filter(([k]) => k !== 'time' && k !== 'tokens_per_second')));
    assert.deepEqual(train(a), train(b));
    assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))));
    assert.deepEqual(readMetrics(a).filter((m) => 'eval_reward' in m).map((m) => m.step), [3, 6, 8]);
    assert.equal(readMetrics(b).filter((m) => 'eval_reward' in m).length, 0);
  });

  it('GRPO evaluates too; load_best_model_at_end picks the checkpoint with the best eval_reward', async () => {
    const out = join(dir, 'grpo');
    await runGrpo(
      parseConfig(GrpoConfigSchema, {
        overrides: {
          model_name_or_path: sft, ...common, num_generations: 4, max_completion_length: 8, beta: 0.04,
          output_dir: out, max_steps: 6, eval_strategy: 'steps', eval_steps: 2, save_strategy: 'steps', save_steps: 2, load_best_model_at_end: true, eval_file: TOY_PROMPTS,
        },
      }),
      { console: false },
    );
    const evals = readMetrics(out).filter((m) => 'eval_reward' in m);
    assert.deepEqual(evals.map((m) => m.step), [2, 4, 6]);
    const best = evals.reduce((x, y) => (y.eval_reward > x.eval_reward ? y : x));
    const results = JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')) as Record<string, unknown>;
    assert.match(String(results.best_checkpoint), new RegExp(`checkpoint-${best.step}$`));
    assert.equal(results.best_metric, best.eval_reward);
  });
});
