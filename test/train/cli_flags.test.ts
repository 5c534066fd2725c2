// Config flags on a real commander program: one option per schema key with its description and default in
// --help, only the typed flags returned, each coerced to its key's type; then through parseConfig, problems
// reported as `--key: ...`. Also: the Markdown reference, and that docs/training-config.md is up to date.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { z } from 'zod';
import { coerceFlagValue, flagOverrides, registerConfigFlags, renderConfigTable, schemaFields, updateGeneratedSections } from '../../src/train/cli_flags.ts';
import { ConfigError, SftConfigSchema, TrainingArgumentsSchema, parseConfig } from '../../src/train/config.ts';

function program(schema: z.ZodType = SftConfigSchema): Command {
  const cmd = new Command('sft').exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
  cmd.option('--config <file>', 'a YAML or JSON config file');
  registerConfigFlags(cmd, schema);
  return cmd;
}

function parsed(args: string[], schema: z.ZodType = SftConfigSchema): { cmd: Command; overrides: Record<string, unknown> } {
  const cmd = program(schema);
  cmd.parse(args, { from: 'user' });
  return { cmd, overrides: flagOverrides(cmd, schema) };
}

describe('registerConfigFlags', () => {
  it('adds --<key> for every key, with description and default in --help', () => {
    const cmd = program();
    const keys = Object.keys(SftConfigSchema.shape);
    for (const k of keys) assert.ok(cmd.options.some((o) => o.long === `--${k}`), `--${k}`);
    const help = cmd.helpInformation({ error: false });
    assert.match(help, /--learning_rate <number>\s+Peak learning rate \(after warmup\)\. TRL SFTConfig default 2e-5\. \(default: 0\.00002\)/);
    assert.match(help, /--packing \[true\|false\]\s+Concatenate records/);
    assert.match(help, /\(default: q_proj,k_proj,v_proj,o_proj\)/);
    assert.match(help, /--eval_strategy <no\|steps\|epoch>/);
    assert.match(help, /--output_dir <value>\s+Folder for checkpoints.*\(required: in the config file or as this flag\)/);
    assert.doesNotMatch(help, /--output_dir <value>.*\(default:/);
  });

  it('skips excluded keys and options the command already has', () => {
    const cmd = new Command('x').exitOverride();
    cmd.option('--seed <n>', 'already here');
    registerConfigFlags(cmd, TrainingArgumentsSchema, { exclude: ['report_to'] });
    assert.equal(cmd.options.filter((o) => o.long === '--seed').length, 1);
    assert.ok(!cmd.options.some((o) => o.long === '--report_to'));
  });
});

describe('flagOverrides', () => {
  it('returns only the flags given, coerced to each type', () => {
    const { overrides, cmd } = parsed([
      '--config', 'x.yaml', '--learning_rate', '3e-4', '--max_steps', '-1', '--packing', '--use_lora', 'false', '--lora_target_modules', 'q_proj, v_proj',
      '--report_to', 'none', '--eval_steps', 'null', '--completion_only_loss', 'null', '--resume_from_checkpoint', 'true',
      '--lr_scheduler_kwargs', '{"num_cycles": 2}', '--run_name', '123', '--output_dir', 'out',
    ]);
    assert.deepEqual(overrides, {
      output_dir: 'out', run_name: '123', learning_rate: 3e-4, max_steps: -1, lr_scheduler_kwargs: { num_cycles: 2 }, report_to: 'none',
      eval_steps: null, resume_from_checkpoint: true, packing: true, completion_only_loss: null, use_lora: false, lora_target_modules: ['q_proj', 'v_proj'],
    });
    assert.equal(cmd.opts().config, 'x.yaml');
    assert.deepEqual(parsed([]).overrides, {});
  });

  it('union keys take whichever form fits', () => {
    assert.equal(parsed(['--lora_target_modules', 'all-linear']).overrides.lora_target_modules, 'all-linear');
    assert.deepEqual(parsed(['--lora_target_modules', 'q_proj']).overrides.lora_target_modules, ['q_proj']);
    assert.equal(parsed(['--resume_from_checkpoint', 'runs/a/checkpoint-500']).overrides.resume_from_checkpoint, 'runs/a/checkpoint-500');
    assert.deepEqual(parsed(['--report_to', 'tensorboard,none']).overrides.report_to, ['tensorboard', 'none']);
    assert.equal(parsed(['--packing', 'True']).overrides.packing, true);
  });

  it('values that fit nowhere keep their kind, so validation names the real problem', () => {
    assert.equal(coerceFlagValue('-1', TrainingArgumentsSchema.shape.learning_rate), -1);
    assert.equal(coerceFlagValue('1.5', TrainingArgumentsSchema.shape.seed), 1.5);
    assert.equal(coerceFlagValue('abc', TrainingArgumentsSchema.shape.learning_rate), 'abc');
    const { overrides } = parsed(['--output_dir', 'o', '--model_name_or_path', 'm', '--dataset_path', 'd', '--learning_rate', '-1', '--seed', '1.5', '--warmup_ratio', 'abc', '--packing', 'maybe', '--lora_target_modules', ',']);
    try {
      parseConfig(SftConfigSchema, { overrides });
      assert.fail('expected a ConfigError');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.deepEqual(e.problems, [
        '--seed: must be an integer, got 1.5',
        '--learning_rate: must be > 0, got -1',
        "--warmup_ratio: must be a number, got 'abc' (a string)",
        "--packing: must be true or false, got 'maybe' (a string)",
        "--lora_target_modules: must be a list of module names or 'all-linear'",
      ]);
    }
  });

  it('flags win over the config file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'alignkit-flags-'));
    try {
      const file = join(dir, 'c.yaml');
      writeFileSync(file, 'output_dir: o\nmodel_name_or_path: m\ndataset_path: d\nlearning_rate: 1e-5\npacking: true\n');
      const { cmd, overrides } = parsed(['--config', file, '--learning_rate', '5e-5', '--packing', 'false']);
      const c = parseConfig(SftConfigSchema, { file: cmd.opts().config as string, overrides });
      assert.equal(c.learning_rate, 5e-5);
      assert.equal(c.packing, false);
      assert.equal(c.seed, 42); // neither gave it: the schema default, not commander's
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('commander itself rejects a missing value', () => {
    assert.throws(() => program().parse(['--learning_rate'], { from: 'user' }), /argument missing/);
  });
});

describe('Markdown reference', () => {
  it('schemaFields reads types, ranges, defaults and descriptions', () => {
    const f = Object.fromEntries(schemaFields(SftConfigSchema).map((x) => [x.key, x]));
    assert.equal(f.learning_rate.typeText, 'number > 0');
    assert.equal(f.warmup_ratio.typeText, 'number ≥ 0, ≤ 1');
    assert.equal(f.eval_steps.typeText, 'integer ≥ 1 or null');
    assert.equal(f.resume_from_checkpoint.typeText, "null or string or true");
    assert.equal(f.output_dir.hasDefault, false);
    assert.deepEqual(f.lora_target_modules.default, ['q_proj', 'k_proj', 'v_proj', 'o_proj']);
  });
  it('renderConfigTable escapes pipes; updateGeneratedSections replaces only marked regions', () => {
    const t = renderConfigTable(TrainingArgumentsSchema, ['optim']);
    assert.equal(t.split('\n')[2], "| `optim` | 'adamw' \\| 'sgd' | `adamw` | Optimizer: adamw (decoupled weight decay, torch AdamW) or sgd (with optional momentum). |");
    const md = 'intro\n<!-- BEGIN GENERATED: a -->\nold\n<!-- END GENERATED: a -->\noutro\n';
    assert.equal(updateGeneratedSections(md, (n) => (n === 'a' ? 'new' : undefined)), 'intro\n<!-- BEGIN GENERATED: a -->\nnew\n<!-- END GENERATED: a -->\noutro\n');
    assert.throws(() => updateGeneratedSections(md, () => undefined), /unknown generated section 'a'/);
  });
  it('docs/training-config.md and docs/rl.md (PPO / GRPO / RLOO tables) are up to date with the schemas', () => {
    const script = fileURLToPath(new URL('../../scripts/gen-config-docs.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr || r.stdout);
    assert.match(r.stdout, /^docs\/training-config\.md is up to date$/m);
    assert.match(r.stdout, /^docs\/rl\.md is up to date$/m);
  });
});
