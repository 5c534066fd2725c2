import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fillTemplate, parseConstitution } from '../../src/cai/constitution.ts';
import { LocalChatModel } from '../../src/cai/chat.ts';
import { ConstitutionalScorer, constitutionRewardSource } from '../../src/cai/reward.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { CombinedReward, rewardSourceFromSpec } from '../../src/trainers/rl/rewards.ts';
import { parseConfig, PpoConfigSchema } from '../../src/train/config.ts';
import { runPpo } from '../../src/trainers/rl/ppo.ts';
import { fileURLToPath } from 'node:url';
import { ScriptedChat } from './stub.ts';

const YAML = [
  'reward_template: "{principle} :: {prompt} => {response}"',
  'principles:',
  '  - name: kind',
  '    description: Be kind.',
  '    weight: 3',
  '    critique_request: "{response}"',
  '    revision_request: "{critique}"',
  '  - name: brief',
  '    description: Be brief.',
  '    critique_request: "{response}"',
  '    revision_request: "{critique}"',
].join('\n');
const constitution = parseConstitution(YAML, 'r.yaml');

let dir: string;
let model: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-cai-reward-'));
  model = writeTinyChatModel(path.join(dir, 'm'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 8 });
  fs.writeFileSync(path.join(dir, 'c.yaml'), YAML);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the constitutional reward', () => {
  it('is the weighted mean over principles of the judge’s P(yes)', async () => {
    // kind: P(yes) 0.8 for responses containing 'please', else 0.2; brief: 1 for responses under 10 characters, else 0.
    const judge = new ScriptedChat('judge', () => '', (c) => {
      const text = String(c[0].content);
      const response = text.slice(text.indexOf('=> ') + 3);
      return { pFirst: text.startsWith('Be kind.') ? (response.includes('please') ? 0.8 : 0.2) : response.length < 10 ? 1 : 0, source: 'logprobs' };
    });
    const scorer = new ConstitutionalScorer(judge, constitution);
    const got = await scorer.score('hi', ['ok please', 'a long answer without it']);
    [(3 * 0.8 + 1) / 4, (3 * 0.2 + 0) / 4].forEach((e, i) => assert.ok(Math.abs(got[i] - e) < 1e-12, `${got[i]} vs ${e}`));
    assert.deepEqual(judge.chooseCalls[0].map((c) => c[0].content), [
      fillTemplate(constitution.rewardTemplate, { principle: 'Be kind.', prompt: 'hi', response: 'ok please' }),
      'Be brief. :: hi => ok please',
      'Be kind. :: hi => a long answer without it',
      'Be brief. :: hi => a long answer without it',
    ]);
    const d = await scorer.details([{ prompt: 'hi', response: 'ok please' }]);
    assert.deepEqual(d[0].byPrinciple, { kind: 0.8, brief: 1 });
    const src = constitutionRewardSource(scorer);
    const [one] = await src.score([{ prompt: 'hi', response: 'x' }]);
    assert.ok(one.ok && Math.abs(one.value - (3 * 0.2 + 1) / 4) < 1e-12);
    src.dispose();
    assert.equal(judge.disposed, true);
  });

  it('a PPO reward source from the spec constitution:JUDGE@FILE (accepted by the config), matching the scorer', async () => {
    const spec = `constitution:${model}@${path.join(dir, 'c.yaml')}`;
    const cfg = parseConfig(PpoConfigSchema, { overrides: { output_dir: path.join(dir, 'ppo'), model_name_or_path: model, dataset_path: 'x.jsonl', reward_funcs: [spec] } }) as { reward_funcs: string[] };
    assert.deepEqual(cfg.reward_funcs, [spec]);
    const src = await rewardSourceFromSpec(spec);
    assert.equal(src.name, 'constitution');
    const combined = new CombinedReward([src], [2]);
    const samples = [{ prompt: 'Say hi.', response: 'Hello!' }, { prompt: 'Say hi.', response: 'No.' }];
    const out = await combined.score(samples);
    const direct = new ConstitutionalScorer(LocalChatModel.load(model), constitution);
    const expected = await direct.score('Say hi.', ['Hello!', 'No.']);
    direct.dispose();
    out.total.forEach((o, i) => {
      assert.ok(o.ok);
      assert.ok(Math.abs(o.value - 2 * expected[i]) < 1e-9, `${o.value} vs 2 × ${expected[i]}`);
      assert.ok(expected[i] > 0 && expected[i] < 1);
    });
    combined.dispose();
    await assert.rejects(rewardSourceFromSpec('constitution:'), /name the judge/);
  });

  it('drives a PPO run as its reward (scores in [0, 1])', async () => {
    const prompts = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'data', 'rl', 'say_yes_prompts.jsonl');
    const cfg = parseConfig(PpoConfigSchema, {
      overrides: {
        model_name_or_path: model, dataset_path: prompts, output_dir: path.join(dir, 'ppo'), reward_funcs: [`constitution:${model}@${path.join(dir, 'c.yaml')}`],
        per_device_train_batch_size: 4, response_length: 6, num_ppo_epochs: 1, max_steps: 2, report_to: 'none', disable_tqdm: true, save_strategy: 'no',
      },
    });
    const r = await runPpo(cfg, { console: false });
    assert.equal(r.iterations.length, 2);
    assert.equal(r.droppedSamples, 0);
    for (const it of r.iterations) assert.ok(it.score > 0 && it.score < 1, `objective/scores ${it.score}`);
  });
});
