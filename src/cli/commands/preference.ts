// Preference commands: `alignkit reward|dpo|kto|orpo|simpo` (trainers; every config field is a --snake_case flag),
// `rm-score` (score responses with a reward model), `best-of-n` (rejection sampling) and `winrate` (two models
// judged pairwise, with a Wilson interval and a sign test).

import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { z } from 'zod';
import { AlignkitError } from '../../tensor/index.ts';
import { loadModel } from '../../models/index.ts';
import { loadTokenizer } from '../../tokenizer/index.ts';
import { DpoConfigSchema, KtoConfigSchema, OrpoConfigSchema, RewardConfigSchema, SimpoConfigSchema, parseConfig } from '../../train/config.ts';
import { flagOverrides, registerConfigFlags } from '../../train/cli_flags.ts';
import { evaluateDpo, runDpo } from '../../trainers/dpo.ts';
import { evaluateReward, runReward, RewardScorer } from '../../trainers/reward.ts';
import { runKto } from '../../trainers/kto.ts';
import { evaluateOrpo, evaluateSimpo, runOrpo, runSimpo } from '../../trainers/orpo_simpo.ts';
import { bestOfN, endpointJudge, moduleScorer, rewardModelScorer, winRate, type SamplingFlags, type Scorer } from '../../trainers/compare.ts';
import { openRowSource } from '../../data/source.ts';
import { writeAtomically } from '../../io/file.ts';

interface TrainerFlags {
  config?: string;
  resume?: boolean;
  skipInvalid?: boolean;
  evalOnly?: boolean;
  json?: boolean;
}

function configFrom<S extends z.ZodType>(cmd: Command, schema: S): z.output<S> {
  const o = cmd.opts<TrainerFlags>();
  const overrides = flagOverrides(cmd, schema);
  if (o.resume) overrides.resume_from_checkpoint = true;
  if (o.skipInvalid) overrides.skip_invalid = true;
  return parseConfig(schema, { file: o.config, overrides });
}

const print = (json: boolean | undefined, obj: Record<string, unknown>, lines: string[]): void => {
  if (json) console.log(JSON.stringify(obj));
  else for (const l of lines) console.log(l);
};

