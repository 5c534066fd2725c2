// Running a planned pipeline (spec.ts) stage by stage, resumably:
//   - a stage that finished writes <stage>/stage_complete.json (atomically) with the hash of its resolved config
//     (its own config with references resolved, its type, and the hashes of the stages it references), its
//     outputs, metrics and target numbers; a later run with the same hash skips it;
//   - a stage that started writes <stage>/stage_started.json with that hash; if the process dies, the next run
//     finds it and — when the type can resume (trainers: a complete checkpoint) — continues the stage from its last
//     checkpoint instead of starting over; otherwise the folder is emptied and the stage starts afresh;
//   - a changed config (or a changed upstream stage) changes the hash: the stage runs again from scratch, and so
//     does every stage that references it.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeAtomically } from '../io/file.ts';
import { readMetrics } from '../train/logging.ts';
import { ConfigError } from '../train/config.ts';
import { AlignkitError } from '../tensor/index.ts';
import type { PipelineSpec, PlannedStage } from './spec.ts';
import { configForStage, resolveStageRefs, validateStageConfig } from './spec.ts';
import type { ReportTable, TargetMetric } from './stage.ts';

export const STAGE_COMPLETE_FILE = 'stage_complete.json';
export const STAGE_STARTED_FILE = 'stage_started.json';
const MARKER_FORMAT = 'alignkit-pipeline-stage/1';

export interface TargetOutcome extends TargetMetric {
  before: number | null;
  after: number | null;
  /** after is better than before (null when either is unknown). */
  improved: boolean | null;
}

export interface StageOutcome {
  name: string;
  type: string;
  /** ran: from scratch; resumed: continued an interrupted run; skipped: finished earlier with the same config. */
  status: 'ran' | 'resumed' | 'skipped';
  outputDir: string;
  configHash: string;
  /** The effective config: the user's with references resolved, plus the pipeline's fills (output_dir, seed, ...). */
  config: Record<string, unknown>;
  outputs: Record<string, string>;
  metrics: Record<string, number>;
  target: TargetOutcome | null;
  tables: ReportTable[];
  /** Seconds of the run that finished the stage (for a skipped stage: that earlier run's). */
  seconds: number;
  finishedAt: string;
}

interface Marker {
  format: string;
  stage: string;
  type: string;
  config_hash: string;
  config: Record<string, unknown>;
  outputs: Record<string, string>;
  metrics: Record<string, number>;
  target: TargetOutcome | null;
  tables: ReportTable[];
  seconds: number;
  finished_at: string;
}

export interface RunPipelineOptions {
  /** Progress bars of the trainers and stage lines (default true). */
  console?: boolean;
  /** Where stage lines go (default stderr). */
  log?: (line: string) => void;
  /** Only report what would happen (run / resume / skip), run nothing. */
  dryRun?: boolean;
}

export interface PlanEntry {
  name: string;
  type: string;
  action: 'run' | 'resume' | 'skip';
  configHash: string;
}

export interface PipelineResult {
  file: string;
  outputDir: string;
  seconds: number;
  stages: StageOutcome[];
}

/** JSON with object keys sorted at every level (the hash input). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v as object).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

export function stageConfigHash(type: string, config: Record<string, unknown>, depHashes: Record<string, string>): string {
  return crypto.createHash('sha256').update(canonicalJson({ format: MARKER_FORMAT, type, config, deps: depHashes })).digest('hex');
}

function readJson<T>(file: string): T | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return null; // absent, or torn by a crash before the atomic rename (cannot happen) — treat as absent
  }
}

function writeJson(file: string, v: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeAtomically('pipeline', file, (f) => f.write(new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`)));
}

/** The finished marker of a stage folder when it matches `hash` and its outputs still exist. */
function finishedMarker(stageDir: string, hash: string): Marker | null {
  const m = readJson<Marker>(path.join(stageDir, STAGE_COMPLETE_FILE));
  if (!m || m.format !== MARKER_FORMAT || m.config_hash !== hash) return null;
  return Object.values(m.outputs).every((p) => fs.existsSync(p)) ? m : null;
}

/** The target metric's first value at step 0 (before training) and its last value in <dir>/metrics.jsonl. */
function targetFromMetricsFile(dir: string, metric: string): { before: number | null; after: number | null } {
  const recs = readMetrics(dir, { skipInvalid: true }).filter((r) => Number.isFinite(r[metric]));
  if (recs.length === 0) return { before: null, after: null };
  return { before: recs[0].step === 0 ? recs[0][metric] : null, after: recs[recs.length - 1][metric] };
}

function targetOutcome(t: TargetMetric, before: number | null, after: number | null): TargetOutcome {
  const improved = before === null || after === null ? null : t.higherIsBetter ? after > before : after < before;
  return { ...t, before, after, improved };
}

function outcomeOf(s: PlannedStage, m: Marker, status: StageOutcome['status']): StageOutcome {
  return { name: s.name, type: s.type.type, status, outputDir: s.outputDir, configHash: m.config_hash, config: m.config, outputs: m.outputs, metrics: m.metrics, target: m.target, tables: m.tables, seconds: m.seconds, finishedAt: m.finished_at };
}

/**
 * Runs (or with dryRun, plans) the pipeline. Stage configs are re-validated here with the real outputs of the
 * stages they reference; an error in one stops the pipeline (finished stages stay finished).
 */
