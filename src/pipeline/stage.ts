// The contract between the pipeline runner (run.ts) and one kind of stage (stages/*.ts). A stage type says how its
// config is validated, which paths it produces (what later stages reference as ${stages.<name>.<key>}), whether an
// interrupted run can be resumed, and how to run it. The runner owns everything else: reference resolution, the
// order, the per-stage folder, the completion marker, skipping and resuming, progress lines and the report.
//
// Adding a stage type is one file exporting a StageType plus one line in registry.ts.

import type { z } from 'zod';

/** What a finished stage tells the runner (recorded in its completion marker and the report). */
export interface StageRunResult {
  /** Final numbers of the stage (train_results / eval metrics / counts), shown in the report. */
  metrics: Record<string, number>;
  /**
   * The stage's target metric measured before and after it ran (null before: not measurable). When absent and
   * the type declares `target`, the runner reads it from the first and last values in <stage>/metrics.jsonl.
   */
  target?: { before: number | null; after: number };
  /** Outputs known only after running (e.g. a file named by the tool); they replace the declared ones by key. */
  outputs?: Record<string, string>;
  /** Tables for the report: e.g. the eval stage's models × metrics. */
  tables?: ReportTable[];
}

export interface ReportTable {
  title: string;
  columns: string[];
  /** First cell: the row label. */
  rows: (string | number | null)[][];
}

/** What a stage's run() is given. */
export interface StageContext {
  /** The stage's name in the pipeline file. */
  name: string;
  /** <pipeline output_dir>/<name>: everything the stage writes goes here. */
  outputDir: string;
  /**
   * True when outputDir holds an interrupted run of the same resolved config: a resumable type continues it
   * (trainers: resume_from_checkpoint: true). False: outputDir is new and empty.
   */
  resume: boolean;
  /** Show progress bars / lines on stderr. */
  console: boolean;
  /** A line for the user (stderr), above any progress bar. */
  log(line: string): void;
}

export interface TargetMetric {
  /** Metric key, e.g. 'eval_loss', 'eval_rewards/accuracies', 'mean_reward'. */
  metric: string;
  higherIsBetter: boolean;
  /** One line for the report: what the number means. */
  label: string;
}

/** One kind of stage ('sft', 'dpo', 'eval', ...). C is its validated config. */
export interface StageType<C = unknown> {
  type: string;
  /** One line: what the stage does (CLI help, docs). */
  description: string;
  /** Validates the stage's config, with the fields the runner fills in (see `managedKeys`) already set. */
  schema: z.ZodType<C>;
  /** Fields the runner sets and the user may not (e.g. output_dir = the stage folder); setting one is an error. */
  managedKeys?: readonly string[];
  /**
   * Values the runner adds to the user's config before validation: the managed keys' values, and defaults for
   * keys the user left out (`user` is the user's config, references resolved). `seed`, when the schema has it and
   * the user left it out, is the pipeline's seed (added by the runner, not here).
   */
  fill?(outputDir: string, user: Readonly<Record<string, unknown>>): Record<string, unknown>;
  /** Paths later stages can reference, by key; 'output' is the main one (${stages.<name>.output}). */
  outputs(outputDir: string): Record<string, string>;
  /**
   * Whether outputDir holds an interrupted run that run() can continue (trainers: a complete checkpoint). Absent
   * or false: an interrupted stage starts over in an emptied folder.
   */
  canResume?(outputDir: string): boolean;
  /** The number that shows the stage did its job (before → after in the report). */
  target?: TargetMetric;
  /**
   * Checks what only the outside world can answer (an endpoint is reachable), for every stage that will run,
   * before the first stage starts — so a typo in a judge URL fails in seconds, not after an hour of training.
   * Given the user's config as written (`${...}` references unresolved); throws a message naming the field.
   */
  preflight?(user: Readonly<Record<string, unknown>>): Promise<void>;
  run(cfg: C, ctx: StageContext): Promise<StageRunResult>;
}

/** A StageType with its config type erased (the registry's element type). */
export type AnyStageType = StageType<never>;

/** Declares a stage type with its config type checked against its schema. */
export function defineStage<S extends z.ZodType>(t: Omit<StageType<z.output<S>>, 'schema'> & { schema: S }): AnyStageType {
  return t as unknown as AnyStageType;
}
