// `alignkit pipeline` as a user runs it: --help, a bad file (one line on stderr naming file, line, stage and field;
// exit 1; nothing created), and --dry-run --json (the plan, nothing run).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-pipeline-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });

describe('alignkit pipeline', () => {
  it('--help names every stage type and option', () => {
    const r = run(['pipeline', '--help']);
    assert.equal(r.status, 0);
    for (const t of ['init-model', 'sft', 'reward', 'ppo', 'grpo', 'dpo', 'kto', 'orpo', 'best-of-n', 'eval', '--dry-run', '--var', '--profile', '--output', '--json']) assert.ok(r.stdout.includes(t), t);
  });

  it('a bad file: exit 1, one line naming the file, line, stage and field, and nothing is created', () => {
    const f = join(dir, 'bad.yaml');
    const out = join(dir, 'bad-out');
    writeFileSync(f, `output_dir: ${out}\nstages:\n  - name: a\n    type: sftt\n  - name: b\n    type: sft\n    config: {model_name_or_path: "\${stages.c.output}", dataset_path: x.jsonl}\n`);
    const r = run(['pipeline', f]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.startsWith(`alignkit: ${f}: line 4: stage 'a': key 'type': unknown stage type "sftt"; known types: `), r.stderr);
    assert.ok(r.stderr.includes(`${f}: line 7: stage 'b': key 'model_name_or_path': \${stages.c.output}: no stage named 'c' (stages: a, b)`), r.stderr);
    assert.ok(!r.stderr.includes('must not be empty'), 'an unresolved reference is reported once, not again by the schema');
    assert.ok(!existsSync(out), 'nothing is written before the file is valid');
  });

  it('--dry-run --json prints the plan and runs nothing', () => {
    const out = join(dir, 'dry');
    const r = run(['pipeline', join(root, 'data', 'demo', 'pipeline.yaml'), '--dry-run', '--json', '--output', out]);
    assert.equal(r.status, 0, r.stderr);
    const plan = (JSON.parse(r.stdout) as { plan: { name: string; type: string; action: string }[] }).plan;
    assert.deepEqual(plan.map((p) => [p.name, p.type, p.action]), [['base', 'init-model', 'run'], ['sft', 'sft', 'run'], ['reward', 'reward', 'run'], ['ppo', 'ppo', 'run'], ['dpo', 'dpo', 'run'], ['cai', 'cai-revise', 'run'], ['eval', 'eval', 'run']]);
    assert.ok(!existsSync(out), 'nothing is created');
  });
});