export async function runPipeline(spec: PipelineSpec, o: RunPipelineOptions = {}): Promise<PipelineResult & { plan: PlanEntry[] }> {
  const t0 = Date.now();
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const showProgress = o.console ?? true;
  const done = new Map<string, { hash: string; outputs: Record<string, string> }>();
  const outcomes: StageOutcome[] = [];
  const plan: PlanEntry[] = [];
  if (!o.dryRun) {
    // the plan first (what will run), so the stages' outside-world checks all pass before anything trains
    const { plan: upcoming } = await runPipeline(spec, { ...o, dryRun: true });
    for (const [i, s] of spec.stages.entries()) {
      if (upcoming[i].action === 'skip' || !s.type.preflight) continue;
      try {
        await s.type.preflight(s.config);
      } catch (e) {
        throw new AlignkitError(`${spec.file}: stage '${s.name}' (${s.type.type}): ${e instanceof Error ? e.message : String(e)} (checked before any stage ran)`);
      }
    }
    fs.mkdirSync(spec.outputDir, { recursive: true });
  }
  for (const [i, s] of spec.stages.entries()) {
    const head = `[${i + 1}/${spec.stages.length}] ${s.name} (${s.type.type})`;
    const user = resolveStageRefs(s.config, (n, k) => {
      const d = done.get(n);
      if (!d) throw new AlignkitError(`pipeline: stage '${s.name}' needs stage '${n}', which has not run`);
      return d.outputs[k] ?? s.declaredOutputs[k];
    });
    const depHashes = Object.fromEntries(s.deps.map((d) => [d, (done.get(d) as { hash: string }).hash]));
    // the effective config (with the pipeline's seed and the type's fills) is what the hash covers
    const merged = configForStage(s.type, user, s.outputDir, spec.seed);
    const hash = stageConfigHash(s.type.type, merged, depHashes);
    const marker = finishedMarker(s.outputDir, hash);
    const started = readJson<{ config_hash: string }>(path.join(s.outputDir, STAGE_STARTED_FILE));
    const resume = !marker && started?.config_hash === hash && (s.type.canResume?.(s.outputDir) ?? false);
    plan.push({ name: s.name, type: s.type.type, action: marker ? 'skip' : resume ? 'resume' : 'run', configHash: hash });
    if (o.dryRun) {
      done.set(s.name, { hash, outputs: marker?.outputs ?? s.declaredOutputs });
      continue;
    }
    if (marker) {
      log(`${head}: finished earlier with the same config — skipped`);
      outcomes.push(outcomeOf(s, marker, 'skipped'));
      done.set(s.name, { hash, outputs: marker.outputs });
      continue;
    }
    const v = validateStageConfig(s.type, merged, () => `${spec.file}: stage '${s.name}' (${s.type.type}): `);
    if (!v.ok) throw new ConfigError(v.problems);
    if (!resume) {
      fs.rmSync(s.outputDir, { recursive: true, force: true });
      fs.mkdirSync(s.outputDir, { recursive: true });
      writeJson(path.join(s.outputDir, STAGE_STARTED_FILE), { config_hash: hash, started_at: new Date().toISOString() });
    }
    log(`${head}: ${resume ? 'resuming the interrupted run' : 'running'} -> ${s.outputDir}`);
    const ts = Date.now();
    let r: Awaited<ReturnType<typeof s.type.run>>;
    try {
      r = await s.type.run(v.config as never, { name: s.name, outputDir: s.outputDir, resume, console: showProgress, log });
    } catch (e) {
      // name the stage; the finished stages stay finished, and a rerun resumes this one where it can
      const err = new AlignkitError(`stage '${s.name}' (${s.type.type}) failed: ${e instanceof Error ? e.message : String(e)}`);
      if (e instanceof Error && e.stack) err.stack = `${err.message}\n${e.stack}`;
      throw err;
    }
    const seconds = (Date.now() - ts) / 1000;
    const outputs = { ...s.declaredOutputs, ...(r.outputs ?? {}) };
    let target: TargetOutcome | null = null;
    if (s.type.target) {
      const t = r.target ?? targetFromMetricsFile(s.outputDir, s.type.target.metric);
      target = targetOutcome(s.type.target, t.before, t.after ?? r.metrics[s.type.target.metric] ?? null);
    }
    const m: Marker = {
      format: MARKER_FORMAT, stage: s.name, type: s.type.type, config_hash: hash, config: merged, outputs, metrics: r.metrics, target,
      tables: r.tables ?? [], seconds, finished_at: new Date().toISOString(),
    };
    writeJson(path.join(s.outputDir, STAGE_COMPLETE_FILE), m);
    outcomes.push(outcomeOf(s, m, resume ? 'resumed' : 'ran'));
    done.set(s.name, { hash, outputs });
    log(`${head}: done in ${seconds.toFixed(1)} s${target ? ` — ${targetLine(target)}` : ''}`);
  }
  return { file: spec.file, outputDir: spec.outputDir, seconds: (Date.now() - t0) / 1000, stages: outcomes, plan };
}

export function fmtNumber(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

export function targetLine(t: TargetOutcome): string {
  const verdict = t.improved === null ? '' : t.improved ? ' (improved)' : ' (NOT improved)';
  return `${t.metric} ${fmtNumber(t.before)} -> ${fmtNumber(t.after)}${verdict}`;
}
