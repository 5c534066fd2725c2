// Training configuration: HF/TRL names and defaults, YAML/JSON files with overrides, strict keys with useful
// messages (renamed, unsupported, typos), ranges and cross-field rules, one error listing every problem.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ConfigError, SftConfigSchema, TrainingArgumentsSchema, bestMetricName, configIssue, evalStepsOf, extendTrainingArguments, greaterIsBetter,
  lrScheduleFor, parseConfig, schemaKeys, trainDataPath, type SftConfig, type TrainingArguments,
} from '../../src/train/config.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';
import { learningRateAt } from '../../src/train/schedule.ts';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** The problems of a config that must fail. */
function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.ok(e instanceof AlignkitError);
    assert.equal(e.message, e.problems.join('; '));
    assert.ok(!e.message.includes('\n'), 'one-line message');
    return [...e.problems];
  }
  assert.fail('expected a ConfigError');
}

const minimalSft = { output_dir: 'out', model_name_or_path: 'models/tiny', dataset_path: 'data/train.jsonl' };

describe('TrainingArguments / SFTConfig defaults', () => {
  it('match transformers TrainingArguments and TRL SFTConfig (and the alignkit additions)', () => {
    const c: SftConfig = parseConfig(SftConfigSchema, { overrides: minimalSft });
    const expected: Partial<SftConfig> = {
      seed: 42, learning_rate: 2e-5, num_train_epochs: 3, max_steps: -1, per_device_train_batch_size: 8, per_device_eval_batch_size: 8,
      gradient_accumulation_steps: 1, lr_scheduler_type: 'linear', lr_scheduler_kwargs: {}, warmup_ratio: 0, warmup_steps: 0, weight_decay: 0,
      adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-8, optim: 'adamw', momentum: 0, max_grad_norm: 1.0, logging_steps: 10,
      eval_strategy: 'no', eval_steps: null, save_strategy: 'steps', save_steps: 500, save_total_limit: null, load_best_model_at_end: false,
      metric_for_best_model: 'eval_loss', greater_is_better: null, early_stopping_patience: null, early_stopping_threshold: 0,
      resume_from_checkpoint: null, dropout: null, max_nan_steps: 10, report_to: ['tensorboard'], disable_tqdm: false, skip_invalid: false,
      eval_fraction: 0,
      max_length: 1024, packing: false, completion_only_loss: true, assistant_only_loss: true, truncation: 'error', padding_side: 'right',
      chat_template_path: null, dataset_text_field: 'text', use_lora: false, lora_r: 8, lora_alpha: 16, lora_dropout: 0.05,
      lora_target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], trainable_modules: null, rehearsal_file: null, rehearsal_ratio: 0,
      l2_init_coef: 0, ewc_coef: 0, ewc_fisher_samples: 32, eval_file: null, train_file: null,
    };
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(c[k as keyof SftConfig], v, k);
  });

  it('every field of both schemas has a description', () => {
    for (const schema of [TrainingArgumentsSchema, SftConfigSchema]) {
      for (const [k, f] of Object.entries(schema.shape)) assert.ok(((f as z.ZodType).description ?? '').length > 10, `${k} has no description`);
    }
  });
});

