// `alignkit ppo|grpo|rloo` as users run them: flags and YAML configs, `--reward module:FILE|http:URL`, and bad input —
// a reward module that throws for one sample (dropped with a warning, the run finishes), an unreachable reward
// endpoint (refused, or a server that closes the connection: retries, then one error line and exit code 1), a
// prompt longer than the model's context (the file, line and prompt are named), and invalid configs.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { GrpoConfigSchema, PpoConfigSchema, RlooConfigSchema, parseConfig } from '../../src/train/config.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const PROMPTS = join(root, 'data', 'rl', 'say_yes_prompts.jsonl');
const TOY = join(root, 'src', 'trainers', 'rl', 'toy_task.ts');

/** Runs the CLI without blocking this process (a test server may need to answer it). */
function run(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const quick = ['--per_device_train_batch_size', '4', '--response_length', '6', '--num_ppo_epochs', '1', '--max_steps', '2', '--report_to', 'none', '--disable_tqdm', 'true', '--save_strategy', 'no', '--json'];

describe('alignkit ppo | grpo | rloo', () => {
  let dir = '';
  let model = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-rl-cli-'));
    model = writeTinyChatModel(join(dir, 'model'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--help documents the PPO fields as flags and --reward', async () => {
    const r = await run(['ppo', '--help']);
    assert.equal(r.status, 0);
    for (const f of ['--reward <spec>', '--num_ppo_epochs', '--cliprange_value', '--kl_estimator', '--target_kl', '--missing_eos_penalty', '--kl_blowup_threshold', '--response_length'])
      assert.ok(r.stdout.includes(f), `${f} missing from --help`);
  });

  it('ppo with a reward module that throws for one sample: warns, drops it, finishes', async () => {
    const mod = join(dir, 'flaky.mjs');
    writeFileSync(mod, "let calls = 0;\nexport function score(prompt, response) {\n  if (++calls === 2) throw new Error('flaky scorer');\n  return response.length / 10;\n}\n");
    const out = join(dir, 'ppo');
    const r = await run(['ppo', '--model_name_or_path', model, '--dataset_path', PROMPTS, '--output_dir', out, '--reward', `module:${mod}`, ...quick]);
    assert.equal(r.status, 0, r.stderr);
    const res = JSON.parse(r.stdout) as { global_step: number; dropped_samples: number; iterations: number; final_kl: number };
    assert.equal(res.global_step, 2);
    assert.equal(res.iterations, 2);
    assert.equal(res.dropped_samples, 1);
    assert.match(r.stderr, /alignkit ppo: warning: iteration 1: dropped sample 1 \(prompt .*say_yes_prompts\.jsonl:\d+ .*\) from the batch: flaky threw Error: flaky scorer/);
    assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'reward_kl.svg')));
  });

  it('an unreachable reward endpoint: retries, then one error line and exit code 1', async () => {
    const closed = createServer();
    await new Promise<void>((res) => closed.listen(0, '127.0.0.1', res));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((res) => closed.close(() => res()));
    const r = await run(['ppo', '--model_name_or_path', model, '--dataset_path', PROMPTS, '--output_dir', join(dir, 'refused'), '--reward', `http:http://127.0.0.1:${port}/score`, '--reward_retries', '1', ...quick]);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^alignkit ppo: reward endpoint http://127\\.0\\.0\\.1:${port}/score is unreachable: 2 attempt\\(s\\) failed, the last with: `));
    // a server that accepts and closes every connection without answering
    let attempts = 0;
    const closing = createServer((req) => {
      attempts++;
      req.socket.destroy();
    });
    await new Promise<void>((res) => closing.listen(0, '127.0.0.1', res));
    try {
      const url = `http://127.0.0.1:${(closing.address() as AddressInfo).port}/score`;
      const c = await run(['rloo', '--model_name_or_path', model, '--dataset_path', PROMPTS, '--output_dir', join(dir, 'closing'), '--reward', url, '--reward_retries', '2', '--rloo_k', '2', ...quick]);
      assert.equal(c.status, 1);
      assert.match(c.stderr, new RegExp(`^alignkit rloo: reward endpoint ${url.replace(/\./g, '\\.')} is unreachable: 3 attempt\\(s\\) failed`));
      assert.ok(attempts >= 3);
    } finally {
      await new Promise<void>((res) => closing.close(() => res()));
    }
  });

  it('a prompt longer than the context is an error naming the file, line and prompt', async () => {
    const f = join(dir, 'long.jsonl');
    writeFileSync(f, `${JSON.stringify({ prompt: 'Say yes:' })}\n${JSON.stringify({ prompt: `Please ${'very '.repeat(100)}say yes:` })}\n`);
    const r = await run(['ppo', '--model_name_or_path', model, '--dataset_path', f, '--output_dir', join(dir, 'long'), '--reward', `module:${TOY}`, ...quick]);
    assert.equal(r.status, 1);
    assert.match(r.stderr.trim(), /^alignkit ppo: .*long\.jsonl:2: field 'prompt': the prompt 'Please very very .*\.\.\.' has 515 tokens; with response_length 6 it needs 521 positions, but the model has 512\. Shorten the prompt/);
  });

  it('grpo and rloo run from a YAML config; flags override it', async () => {
    const cfg = join(dir, 'grpo.yaml');
    writeFileSync(cfg, [`model_name_or_path: ${model}`, `dataset_path: ${PROMPTS}`, `output_dir: ${join(dir, 'grpo')}`, `reward_funcs: ['module:${TOY}']`, 'num_generations: 4', 'per_device_train_batch_size: 8', 'max_completion_length: 6', 'max_steps: 2', 'report_to: none', 'save_strategy: "no"'].join('\n') + '\n');
    const g = await run(['grpo', '--config', cfg, '--max_steps', '1', '--json']);
    assert.equal(g.status, 0, g.stderr);
    assert.equal((JSON.parse(g.stdout) as { global_step: number }).global_step, 1);
    assert.ok(readFileSync(join(dir, 'grpo', 'metrics.jsonl'), 'utf8').includes('"reward_std"'));
    const r = await run(['rloo', '--model_name_or_path', model, '--dataset_path', PROMPTS, '--output_dir', join(dir, 'rloo'), '--reward', `module:${TOY}`, '--rloo_k', '2', ...quick]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { global_step: number }).global_step, 2);
  });

  it('invalid configs: every problem named, one line, exit code 1', async () => {
    const noReward = await run(['ppo', '--model_name_or_path', model, '--dataset_path', PROMPTS, '--output_dir', join(dir, 'x'), ...quick]);
    assert.equal(noReward.status, 1);
    assert.equal(noReward.stderr.trim().split('\n').length, 1);
    assert.match(noReward.stderr, /^alignkit ppo: key 'reward_funcs': required: at least one reward source/);
    // the same checks, in-process (each is what the CLI prints after 'alignkit <cmd>: ')
    const base = { model_name_or_path: model, dataset_path: PROMPTS, output_dir: join(dir, 'x') };
    const problem = (schema: Parameters<typeof parseConfig>[0], over: Record<string, unknown>) => {
      try {
        parseConfig(schema, { overrides: { ...base, ...over } });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    assert.match(problem(PpoConfigSchema, { reward_funcs: [`module:${TOY}`], reward_weights: [1, 2] }), /--reward_weights: has 2 weight\(s\) for 1 reward source\(s\)/);
    assert.match(problem(GrpoConfigSchema, { reward_funcs: [`module:${TOY}`], num_generations: 3, per_device_train_batch_size: 4 }), /--num_generations: 3 must divide the 4 responses sampled per iteration/);
    assert.match(problem(PpoConfigSchema, { reward_funcs: ['toy.ts'] }), /--reward_funcs \(at reward_funcs\[0\]\): must be 'module:FILE', 'rm:DIR', 'http:URL' or 'constitution:JUDGE\[@FILE\.yaml\]'/);
    assert.match(problem(RlooConfigSchema, { reward_model_path: 'rm', rloo_k: 1 }), /--rloo_k: must be >= 2/);
    assert.match(problem(PpoConfigSchema, { reward_funcs: [`module:${TOY}`], eval_strategy: 'steps' }), /--eval_strategy: 'steps' needs held-out prompts: set eval_file or eval_fraction/);
    assert.match(problem(GrpoConfigSchema, { reward_funcs: [`module:${TOY}`], eval_file: PROMPTS, eval_fraction: 0.25 }), /--eval_fraction: give eval_file or eval_fraction, not both/);
    assert.equal(problem(RlooConfigSchema, { reward_funcs: [`module:${TOY}`], eval_strategy: 'steps', eval_fraction: 0.25 }), '');
    assert.match(problem(PpoConfigSchema, { reward_funcs: [`module:${TOY}`], temperature: 0 }), /--temperature: must be > 0/);
    assert.equal(problem(PpoConfigSchema, { reward_funcs: [`module:${TOY}`] }), '');
  });
});
