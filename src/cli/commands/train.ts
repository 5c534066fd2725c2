// `alignkit sft`, `alignkit lr-find` and `alignkit sweep`: a YAML/JSON config whose every field is also a
// --snake_case flag (a flag wins over the file), validated before anything is loaded.

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { AlignkitError } from '../../tensor/index.ts';
import { parseConfig, SftConfigSchema, type SftConfig } from '../../train/config.ts';
import { flagOverrides, registerConfigFlags } from '../../train/cli_flags.ts';
import { runSft, runSftLrFind } from '../../trainers/sft.ts';
import { parseSweepSpec, runSweep } from '../../train/sweep.ts';

interface CommonFlags {
  config?: string;
  resume?: boolean;
  skipInvalid?: boolean;
  json?: boolean;
}

function sftConfigFrom(cmd: Command, extra: Record<string, unknown> = {}): SftConfig {
  const o = cmd.opts<CommonFlags>();
  const overrides = { ...flagOverrides(cmd, SftConfigSchema), ...extra };
  if (o.resume) overrides.resume_from_checkpoint = true;
  if (o.skipInvalid) overrides.skip_invalid = true;
  return parseConfig(SftConfigSchema, { file: o.config, overrides });
}

function printJsonOrLines(json: boolean | undefined, obj: Record<string, unknown>, lines: string[]): void {
  if (json) console.log(JSON.stringify(obj));
  else for (const l of lines) console.log(l);
}

export function registerTrainCommands(program: Command): void {
  const sft = program
    .command('sft')
    .description(
      'supervised fine-tuning (full or LoRA) of a Hugging Face model folder on a JSONL/JSON/Parquet dataset ({"text"}, {"prompt","completion"}, {"messages"}, ShareGPT, Alpaca). ' +
        'Writes a normal HF checkpoint (or a PEFT adapter) to output_dir, checkpoints every save_steps (resume exactly with --resume), metrics.jsonl and TensorBoard events.',
    )
    .option('--config <file>', 'YAML or JSON config with the fields below (flags override it)')
    .option('--resume', 'continue from the newest complete checkpoint in output_dir (same as resume_from_checkpoint: true)')
    .option('--skip-invalid', 'skip (and count in the summary) malformed dataset rows instead of stopping at the first (same as skip_invalid: true)')
    .option('--json', 'print the final summary as one JSON object');
  registerConfigFlags(sft, SftConfigSchema);
  sft.action(async () => {
    const cfg = sftConfigFrom(sft);
    const json = sft.opts<CommonFlags>().json;
    const r = await runSft(cfg, { console: !json && !cfg.disable_tqdm });
    printJsonOrLines(
      json,
      { output_dir: r.outputDir, global_step: r.globalStep, train_loss: r.trainLoss, eval: r.lastEval, nan_skipped_steps: r.nanSteps, stopped_early: r.stoppedEarly, best: r.best, resumed_from: r.resumedFrom, dataset: r.datasetStats },
      [`sft: ${r.globalStep} steps, train loss ${r.trainLoss.toFixed(4)}${r.lastEval ? `, eval loss ${r.lastEval.eval_loss?.toFixed(4)}` : ''} -> ${r.outputDir}`],
    );
  });

  const lrFind = program
    .command('lr-find')
    .description(
      'learning-rate range test: train for --num_steps steps while the learning rate grows exponentially from --min_lr to --max_lr, stop when the loss diverges, and suggest the lr where the loss falls fastest. Uses the sft config; nothing is saved except lr_find.json (+ .svg) in output_dir.',
    )
    .option('--config <file>', 'the sft config (YAML or JSON)')
    .option('--min_lr <lr>', 'first learning rate', '1e-7')
    .option('--max_lr <lr>', 'last learning rate', '1')
    .option('--num_steps <n>', 'steps of the test', '100')
    .option('--json', 'print the curve and the suggestion as JSON');
  registerConfigFlags(lrFind, SftConfigSchema);
  lrFind.action(async () => {
    const o = lrFind.opts<CommonFlags & { min_lr: string; max_lr: string; num_steps: string }>();
    const cfg = sftConfigFrom(lrFind);
    const num = (v: string, name: string): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new AlignkitError(`lr-find: ${name} must be a positive number, got '${v}'`);
      return n;
    };
    const r = await runSftLrFind(cfg, { minLr: num(o.min_lr, '--min_lr'), maxLr: num(o.max_lr, '--max_lr'), steps: Math.round(num(o.num_steps, '--num_steps')) });
    printJsonOrLines(o.json, { ...r }, [
      `lr-find: ${r.points.length} steps${r.diverged ? ' (stopped: loss diverged)' : ''}`,
      `suggested learning_rate: ${r.suggestedLr === null ? 'none (the loss never fell)' : r.suggestedLr.toExponential(2)}; minimum loss at ${r.minLossLr === null ? '-' : r.minLossLr.toExponential(2)}`,
      `curve: ${path.join(cfg.output_dir, 'lr_find.json')}`,
    ]);
  });

  const sweep = program
    .command('sweep')
    .description(
      'hyperparameter search: --sweep FILE (YAML: method grid|random, budget, metric, seed, parameters: {field: [values] | {min, max, log, integer}}) over an sft --config; each trial is a normal run in output_dir/trial-<k>; prints the trials ranked by the metric and writes sweep_results.json.',
    )
    .requiredOption('--sweep <file>', 'the search space file')
    .option('--config <file>', 'the base sft config')
    .option('--json', 'print the ranking as JSON');
  registerConfigFlags(sweep, SftConfigSchema);
  sweep.action(async () => {
    const o = sweep.opts<CommonFlags & { sweep: string }>();
    let raw: unknown;
    try {
      raw = parseYaml(fs.readFileSync(o.sweep, 'utf8'));
    } catch (e) {
      throw new AlignkitError(`sweep: cannot read ${o.sweep}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const spec = parseSweepSpec(raw, o.sweep);
    const base = sftConfigFrom(sweep);
    // every trial's config is validated before the first one runs
    const known = new Set(Object.keys(SftConfigSchema.shape));
    for (const k of Object.keys(spec.parameters)) if (!known.has(k)) throw new AlignkitError(`${o.sweep}: key 'parameters.${k}': not an sft config field`);
    const result = await runSweep(
      spec,
      async (overrides, index) => {
        const outputDir = path.join(base.output_dir, `trial-${index}`);
        const cfg = parseConfig(SftConfigSchema, { file: o.config, overrides: { ...flagOverrides(sweep, SftConfigSchema), ...overrides, output_dir: outputDir, overwrite_output_dir: true } });
        const r = await runSft(cfg, { console: false });
        return { metrics: { ...(r.lastEval ?? {}), train_loss: r.trainLoss }, outputDir };
      },
      (t) => {
        if (!o.json) console.log(`trial ${t.index}: ${JSON.stringify(t.overrides)} -> ${spec.metric} ${Number.isFinite(t.value) ? t.value.toFixed(5) : `failed (${t.error})`}`);
      },
    );
    fs.mkdirSync(base.output_dir, { recursive: true });
    fs.writeFileSync(path.join(base.output_dir, 'sweep_results.json'), `${JSON.stringify(result, null, 2)}\n`);
    printJsonOrLines(o.json, { ...result }, [
      `ranking by ${result.metric} (${result.greaterIsBetter ? 'higher' : 'lower'} is better):`,
      ...result.ranked.map((t, i) => `${i + 1}. trial ${t.index} ${JSON.stringify(t.overrides)}: ${Number.isFinite(t.value) ? t.value.toFixed(5) : `failed: ${t.error}`}`),
    ]);
  });
}