describe('parseConfig: sources', () => {
  it('reads YAML; overrides win over the file', () => {
    const p = file('a.yaml', ['# a TRL-style config', 'output_dir: runs/a', 'model_name_or_path: m', 'train_file: d.jsonl', 'learning_rate: 1e-4', 'weight_decay: 1e-2', 'lora_target_modules: all-linear', 'report_to: none', 'lr_scheduler_type: cosine', 'lr_scheduler_kwargs:', '  min_lr_rate: 0.1', ''].join('\n'));
    const c = parseConfig(SftConfigSchema, { file: p, overrides: { learning_rate: 3e-4, seed: 7 } });
    assert.equal(c.learning_rate, 3e-4);
    assert.equal(c.weight_decay, 0.01); // YAML 1.2: 1e-2 is a number (PyYAML's YAML 1.1 would read a string)
    assert.equal(c.seed, 7);
    assert.equal(c.output_dir, 'runs/a');
    assert.equal(c.lora_target_modules, 'all-linear');
    assert.deepEqual(c.report_to, ['none']); // a single target is normalised to a list
    assert.deepEqual(c.lr_scheduler_kwargs, { min_lr_rate: 0.1 });
    assert.equal(trainDataPath(c), 'd.jsonl');
  });

  it('reads JSON; an empty YAML file is an empty mapping', () => {
    const p = file('b.json', JSON.stringify({ output_dir: 'o', max_steps: 100, resume_from_checkpoint: true }));
    const c: TrainingArguments = parseConfig(TrainingArgumentsSchema, { file: p });
    assert.equal(c.max_steps, 100);
    assert.equal(c.resume_from_checkpoint, true);
    const empty = file('empty.yaml', '# nothing\n');
    assert.equal(parseConfig(TrainingArgumentsSchema, { file: empty, overrides: { output_dir: 'x' } }).output_dir, 'x');
  });

  it('file errors name the file and line', () => {
    assert.deepEqual(problems(() => parseConfig(TrainingArgumentsSchema, { file: join(dir, 'missing.yaml') })), [`${join(dir, 'missing.yaml')}: file not found`]);
    const bad = file('bad.yaml', 'output_dir: o\nseed: [1, 2\nlr: 3\n');
    const p = problems(() => parseConfig(TrainingArgumentsSchema, { file: bad }));
    assert.match(p[0], new RegExp(`^${bad.replace(/[.]/g, '\\.')}: line \\d+: invalid YAML: `));
    const dup = file('dup.yaml', 'output_dir: o\nseed: 1\nseed: 2\n');
    assert.match(problems(() => parseConfig(TrainingArgumentsSchema, { file: dup }))[0], /dup\.yaml: line 3: invalid YAML: .*unique/);
    const list = file('list.yaml', '- output_dir: o\n');
    assert.match(problems(() => parseConfig(TrainingArgumentsSchema, { file: list }))[0], /list\.yaml: the top level must map keys to values .* got a list/);
    const json = file('bad.json', '{\n  "output_dir": "o",\n  "seed": 1,\n}\n');
    assert.match(problems(() => parseConfig(TrainingArgumentsSchema, { file: json }))[0], /bad\.json: line 4: invalid JSON: /);
    mkdirSync(join(dir, 'adir.yaml'));
    assert.match(problems(() => parseConfig(TrainingArgumentsSchema, { file: join(dir, 'adir.yaml') }))[0], /is a directory/);
  });
});

describe('parseConfig: problems, all at once', () => {
  it('unknown keys: renamed, unsupported, typos — with file lines, in file order', () => {
    const p = file('keys.yaml', ['output_dir: o', 'model_name_or_path: m', 'dataset_path: d', 'max_seq_length: 512', 'evaluation_strategy: steps', 'fp16: true', 'learnig_rate: 1e-4', 'frobnicate: 1', ''].join('\n'));
    assert.deepEqual(problems(() => parseConfig(SftConfigSchema, { file: p })), [
      `${p}: line 4: key 'max_seq_length': unknown key; it is called 'max_length' now`,
      `${p}: line 5: key 'evaluation_strategy': unknown key; it is called 'eval_strategy' now`,
      `${p}: line 6: key 'fp16': not supported: alignkit trains in float32 on the CPU`,
      `${p}: line 7: key 'learnig_rate': unknown key; did you mean 'learning_rate'?`,
      `${p}: line 8: key 'frobnicate': unknown key`,
    ]);
    // max_length is an SFT field: the base schema does not suggest it.
    assert.deepEqual(problems(() => parseConfig(TrainingArgumentsSchema, { overrides: { output_dir: 'o', max_seq_length: 5 } })), [`--max_seq_length: unknown key`]);
  });

  it('types and ranges, from the file and from flags', () => {
    const p = file('ranges.yaml', ['output_dir: o', 'learning_rate: 0', 'warmup_ratio: 1.5', 'gradient_accumulation_steps: 0', 'max_steps: 0', 'adam_beta1: 1', 'seed: 1.5', 'optim: adam', 'report_to: [wandb]', 'save_total_limit: "3"', ''].join('\n'));
    assert.deepEqual(problems(() => parseConfig(TrainingArgumentsSchema, { file: p, overrides: { per_device_train_batch_size: -2 } })), [
      `${p}: line 2: key 'learning_rate': must be > 0, got 0`,
      `${p}: line 3: key 'warmup_ratio': must be <= 1, got 1.5`,
      `${p}: line 4: key 'gradient_accumulation_steps': must be >= 1, got 0`,
      `${p}: line 5: key 'max_steps': must be -1 (train for num_train_epochs) or a positive number of optimizer steps`,
      `${p}: line 6: key 'adam_beta1': must be < 1, got 1`,
      `${p}: line 7: key 'seed': must be an integer, got 1.5`,
      `${p}: line 8: key 'optim': must be one of 'adamw', 'sgd', got 'adam' (a string)`,
      `${p}: line 9: key 'report_to': must be 'tensorboard', 'none' or a list of those`,
      `${p}: line 10: key 'save_total_limit': must be a number, got '3' (a string)`,
      `--per_device_train_batch_size: must be >= 1, got -2`,
    ]);
  });

  it('missing required keys say where to set them', () => {
    assert.deepEqual(problems(() => parseConfig(SftConfigSchema, {})), [
      `key 'output_dir': required (--output_dir)`,
      `key 'model_name_or_path': required (--model_name_or_path)`,
    ]);
    const p = file('nomodel.yaml', 'output_dir: o\ndataset_path: d\n');
    assert.deepEqual(problems(() => parseConfig(SftConfigSchema, { file: p })), [`${p}: key 'model_name_or_path': required (set it in the file or with --model_name_or_path)`]);
  });
});

