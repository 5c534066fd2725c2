// Learning from preferences end to end on the synthetic rule pairs shipped in data/preference/ (a chosen answer
// follows a checkable rule — uppercase the word, or ask politely — and the rejected one does not), with a tiny
// byte-level chat model:
//  - SFT on mostly rule-breaking completions gives a reference that usually breaks the rule;
//  - DPO against it: held-out preference accuracy rises from chance (every margin 0 at the start) to ≥ 90%,
//    greedy answers judged by the rule beat the reference's with p < 0.01, and the sampled KL to the
//    reference stays finite;
//  - a reward model trained on the pairs ranks ≥ 90% of the held-out pairs correctly.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { DpoConfigSchema, RewardConfigSchema, SftConfigSchema, parseConfig } from '../../src/train/config.ts';
import { runSft } from '../../src/trainers/sft.ts';
import { evaluateDpo, runDpo } from '../../src/trainers/dpo.ts';
import { evaluateReward, runReward } from '../../src/trainers/reward.ts';
import { winRate } from '../../src/trainers/compare.ts';
import { ruleJudge } from '../../src/demo/preference_rule.ts';
import { loadModel } from '../../src/models/index.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { generate, sequenceLogprobs } from '../../src/generate/index.ts';
import { intTensor, noGrad, tidy } from '../../src/tensor/index.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const TRAIN = join(root, 'data', 'preference', 'rule_pairs.jsonl');
const HELD_OUT = join(root, 'data', 'preference', 'rule_pairs_eval.jsonl');
const quiet = { report_to: ['none'], disable_tqdm: true, save_strategy: 'no', logging_steps: 50, seed: 1, weight_decay: 0 };
interface Pair {
  prompt: string;
  chosen: string;
  rejected: string;
}
const pairs = (): Pair[] => readFileSync(TRAIN, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Pair);