function fmtMetrics(m: Record<string, number> | null): string {
  if (!m) return '';
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(4)}`)
    .join(', ');
}

interface TrainerSpec {
  name: string;
  description: string;
  schema: z.ZodType;
  run: (cfg: never, o: { console?: boolean }) => Promise<{ outputDir: string; globalStep: number; trainLoss: number; lastEval: Record<string, number> | null; nanSteps: number; resumedFrom: string | null }>;
  evaluate?: (cfg: never) => Promise<Record<string, number>>;
}

const TRAINERS: TrainerSpec[] = [
  {
    name: 'reward',
    description:
      'train a reward model: a scalar head on a causal LM, Bradley–Terry loss −log σ(r_chosen − r_rejected − margin) on {"prompt","chosen","rejected"} pairs (or HH-RLHF-style full conversations); saves a *ForSequenceClassification checkpoint. Metrics: accuracy, margin, rewards/chosen, rewards/rejected.',
    schema: RewardConfigSchema,
    run: runReward as TrainerSpec['run'],
    evaluate: evaluateReward as TrainerSpec['evaluate'],
  },
  {
    name: 'dpo',
    description:
      'Direct Preference Optimization (loss_type sigmoid | ipo | hinge | robust, label_smoothing for cDPO) against a frozen reference (ref_model, or the initial policy; LoRA: the base with adapters off) whose log-probs are computed once and cached. Metrics as TRL: rewards/chosen (often falls while rewards/margins grow: expected), rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected.',
    schema: DpoConfigSchema,
    run: runDpo as TrainerSpec['run'],
    evaluate: evaluateDpo as TrainerSpec['evaluate'],
  },
  {
    name: 'kto',
    description:
      'KTO on unpaired {"prompt","completion","label": true|false} data (desirable_weight, undesirable_weight, beta; the KL reference point from mismatched prompt/completion pairs). Metrics: kl, rewards/chosen, rewards/rejected, logps/*.',
    schema: KtoConfigSchema,
    run: runKto as TrainerSpec['run'],
  },
  {
    name: 'orpo',
    description: 'ORPO: the SFT loss on chosen responses plus beta × the odds-ratio preference term; no reference model. Metrics: nll_loss, log_odds_ratio, rewards/* as TRL.',
    schema: OrpoConfigSchema,
    run: runOrpo as TrainerSpec['run'],
    evaluate: evaluateOrpo as TrainerSpec['evaluate'],
  },
  {
    name: 'simpo',
    description: 'SimPO: −log σ(β(avg log p(chosen) − avg log p(rejected)) − γ) on length-normalised log-probs, target margin γ = beta × simpo_gamma; no reference model.',
    schema: SimpoConfigSchema,
    run: runSimpo as TrainerSpec['run'],
    evaluate: evaluateSimpo as TrainerSpec['evaluate'],
  },
];

function registerTrainer(program: Command, t: TrainerSpec): void {
  const cmd = program
    .command(t.name)
    .description(`${t.description} Every config field is also a --snake_case flag (flags override --config).`)
    .option('--config <file>', 'YAML or JSON config (flags override it)')
    .option('--resume', 'continue from the newest complete checkpoint in output_dir')
    .option('--skip-invalid', 'skip (and count) malformed rows instead of stopping at the first')
    .option('--json', 'print the result as one JSON object');
  if (t.evaluate) cmd.option('--eval_only', 'compute the loss and metrics on eval_file (or the training data) without updating any weight, and print them');
  registerConfigFlags(cmd, t.schema);
  cmd.action(async () => {
    const o = cmd.opts<TrainerFlags & { eval_only?: boolean }>();
    const cfg = configFrom(cmd, t.schema) as never;
    if (o.eval_only && t.evaluate) {
      const m = await t.evaluate(cfg);
      print(o.json, m, [`${t.name} eval: ${fmtMetrics(m)}`]);
      return;
    }
    const r = await t.run(cfg, { console: !o.json });
    print(
      o.json,
      { output_dir: r.outputDir, global_step: r.globalStep, train_loss: r.trainLoss, eval: r.lastEval, nan_skipped_steps: r.nanSteps, resumed_from: r.resumedFrom },
      [`${t.name}: ${r.globalStep} steps, train loss ${r.trainLoss.toFixed(4)}${r.lastEval ? `; ${fmtMetrics(r.lastEval)}` : ''} -> ${r.outputDir}`],
    );
  });
}

/** Prompts from a text file (one per line) or JSONL/JSON/Parquet with a `prompt` field. */
async function readPrompts(file: string, field = 'prompt'): Promise<string[]> {
  if (/\.(txt|text)$/.test(file)) return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim().length > 0);
  const src = await openRowSource(file);
  try {
    const out: string[] = [];
    for (let i = 0; i < src.length; i++) {
      const row = await src.get(i);
      const v = row[field];
      if (typeof v !== 'string' || !v) throw new AlignkitError(`${file}:${src.lineOf(i)}: field '${field}': a non-empty string is required`);
      out.push(v);
    }
    return out;
  } finally {
    await src.close();
  }
}

function samplingFlags(cmd: Command): Command {
  return cmd
    .option('--max-new-tokens <n>', 'tokens to generate per response', '64')
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', '1')
    .option('--top-k <k>', 'top-k filtering (0 = off)', '0')
    .option('--top-p <p>', 'nucleus filtering (1 = off)', '1')
    .option('--seed <n>', 'seed of the sampling streams', '0');
}

function samplingOf(o: Record<string, string>): SamplingFlags {
  const num = (k: string, v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new AlignkitError(`--${k}: expected a number >= 0, got '${v}'`);
    return n;
  };
  return { maxNewTokens: Math.max(1, Math.round(num('max-new-tokens', o.maxNewTokens))), temperature: num('temperature', o.temperature), topK: Math.round(num('top-k', o.topK)), topP: num('top-p', o.topP), seed: Math.round(num('seed', o.seed)) };
}

/** A judge spec: `rm:DIR` (reward model), `module:FILE.ts` (exports score(prompt, response)), `endpoint:URL#MODEL`. */
async function scorerOf(spec: string, tokDir: string): Promise<Scorer> {
  if (spec.startsWith('rm:')) return rewardModelScorer(spec.slice(3), loadTokenizer(tokDir));
  if (spec.startsWith('module:')) return moduleScorer(spec.slice(7));
  throw new AlignkitError(`scorer '${spec}': use rm:DIR (a reward model folder) or module:FILE (a module exporting score(prompt, response))`);
}