describe('cross-field rules', () => {
  const base = { output_dir: 'o' };
  const check = (o: Record<string, unknown>) => problems(() => parseConfig(TrainingArgumentsSchema, { overrides: { ...base, ...o } }));

  it('load_best_model_at_end needs evaluation, matching strategies and aligned steps', () => {
    assert.deepEqual(check({ load_best_model_at_end: true }), [`--load_best_model_at_end: needs evaluation: set eval_strategy to 'steps' or 'epoch'`]);
    assert.match(check({ load_best_model_at_end: true, eval_strategy: 'epoch', save_strategy: 'steps' })[0], /needs save_strategy equal to eval_strategy/);
    assert.deepEqual(check({ load_best_model_at_end: true, eval_strategy: 'steps', eval_steps: 30, save_steps: 100 }), [`--save_steps: must be a multiple of eval_steps (30) with load_best_model_at_end, got 100`]);
    // eval_steps null falls back to logging_steps (10): 500 is a multiple.
    assert.equal(parseConfig(TrainingArgumentsSchema, { overrides: { ...base, load_best_model_at_end: true, eval_strategy: 'steps' } }).load_best_model_at_end, true);
  });

  it('early stopping needs evaluation; report_to none is exclusive; momentum is for sgd', () => {
    assert.deepEqual(check({ early_stopping_patience: 3 }), [`--early_stopping_patience: needs evaluation: set eval_strategy to 'steps' or 'epoch'`]);
    assert.deepEqual(check({ report_to: ['none', 'tensorboard'] }), [`--report_to: 'none' cannot be combined with other targets`]);
    assert.deepEqual(check({ momentum: 0.9 }), [`--momentum: applies to optim 'sgd' only (optim is 'adamw')`]);
    assert.equal(parseConfig(TrainingArgumentsSchema, { overrides: { ...base, optim: 'sgd', momentum: 0.9 } }).momentum, 0.9);
  });

  it('lr_scheduler_kwargs must belong to the scheduler', () => {
    assert.deepEqual(check({ lr_scheduler_kwargs: { num_cycles: 2 } }), [`--lr_scheduler_kwargs (at lr_scheduler_kwargs.num_cycles): not a parameter of the 'linear' scheduler (it takes none)`]);
    assert.deepEqual(check({ lr_scheduler_type: 'step' }), [`--lr_scheduler_type: step_size: required by the 'step' scheduler`.replace('--lr_scheduler_type', `key 'lr_scheduler_kwargs'`)]);
  });

  it('SFT: training data, eval data, rehearsal', () => {
    const sft = (o: Record<string, unknown>) => problems(() => parseConfig(SftConfigSchema, { overrides: { output_dir: 'o', model_name_or_path: 'm', ...o } }));
    assert.deepEqual(sft({}), [`key 'dataset_path': required (or train_file): the training data`]);
    assert.deepEqual(sft({ dataset_path: 'a', train_file: 'b' }), [`--train_file: give dataset_path or train_file, not both`]);
    assert.deepEqual(sft({ dataset_path: 'a', eval_strategy: 'steps' }), [`--eval_strategy: 'steps' needs evaluation data: set eval_file or eval_fraction`]);
    assert.deepEqual(sft({ dataset_path: 'a', eval_file: 'e', eval_fraction: 0.1 }), [`--eval_fraction: give eval_file or eval_fraction, not both`]);
    assert.deepEqual(sft({ dataset_path: 'a', rehearsal_ratio: 0.2 }), [`--rehearsal_ratio: needs rehearsal_file`]);
    assert.deepEqual(sft({ dataset_path: 'a', rehearsal_file: 'r' }), [`--rehearsal_file: is set but rehearsal_ratio is 0`]);
    // The base rules still apply to the SFT schema.
    assert.deepEqual(sft({ dataset_path: 'a', momentum: 0.5 }), [`--momentum: applies to optim 'sgd' only (optim is 'adamw')`]);
  });
});