test('DPO after a rule-breaking SFT: held-out preference accuracy >= 90%, rule win rate > 50% with p < 0.01, finite KL', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-dpo-e2e-'));
  try {
    const base = writeTinyChatModel(join(dir, 'base'), { hidden: 96, layers: 2, heads: 4, kvHeads: 2, seed: 1 });
    // the reference: SFT on every rejected completion and a quarter of the chosen ones
    const sftData = join(dir, 'sft.jsonl');
    writeFileSync(sftData, pairs().flatMap((p, i) => [...(i % 4 === 0 ? [{ prompt: p.prompt, completion: p.chosen }] : []), { prompt: p.prompt, completion: p.rejected }]).map((r) => JSON.stringify(r)).join('\n') + '\n');
    const sftDir = join(dir, 'sft');
    await runSft(parseConfig(SftConfigSchema, { overrides: { ...quiet, model_name_or_path: base, dataset_path: sftData, output_dir: sftDir, max_steps: 600, learning_rate: 3e-3, per_device_train_batch_size: 16, lr_scheduler_type: 'cosine', max_length: 128 } }), { console: false });

    const dpo = { ...quiet, model_name_or_path: sftDir, dataset_path: TRAIN, eval_file: HELD_OUT, output_dir: join(dir, 'dpo'), max_steps: 150, learning_rate: 1e-4, beta: 0.1, per_device_train_batch_size: 8, max_length: 128, max_prompt_length: 64 };
    const before = await evaluateDpo(parseConfig(DpoConfigSchema, { overrides: dpo }));
    assert.equal(before['rewards/margins'], 0, 'the policy starts as its own reference');
    assert.ok(before['rewards/accuracies'] <= 0.5);
    assert.ok(Math.abs(before['objective/kl']) < 1e-3, `objective/kl ${before['objective/kl']} of the policy against itself`);
    const r = await runDpo(parseConfig(DpoConfigSchema, { overrides: dpo }), { console: false });
    const after = r.lastEval as Record<string, number>;
    assert.ok(after['eval_rewards/accuracies'] >= 0.9, `held-out preference accuracy ${after['eval_rewards/accuracies']}`);
    assert.ok(after['eval_rewards/margins'] > 0);
    const logged = readFileSync(join(dir, 'dpo', 'metrics.jsonl'), 'utf8');
    for (const k of ['rewards/chosen', 'rewards/rejected', 'rewards/accuracies', 'rewards/margins', 'logps/chosen', 'logps/rejected', 'eval_objective/kl']) assert.ok(logged.includes(`"${k}"`), `${k} not logged`);
    // the KL the trainer logged at its last evaluation: the policy moved, but stayed on a finite leash
    const loggedKl = after['eval_objective/kl'];
    assert.ok(Number.isFinite(loggedKl) && loggedKl > 0 && loggedKl < 50, `logged objective/kl ${loggedKl}`);

    const policy = { model: loadModel(join(dir, 'dpo'), { trainable: false }), tok: loadTokenizer(join(dir, 'dpo')) };
    const ref = { model: loadModel(sftDir, { trainable: false }), tok: loadTokenizer(sftDir) };
    try {
      const prompts = pairs().slice(0, 100).map((p) => p.prompt);
      const judge = { scorer: { score: async (p: string, rs: readonly string[]) => rs.map((x) => (ruleJudge(p, x) ? 1 : 0)), dispose() {} } };
      const w = await winRate(policy, ref, prompts, judge, { maxNewTokens: 16, temperature: 0, seed: 0 });
      assert.ok(w.winRate > 0.5 && w.wins > 2 * w.losses, `win rate ${w.winRate} (${w.wins}/${w.ties}/${w.losses})`);
      assert.ok(w.pValue < 0.01, `sign test p = ${w.pValue}`);
      // KL(π ‖ π_ref) ≈ mean over samples y ~ π of log π(y|x) − log π_ref(y|x)
      const ids = prompts.slice(0, 24).map((p) => policy.tok.encode(p));
      const samples = generate(policy.model, { inputIds: ids, maxNewTokens: 12, temperature: 1, seed: 7, returnLogprobs: true, stopTokenIds: policy.tok.stopIds });
      let kl = 0;
      samples.forEach((s, i) => {
        const lpPolicy = (s.logprobs ?? []).reduce((a, b) => a + b, 0);
        const full = [...ids[i], ...s.ids];
        // lp[t] = log p(full[t+1] | full[..t]): the generated tokens are targets from t = prompt length − 1
        const lp = noGrad(() => tidy(() => sequenceLogprobs(ref.model, intTensor(full, [1, full.length])).toArray()));
        const lpRef = lp.slice(ids[i].length - 1).reduce((a, b) => a + b, 0);
        kl += (lpPolicy - lpRef) / samples.length;
      });
      assert.ok(Number.isFinite(kl) && kl > -0.5 && kl < 50, `sampled KL to the reference ${kl}`);
    } finally {
      policy.model.dispose();
      ref.model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a reward model trained on the rule pairs ranks >= 90% of held-out pairs correctly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-rm-e2e-'));
  try {
    const base = writeTinyChatModel(join(dir, 'base'), { hidden: 64, layers: 2, heads: 4, kvHeads: 2, seed: 2 });
    const cfg = { ...quiet, model_name_or_path: base, dataset_path: TRAIN, eval_file: HELD_OUT, output_dir: join(dir, 'rm'), max_steps: 150, learning_rate: 1e-3, per_device_train_batch_size: 8, max_length: 128, max_prompt_length: 64 };
    const before = await evaluateReward(parseConfig(RewardConfigSchema, { overrides: cfg }));
    const r = await runReward(parseConfig(RewardConfigSchema, { overrides: cfg }), { console: false });
    const acc = (r.lastEval as Record<string, number>).eval_accuracy;
    assert.ok(acc >= 0.9, `held-out accuracy ${acc} (before training ${before.accuracy})`);
    const saved = JSON.parse(readFileSync(join(dir, 'rm', 'config.json'), 'utf8')) as { architectures: string[]; num_labels: number };
    assert.deepEqual(saved.architectures, ['LlamaForSequenceClassification']);
    assert.equal(saved.num_labels, 1);
    const rm = loadModel(join(dir, 'rm'), { trainable: false });
    assert.ok(rm.scoreHead, 'the saved reward model loads with its score head');
    rm.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
