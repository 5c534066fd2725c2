// `alignkit sft` as a user runs it: bad configs and bad data rows give one-line errors naming the file, line and
// field (exit 1, nothing written); --skip-invalid counts bad rows instead; LoRA runs write a PEFT adapter.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('alignkit sft', () => {
  let dir = '';
  let model = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-sft-cli-'));
    model = writeTinyChatModel(join(dir, 'model'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const data = (name: string, lines: string[]): string => {
    const f = join(dir, name);
    writeFileSync(f, `${lines.join('\n')}\n`);
    return f;
  };
  const good = (i: number) => JSON.stringify({ prompt: `Q${i}?`, completion: ` A${i}.` });

  it('rejects an unknown config key, naming it and the file', () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, `model_name_or_path: ${model}\ndataset_path: x.jsonl\noutput_dir: ${join(dir, 'o1')}\nlearning_rat: 0.1\n`);
    const r = run(['sft', '--config', cfg]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.yaml.*learning_rat/);
    assert.match(r.stderr, /learning_rate/, 'suggests the real key');
    assert.ok(!existsSync(join(dir, 'o1')));
  });

  it('rejects an out-of-range flag, naming the flag', () => {
    const r = run(['sft', '--model_name_or_path', model, '--dataset_path', 'x.jsonl', '--output_dir', join(dir, 'o2'), '--learning_rate', '-1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--learning_rate/);
  });

  it('a malformed row stops the run with file, line and field; --skip-invalid counts it instead', () => {
    const f = data('bad.jsonl', [good(1), good(2), '{"prompt": "Q3?"', good(4), JSON.stringify({ prompt: 'Q5?', completion: '' }), good(6), JSON.stringify({ messages: [{ role: 'robot', content: 'x' }] })]);
    const out = join(dir, 'o3');
    const args = ['sft', '--model_name_or_path', model, '--dataset_path', f, '--output_dir', out, '--max_steps', '2', '--per_device_train_batch_size', '2', '--report_to', 'none', '--disable_tqdm', 'true', '--json'];
    const r = run(args);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.jsonl:3:/);
    assert.ok(!existsSync(join(out, 'model.safetensors')), 'no model written after a failed run');
    const s = run([...args, '--skip-invalid']);
    assert.equal(s.status, 0, s.stderr);
    const summary = JSON.parse(s.stdout) as { dataset: { skipped: number; skippedReasons: { line: number; message: string }[] } };
    assert.equal(summary.dataset.skipped, 3);
    assert.deepEqual(summary.dataset.skippedReasons.map((x) => x.line), [3, 5, 7]);
    assert.match(summary.dataset.skippedReasons[2].message, /role/);
    const results = JSON.parse(readFileSync(join(out, 'train_results.json'), 'utf8')) as { skipped_invalid_rows: number };
    assert.equal(results.skipped_invalid_rows, 3);
  });

  it('an over-long example is an error unless truncation is asked for', () => {
    const f = data('long.jsonl', [good(1), JSON.stringify({ prompt: 'Q?', completion: ` ${'x'.repeat(300)}` })]);
    const base = ['sft', '--model_name_or_path', model, '--dataset_path', f, '--output_dir', join(dir, 'o4'), '--max_steps', '1', '--max_length', '64', '--report_to', 'none', '--disable_tqdm', 'true', '--json'];
    const r = run(base);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /long\.jsonl:2:.*max_length/);
    const t = run([...base, '--truncation', 'right', '--overwrite_output_dir', 'true']);
    assert.equal(t.status, 0, t.stderr);
  });

  it('LoRA: writes a PEFT adapter (adapter_config.json + adapter_model.safetensors) and, with merge_lora, a merged model', () => {
    const f = data('ok.jsonl', [good(1), good(2), good(3), good(4)]);
    const out = join(dir, 'o5');
    const r = run(['sft', '--model_name_or_path', model, '--dataset_path', f, '--output_dir', out, '--max_steps', '3', '--per_device_train_batch_size', '2', '--use_lora', 'true',
      '--lora_r', '4', '--merge_lora', 'true', '--learning_rate', '0.01', '--report_to', 'none', '--disable_tqdm', 'true', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const files = readdirSync(out);
    for (const f2 of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer.json', 'train_results.json', 'merged']) assert.ok(files.includes(f2), `${f2} missing`);
    assert.ok(!files.includes('model.safetensors'), 'a LoRA run writes the adapter, not full weights');
    const cfg = JSON.parse(readFileSync(join(out, 'adapter_config.json'), 'utf8')) as { peft_type: string; r: number };
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.r, 4);
    assert.ok(existsSync(join(out, 'merged', 'model.safetensors')));
  });
});