describe('extending the base schema (later trainers)', () => {
  const DpoConfigSchema = extendTrainingArguments({ beta: z.number().gt(0).default(0.1).describe('DPO temperature β.') }).superRefine((c, ctx) => {
    if (c.beta > 1 && c.learning_rate > 1e-3) configIssue(ctx, 'beta', 'too aggressive with that learning rate');
  });
  it('keeps every base field, strictness and base check, and adds its own', () => {
    const c = parseConfig(DpoConfigSchema, { overrides: { output_dir: 'o', beta: 0.5 } });
    assert.equal(c.beta, 0.5);
    assert.equal(c.learning_rate, 2e-5);
    assert.ok(schemaKeys(DpoConfigSchema).includes('beta') && schemaKeys(DpoConfigSchema).includes('seed'));
    assert.deepEqual(problems(() => parseConfig(DpoConfigSchema, { overrides: { output_dir: 'o', betta: 1 } })), [`--betta: unknown key; did you mean 'beta'?`]);
    assert.deepEqual(problems(() => parseConfig(DpoConfigSchema, { overrides: { output_dir: 'o', momentum: 0.5 } })), [`--momentum: applies to optim 'sgd' only (optim is 'adamw')`]);
    assert.deepEqual(problems(() => parseConfig(DpoConfigSchema, { overrides: { output_dir: 'o', beta: 2, learning_rate: 0.01 } })), [`--beta: too aggressive with that learning rate`]);
  });
});

describe('helpers', () => {
  const args = parseConfig(TrainingArgumentsSchema, { overrides: { output_dir: 'o', lr_scheduler_type: 'cosine', learning_rate: 1e-3, warmup_ratio: 0.1, lr_scheduler_kwargs: { min_lr: 1e-4 } } });
  it('lrScheduleFor: warmup from the ratio (rounded up), kwargs mapped', () => {
    const s = lrScheduleFor(args, 95);
    assert.equal(s.warmupSteps, 10); // ceil(9.5)
    assert.equal(s.totalSteps, 95);
    assert.ok(Math.abs((s.minLrRatio ?? 0) - 0.1) < 1e-15);
    assert.equal(learningRateAt(10, s), 1e-3);
    assert.ok(Math.abs(learningRateAt(95, s) - 1e-4) < 1e-15);
  });
  it('greaterIsBetter, bestMetricName, evalStepsOf follow transformers', () => {
    assert.equal(greaterIsBetter({ greater_is_better: null, metric_for_best_model: 'eval_loss' }), false);
    assert.equal(greaterIsBetter({ greater_is_better: null, metric_for_best_model: 'accuracy' }), true);
    assert.equal(greaterIsBetter({ greater_is_better: true, metric_for_best_model: 'eval_loss' }), true);
    assert.equal(bestMetricName({ metric_for_best_model: 'accuracy' }), 'eval_accuracy');
    assert.equal(bestMetricName({ metric_for_best_model: 'eval_loss' }), 'eval_loss');
    assert.equal(evalStepsOf({ eval_steps: null, logging_steps: 25 }), 25);
    assert.equal(evalStepsOf({ eval_steps: 7, logging_steps: 25 }), 7);
  });
});