export function registerPreferenceCommands(program: Command): void {
  for (const t of TRAINERS) registerTrainer(program, t);

  program
    .command('rm-score')
    .description('score responses with a reward model: --data JSONL with prompt + response (or chosen/rejected, or text) fields; prints/writes one score per row')
    .requiredOption('--model <dir>', 'a reward model folder (*ForSequenceClassification, e.g. from alignkit reward)')
    .requiredOption('--data <file>', 'JSONL/JSON/Parquet rows: {prompt, response} or {text}')
    .option('--out <file>', 'write the rows with a "score" field as JSONL (atomically)')
    .option('--json', 'print the scores as one JSON object')
    .action(async (o: { model: string; data: string; out?: string; json?: boolean }) => {
      const tok = loadTokenizer(o.model);
      const rm = new RewardScorer(o.model);
      const src = await openRowSource(o.data);
      try {
        const rows: Record<string, unknown>[] = [];
        const texts: number[][] = [];
        for (let i = 0; i < src.length; i++) {
          const row = await src.get(i);
          const text = typeof row.text === 'string' ? row.text : typeof row.prompt === 'string' && typeof row.response === 'string' ? row.prompt + row.response : null;
          if (text === null) throw new AlignkitError(`${o.data}:${src.lineOf(i)}: field 'response': rows need prompt + response strings, or text`);
          const ids = tok.encode(text);
          if (tok.eosId !== null && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
          rows.push(row);
          texts.push(ids);
        }
        const scores: number[] = [];
        for (let i = 0; i < texts.length; i += 8) scores.push(...rm.score(texts.slice(i, i + 8), tok.padId ?? 0));
        if (o.out) writeAtomically('rm-score', path.resolve(o.out), (f) => f.write(new TextEncoder().encode(rows.map((r, i) => JSON.stringify({ ...r, score: scores[i] })).join('\n') + '\n')));
        const mean = scores.reduce((a, b) => a + b, 0) / Math.max(scores.length, 1);
        print(o.json, { scores, mean }, [...scores.map((s, i) => `${i + 1}\t${s.toFixed(4)}`), `mean ${mean.toFixed(4)} over ${scores.length} rows`]);
      } finally {
        await src.close();
        rm.dispose();
      }
    });

  samplingFlags(
    program
      .command('best-of-n')
      .description('rejection sampling: n responses per prompt from --model, scored by --scorer (rm:DIR | module:FILE), keep the best; --out writes {prompt, completion, score, candidates} JSONL usable as SFT data')
      .requiredOption('--model <dir>', 'the policy model folder')
      .requiredOption('--prompts <file>', 'prompts: .txt (one per line) or JSONL with a prompt field')
      .requiredOption('--scorer <spec>', 'rm:DIR (reward model) or module:FILE (exports score(prompt, response) => number)')
      .option('--n <n>', 'samples per prompt', '4')
      .option('--out <file>', 'write the JSONL result (atomically)')
      .option('--json', 'print the result as JSON'),
  ).action(async (o: Record<string, string> & { json?: boolean; out?: string }) => {
    const model = loadModel(o.model, { trainable: false });
    const tok = loadTokenizer(o.model);
    const scorer = await scorerOf(o.scorer, o.model);
    try {
      const rows = await bestOfN(model, tok, await readPrompts(o.prompts), Math.round(Number(o.n)), scorer, samplingOf(o));
      if (o.out) writeAtomically('best-of-n', path.resolve(o.out), (f) => f.write(new TextEncoder().encode(rows.map((r) => JSON.stringify(r)).join('\n') + '\n')));
      const mean = rows.reduce((a, r) => a + r.score, 0) / Math.max(rows.length, 1);
      const meanAll = rows.reduce((a, r) => a + r.candidates.reduce((x, c) => x + c.score, 0) / r.candidates.length, 0) / Math.max(rows.length, 1);
      print(o.json, { rows, mean_best_score: mean, mean_sample_score: meanAll }, [`best-of-${o.n}: mean best score ${mean.toFixed(4)} (mean of all samples ${meanAll.toFixed(4)}) over ${rows.length} prompts`]);
    } finally {
      scorer.dispose();
      model.dispose();
    }
  });

  samplingFlags(
    program
      .command('winrate')
      .description(
        'compare two models on a prompt set: each answers every prompt, a judge picks the better response (--judge rm:DIR | module:FILE scoring each response, or endpoint:URL#MODEL asking an OpenAI-compatible chat server for A/B/tie); prints wins/ties/losses of A, the win rate (ties = half) with a Wilson 95% interval and a two-sided sign-test p-value',
      )
      .requiredOption('--model-a <dir>', 'model A')
      .requiredOption('--model-b <dir>', 'model B (e.g. the reference)')
      .requiredOption('--prompts <file>', 'prompts: .txt or JSONL with a prompt field')
      .requiredOption('--judge <spec>', 'rm:DIR, module:FILE or endpoint:URL#MODEL')
      .option('--out <file>', 'write every judged row as JSONL (atomically)')
      .option('--json', 'print the report as JSON'),
  ).action(async (o: Record<string, string> & { json?: boolean; out?: string }) => {
    const a = { model: loadModel(o.modelA, { trainable: false }), tok: loadTokenizer(o.modelA) };
    const b = { model: loadModel(o.modelB, { trainable: false }), tok: loadTokenizer(o.modelB) };
    let scorer: Scorer | null = null;
    try {
      const prompts = await readPrompts(o.prompts);
      let judge: Parameters<typeof winRate>[3];
      if (o.judge.startsWith('endpoint:')) {
        const [url, model] = o.judge.slice(9).split('#');
        judge = { pairwise: endpointJudge(url, model ?? 'default') };
      } else {
        scorer = await scorerOf(o.judge, o.modelA);
        judge = { scorer };
      }
      const r = await winRate(a, b, prompts, judge, samplingOf(o));
      if (o.out) writeAtomically('winrate', path.resolve(o.out), (f) => f.write(new TextEncoder().encode(r.rows.map((x) => JSON.stringify(x)).join('\n') + '\n')));
      const { rows: _rows, ...summary } = r;
      print(o.json, summary, [
        `A vs B on ${r.n} prompts: ${r.wins} wins, ${r.ties} ties, ${r.losses} losses`,
        `win rate ${(100 * r.winRate).toFixed(1)}% (95% Wilson ${(100 * r.interval.lower).toFixed(1)}–${(100 * r.interval.upper).toFixed(1)}%), sign test p = ${r.pValue.toPrecision(3)}`,
      ]);
    } finally {
      scorer?.dispose();
      a.model.dispose();
      b.model.dispose();
    }
  });
}
