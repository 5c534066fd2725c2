// PPO with a separate critic (value_model_path, TRL's value_model): how its value head starts (from a value head in
// the folder, from a reward model's score head, or fresh), the vocabulary check, and on the toy task: the critic is
// trained (its value loss falls and its weights move while the policy folder carries no value head), it is saved
// in critic/ of every checkpoint and of the output, and a run resumed mid-rollout ends bit for bit where the
// uninterrupted run does, critic included.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModel, saveModel } from '../../../src/models/index.ts';
import { writeTinyChatModel } from '../../../src/demo/tiny_chat.ts';
import { PpoConfigSchema, parseConfig } from '../../../src/train/config.ts';
import { readMetrics } from '../../../src/train/logging.ts';
import { loadCritic } from '../../../src/trainers/rl/critic.ts';
import { runPpo } from '../../../src/trainers/rl/ppo.ts';
import { prepareToyPolicy, TOY_PROMPTS, TOY_REWARD_MODULE } from '../../../src/trainers/rl/toy_task.ts';

const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
const hasTensor = (file: string, name: string): boolean => readFileSync(file).subarray(0, 8192).toString('latin1').includes(`"${name}"`);

describe('PPO with a separate critic (value_model_path)', () => {
  let dir = '';
  let sft = '';
  let criticBase = '';
  const config = (over: Record<string, unknown>) =>
    parseConfig(PpoConfigSchema, {
      overrides: {
        model_name_or_path: sft, value_model_path: criticBase, dataset_path: TOY_PROMPTS, reward_funcs: [`module:${TOY_REWARD_MODULE}`],
        per_device_train_batch_size: 16, response_length: 8, learning_rate: 1e-3, num_ppo_epochs: 4, vf_coef: 1, report_to: ['none'], disable_tqdm: true,
        save_strategy: 'no', seed: 0, ...over,
      },
    });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-ppo-critic-'));
    sft = await prepareToyPolicy(dir, { steps: 60, seed: 0 });
    // a critic of another size than the policy (same tokenizer): 32 wide, 1 layer
    criticBase = writeTinyChatModel(join(dir, 'critic-base'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 3 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the value head starts from a value head in the folder, a reward model\'s score head, or fresh', () => {
    const fresh = loadCritic(criticBase, 259, 0);
    assert.equal(fresh.init, 'fresh');
    assert.ok(fresh.model.valueHead && !fresh.model.scoreHead);
    assert.ok([...fresh.trainable.values()].every((t) => t.requiresGrad));
    assert.ok(fresh.trainable.has('v_head.summary.weight'));
    // a reward model folder: score.weight becomes the value head's weight, bias 0
    const rm = loadModel(criticBase, { trainable: false });
    rm.attachScoreHead(1, 7);
    const scoreW = Float32Array.from(rm.scoreHead?.weight.data as Float32Array);
    saveModel(rm, join(dir, 'rm'));
    rm.dispose();
    const fromRm = loadCritic(join(dir, 'rm'), 259, 0);
    assert.equal(fromRm.init, 'score_head');
    assert.deepEqual(Float32Array.from(fromRm.model.valueHead?.weight.data as Float32Array), scoreW);
    assert.equal((fromRm.model.valueHead?.bias.data as Float32Array)[0], 0);
    assert.equal(fromRm.model.scoreHead, null, 'the score head is dropped: not trained, not saved');
    assert.ok(![...fromRm.trainable.keys()].some((k) => k.startsWith('score')));
    // a folder that has a value head keeps it
    saveModel(fresh.model, join(dir, 'with-vhead'));
    const kept = loadCritic(join(dir, 'with-vhead'), 259, 99);
    assert.equal(kept.init, 'value_head');
    assert.deepEqual(Float32Array.from(kept.model.valueHead?.weight.data as Float32Array), Float32Array.from(fresh.model.valueHead?.weight.data as Float32Array));
    for (const c of [fresh, fromRm, kept]) c.model.dispose();
    // the critic reads the policy's ids: a smaller vocabulary is refused with a message naming the field
    assert.throws(() => loadCritic(criticBase, 50257, 0), /value_model_path: .*critic-base has a vocabulary of 259 tokens but the policy's has 50257/);
  });

  it('trains jointly with the policy: value loss falls, critic/ saved, the policy folder has no value head', async () => {
    const out = join(dir, 'ppo');
    const r = await runPpo(config({ output_dir: out, max_steps: 40 }), { console: false });
    assert.equal(r.globalStep, 40);
    const m = readMetrics(out);
    const v = m.map((x) => x['loss/value_avg']);
    assert.ok(v.every(Number.isFinite));
    const first = mean(v.slice(0, 4));
    const last = mean(v.slice(-8));
    assert.ok(last < 0.5 * first, `value loss ${first} (first rollout) -> ${last} (last two rollouts)`);
    assert.ok(existsSync(join(out, 'critic', 'config.json')));
    assert.ok(hasTensor(join(out, 'critic', 'model.safetensors'), 'v_head.summary.weight'), 'the critic has its value head');
    assert.ok(!hasTensor(join(out, 'model.safetensors'), 'v_head.summary.weight'), 'the policy has no value head of its own');
    // the critic's body moved too (trained, not only its head)
    const before = loadModel(criticBase, { trainable: false });
    const afterCritic = loadModel(join(out, 'critic'), { trainable: false });
    const name = [...before.namedParameters().keys()].find((k) => k.includes('layers.0') && k.endsWith('weight')) as string;
    const a = before.namedParameters().get(name)?.data as Float32Array;
    const b = afterCritic.namedParameters().get(name)?.data as Float32Array;
    assert.ok(a.some((x, i) => x !== b[i]), `critic tensor ${name} unchanged`);
    before.dispose();
    afterCritic.dispose();
    const results = JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(results.critic_init, 'fresh');
  });

  it('checkpoints hold the critic; a resumed run ends exactly where the uninterrupted one does', async () => {
    const common = { max_steps: 8, save_strategy: 'steps', save_steps: 3, per_device_train_batch_size: 8, num_ppo_epochs: 2, num_mini_batches: 2 };
    const a = join(dir, 'full');
    await runPpo(config({ ...common, output_dir: a }), { console: false });
    assert.ok(hasTensor(join(a, 'checkpoint-3', 'critic', 'model.safetensors'), 'v_head.summary.weight'));
    const b = join(dir, 'resumed');
    cpSync(join(a, 'checkpoint-3'), join(b, 'checkpoint-3'), { recursive: true });
    const r = await runPpo(config({ ...common, output_dir: b, resume_from_checkpoint: true }), { console: false });
    assert.match(String(r.resumedFrom), /checkpoint-3$/);
    assert.ok(readFileSync(join(a, 'model.safetensors')).equals(readFileSync(join(b, 'model.safetensors'))), 'policy weights differ');
    assert.ok(readFileSync(join(a, 'critic', 'model.safetensors')).equals(readFileSync(join(b, 'critic', 'model.safetensors'))), 'critic weights differ');
    const strip = (rec: Record<string, number>) => Object.fromEntries(Object.entries(rec).filter(([k]) => k !== 'time' && k !== 'tokens_per_second'));
    assert.deepEqual(readMetrics(b).map(strip), readMetrics(a).slice(3).map(strip));
  });

  it('with a LoRA policy: the adapter, and the full critic in critic/; resume restores both', async () => {
    const common = { max_steps: 4, save_strategy: 'steps', save_steps: 2, per_device_train_batch_size: 8, num_ppo_epochs: 2, use_lora: true, lora_target_modules: 'all-linear', learning_rate: 5e-3 };
    const a = join(dir, 'lora');
    const r = await runPpo(config({ ...common, output_dir: a }), { console: false });
    assert.equal(r.iterations[0].kl, 0, 'the reference is the base (adapters off)');
    assert.ok(existsSync(join(a, 'adapter_model.safetensors')));
    assert.ok(!existsSync(join(a, 'merged')), 'no value head on the policy: nothing forces a merged copy');
    assert.ok(hasTensor(join(a, 'critic', 'model.safetensors'), 'v_head.summary.weight'));
    assert.ok(hasTensor(join(a, 'checkpoint-2', 'critic', 'model.safetensors'), 'v_head.summary.weight'));
    const b = join(dir, 'lora-resumed');
    cpSync(join(a, 'checkpoint-2'), join(b, 'checkpoint-2'), { recursive: true });
    await runPpo(config({ ...common, output_dir: b, resume_from_checkpoint: true }), { console: false });
    assert.ok(readFileSync(join(a, 'adapter_model.safetensors')).equals(readFileSync(join(b, 'adapter_model.safetensors'))), 'adapters differ');
    assert.ok(readFileSync(join(a, 'critic', 'model.safetensors')).equals(readFileSync(join(b, 'critic', 'model.safetensors'))), 'critic weights differ');
  });

});
