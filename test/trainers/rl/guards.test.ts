// The RL stability guards and bad-input handling, end to end on the toy task (the unit-level checks are in
// rewards.test.ts, rollout.test.ts, ppo_e2e.test.ts and test/cli/rl_cli.test.ts):
//   - a reward that returns NaN for some samples: each is dropped from its rollout with a warning naming the prompt
//     and the response, counted in rollout/dropped_samples, and training goes on;
//   - reward hacking shows in the logged signals: a reward that pays for length (and nothing else) drives the policy
//     to stop ending its answers, and completions/mean_length, completions/clipped_ratio,
//     completions/repetition_rate and objective/kl climb from the first rollouts to the last.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PpoConfigSchema, parseConfig } from '../../../src/train/config.ts';
import { readMetrics } from '../../../src/train/logging.ts';
import { runPpo } from '../../../src/trainers/rl/ppo.ts';
import { prepareToyPolicy, TOY_PROMPTS } from '../../../src/trainers/rl/toy_task.ts';

const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;

describe('RL guards on the toy task', () => {
  let dir = '';
  let sft = '';
  const config = (over: Record<string, unknown>) =>
    parseConfig(PpoConfigSchema, {
      overrides: {
        model_name_or_path: sft, dataset_path: TOY_PROMPTS, per_device_train_batch_size: 16, response_length: 8, learning_rate: 5e-4,
        num_ppo_epochs: 4, report_to: ['none'], disable_tqdm: true, save_strategy: 'no', seed: 0, ...over,
      },
    });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-rl-guards-'));
    sft = await prepareToyPolicy(dir, { steps: 120, seed: 0 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a reward that returns NaN for some samples: dropped with a warning, counted, training continues', async () => {
    const mod = join(dir, 'nan.mjs');
    writeFileSync(mod, "export default (prompt, response) => (response.trim() === 'no' ? Number.NaN : response.includes('yes') ? 1 : 0);\n");
    const warnings: string[] = [];
    const out = join(dir, 'nan');
    const r = await runPpo(config({ output_dir: out, reward_funcs: [`module:${mod}`], max_steps: 8 }), { console: false, warn: (w) => warnings.push(w) });
    assert.equal(r.globalStep, 8);
    assert.ok(r.droppedSamples > 0, 'the SFT policy says " no" often enough');
    assert.equal(warnings.length, r.droppedSamples);
    for (const w of warnings) assert.match(w, /^iteration \d: dropped sample \d+ \(prompt .*say_yes_prompts\.jsonl:\d+ '[^']+', response ' no'\) from the batch: nan returned NaN$/);
    const m = readMetrics(out);
    // the rollout's metrics ride on each of its 4 optimizer steps (4 PPO epochs): count them once per rollout
    assert.equal(m.filter((x) => x.step % 4 === 1).reduce((s, x) => s + x['rollout/dropped_samples'], 0), r.droppedSamples);
    for (const x of m) assert.ok(Number.isFinite(x.loss) && Number.isFinite(x['objective/scores']));
  });

  it('reward hacking is visible in the logged signals: length, truncation and repetition climb', async () => {
    const mod = join(dir, 'length.mjs');
    writeFileSync(mod, 'export default (prompt, response) => response.length / 8;\n');
    const out = join(dir, 'hack');
    await runPpo(config({ output_dir: out, reward_funcs: [`module:${mod}`], max_steps: 80, learning_rate: 1e-3, response_length: 12, kl_coef: 0.01 }), { console: false });
    // one record per rollout (4 optimizer steps each: 4 PPO epochs of one minibatch)
    const rollouts = readMetrics(out).filter((x) => x.step % 4 === 1);
    assert.equal(rollouts.length, 20);
    const at = (k: string, from: number, to: number) => mean(rollouts.slice(from, to).map((x) => x[k]));
    const report = ['completions/mean_length', 'completions/clipped_ratio', 'completions/repetition_rate', 'objective/kl'].map((k) => `${k} ${at(k, 0, 3).toFixed(3)} -> ${at(k, 17, 20).toFixed(3)}`).join(', ');
    // (seed 0: about 6 -> 12 tokens, 0 -> 0.98 truncated, 0.01 -> 0.25 repeated trigrams, KL 2 -> 20 nats)
    assert.ok(at('completions/mean_length', 17, 20) > at('completions/mean_length', 0, 3) + 3, report);
    assert.ok(at('completions/clipped_ratio', 17, 20) > at('completions/clipped_ratio', 0, 3) + 0.5, report);
    assert.ok(at('completions/repetition_rate', 17, 20) > at('completions/repetition_rate', 0, 3) + 0.1, report);
    assert.ok(at('objective/kl', 17, 20) > 3 * at('objective/kl', 0, 3), report);
  });
});
