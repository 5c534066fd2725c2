// The preference commands as users run them: every trainer runs from flags on the shipped rule pairs and writes
// its output; bad rows (chosen = rejected, empty prompt, missing rejected, a KTO row without a boolean label)
// stop the run naming the file and line, or are counted with --skip-invalid; --eval_only trains nothing;
// rm-score, best-of-n and winrate work on the results.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const PAIRS = join(root, 'data', 'preference', 'rule_pairs.jsonl');
const KTO = join(root, 'data', 'preference', 'rule_kto.jsonl');
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 180_000 });
const quick = ['--max_steps', '2', '--per_device_train_batch_size', '2', '--max_length', '64', '--max_prompt_length', '40', '--report_to', 'none', '--disable_tqdm', 'true', '--save_strategy', 'no', '--json'];

describe('alignkit preference commands', () => {
  let dir = '';
  let model = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-pref-cli-'));
    model = writeTinyChatModel(join(dir, 'model'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1 });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const [cmd, data] of [['dpo', PAIRS], ['orpo', PAIRS], ['simpo', PAIRS], ['reward', PAIRS], ['kto', KTO]] as const) {
    it(`${cmd} trains from flags and writes a Hugging Face folder`, () => {
      const out = join(dir, cmd);
      const r = run([cmd, '--model_name_or_path', model, '--dataset_path', data, '--output_dir', out, ...quick]);
      assert.equal(r.status, 0, r.stderr);
      const res = JSON.parse(r.stdout) as { global_step: number; train_loss: number };
      assert.equal(res.global_step, 2);
      assert.ok(Number.isFinite(res.train_loss));
      assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'train_results.json')));
    });
  }

  it('bad preference rows name file and line; --skip-invalid counts them', () => {
    const good = (i: number) => JSON.stringify({ prompt: `Write in uppercase: w${i}\nAnswer:`, chosen: ` W${i}`, rejected: ` w${i}` });
    const f = join(dir, 'bad.jsonl');
    writeFileSync(f, [good(1), JSON.stringify({ prompt: 'p', chosen: ' same', rejected: ' same' }), good(2), JSON.stringify({ prompt: '', chosen: ' a', rejected: ' b' }), JSON.stringify({ prompt: 'p', chosen: ' a' }), good(3)].join('\n') + '\n');
    const args = ['dpo', '--model_name_or_path', model, '--dataset_path', f, '--output_dir', join(dir, 'bad'), ...quick];
    const r = run(args);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bad\.jsonl:2:/);
    const s = run([...args, '--skip-invalid', '--overwrite_output_dir', 'true']);
    assert.equal(s.status, 0, s.stderr);
    const summary = JSON.parse(readFileSync(join(dir, 'bad', 'train_results.json'), 'utf8')) as { skipped_invalid_rows: number; pairs: number };
    assert.equal(summary.skipped_invalid_rows, 3);
    assert.equal(summary.pairs, 3);
    const k = join(dir, 'badkto.jsonl');
    writeFileSync(k, [JSON.stringify({ prompt: 'p', completion: ' a', label: true }), JSON.stringify({ prompt: 'p', completion: ' b', label: 'yes' })].join('\n') + '\n');
    const kr = run(['kto', '--model_name_or_path', model, '--dataset_path', k, '--output_dir', join(dir, 'badkto'), ...quick]);
    assert.equal(kr.status, 1);
    assert.match(kr.stderr, /badkto\.jsonl:2:.*label/);
  });

  it('--eval_only measures without writing a model', () => {
    const out = join(dir, 'evalonly');
    const r = run(['dpo', '--model_name_or_path', model, '--dataset_path', PAIRS, '--output_dir', out, '--eval_only', ...quick]);
    assert.equal(r.status, 0, r.stderr);
    const m = JSON.parse(r.stdout) as Record<string, number>;
    assert.equal(m['rewards/margins'], 0, 'policy = reference: zero margins');
    assert.ok(m.pairs > 0 && Math.abs(m.loss - Math.log(2)) < 1e-5, `DPO loss at the reference is log 2, got ${m.loss}`);
    assert.ok(!existsSync(join(out, 'model.safetensors')));
  });

  it('rm-score, best-of-n and winrate run on a trained reward model', () => {
    const rm = join(dir, 'reward');
    const prompts = join(dir, 'prompts.txt');
    writeFileSync(prompts, 'Write in uppercase: cat\nAnswer:\nAsk politely for: tea\nAnswer:\n'.replace(/\nAnswer:\n/g, ' Answer:\n'));
    const rows = join(dir, 'rows.jsonl');
    writeFileSync(rows, [JSON.stringify({ prompt: 'Write in uppercase: cat\nAnswer:', response: ' CAT' }), JSON.stringify({ prompt: 'Write in uppercase: cat\nAnswer:', response: ' cat' })].join('\n') + '\n');
    const s = run(['rm-score', '--model', rm, '--data', rows, '--json']);
    assert.equal(s.status, 0, s.stderr);
    assert.equal((JSON.parse(s.stdout) as { scores: number[] }).scores.length, 2);
    const b = run(['best-of-n', '--model', model, '--prompts', prompts, '--scorer', `rm:${rm}`, '--n', '3', '--max-new-tokens', '4', '--seed', '1', '--json']);
    assert.equal(b.status, 0, b.stderr);
    const bo = JSON.parse(b.stdout) as { rows: { score: number; candidates: { score: number }[] }[] };
    assert.equal(bo.rows.length, 2);
    for (const row of bo.rows) assert.equal(row.score, Math.max(...row.candidates.map((c) => c.score)));
    const w = run(['winrate', '--model-a', model, '--model-b', join(dir, 'dpo'), '--prompts', prompts, '--judge', `rm:${rm}`, '--max-new-tokens', '4', '--temperature', '0', '--json']);
    assert.equal(w.status, 0, w.stderr);
    const wr = JSON.parse(w.stdout) as { n: number; winRate: number; pValue: number; interval: { lower: number; upper: number } };
    assert.equal(wr.n, 2);
    assert.ok(wr.interval.lower <= wr.winRate && wr.winRate <= wr.interval.upper);
  });
});
