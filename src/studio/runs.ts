// The runs dashboard's data: training run folders under one root (each with the metrics.jsonl that
// src/train/logging.ts writes, and optionally the samples.jsonl of the RL trainers), read on request so the
// charts follow a run that is still training. Run names come from clients, so every name is resolved against
// the root and must be one of the folders listRuns finds: nothing outside the root is readable.
import fs from 'node:fs';
import path from 'node:path';
import { METRICS_FILE, readMetrics, type MetricsRecord } from '../train/logging.ts';
import { notFound } from './errors.ts';

export interface RunSummary {
  /** Path relative to the root ('.' for the root itself), with '/' separators. */
  name: string;
  records: number;
  lastStep: number | null;
  /** Metric names seen in the file. */
  metrics: string[];
  /** Last modification of metrics.jsonl (ms since the epoch). */
  updatedAt: number;
  hasSamples: boolean;
}

export interface SampleRecord {
  step: number;
  prompt: string;
  response: string;
  score: number | null;
}

/** The RL trainers' samples file (SAMPLES_FILE of src/trainers/rl/rollout.ts; not imported, so the server does
 *  not load the tensor engine; test/studio/runs.test.ts checks the two agree). */
export const SAMPLES_FILE = 'samples.jsonl';

const MAX_DEPTH = 3;

function runDirs(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (fs.existsSync(path.join(dir, METRICS_FILE))) out.push(dir);
    if (depth === MAX_DEPTH) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((x, y) => (x.name < y.name ? -1 : 1))) {
      if (e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules') walk(path.join(dir, e.name), depth + 1);
    }
  };
  walk(path.resolve(root), 0);
  return out;
}

const nameOf = (root: string, dir: string): string => path.relative(path.resolve(root), dir).split(path.sep).join('/') || '.';

export function listRuns(root: string): RunSummary[] {
  return runDirs(root).map((dir) => {
    const records = readMetrics(dir, { skipInvalid: true });
    const metrics = new Set<string>();
    for (const r of records) for (const k of Object.keys(r)) if (k !== 'step' && k !== 'time') metrics.add(k);
    return {
      name: nameOf(root, dir),
      records: records.length,
      lastStep: records.length ? records[records.length - 1].step : null,
      metrics: [...metrics],
      updatedAt: fs.statSync(path.join(dir, METRICS_FILE)).mtimeMs,
      hasSamples: fs.existsSync(path.join(dir, SAMPLES_FILE)),
    };
  });
}

/** The folder of a run named by a client, or a 404 when it is not a run under the root. */
export function runDir(root: string, name: string): string {
  const resolved = path.resolve(root, name);
  const rel = path.relative(path.resolve(root), resolved);
  if (rel.startsWith('..') || path.isAbsolute(rel) || !fs.existsSync(path.join(resolved, METRICS_FILE))) throw notFound(`run '${name}'`);
  if (rel.split(path.sep).length > MAX_DEPTH) throw notFound(`run '${name}'`);
  return resolved;
}

/** The run's metrics after `afterStep` (all with -1); a partial last line (a run mid-write) is skipped. */
export function runMetrics(root: string, name: string, afterStep = -1): MetricsRecord[] {
  return readMetrics(runDir(root, name), { skipInvalid: true }).filter((r) => r.step > afterStep);
}

/** The run's sample generations ({step, prompt, response, score} lines); unreadable lines are skipped. */
export function runSamples(root: string, name: string): SampleRecord[] {
  const file = path.join(runDir(root, name), SAMPLES_FILE);
  if (!fs.existsSync(file)) return [];
  const out: SampleRecord[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    try {
      const r = JSON.parse(line) as Record<string, unknown>;
      if (typeof r.step === 'number' && typeof r.prompt === 'string' && typeof r.response === 'string') {
        out.push({ step: r.step, prompt: r.prompt, response: r.response, score: typeof r.score === 'number' ? r.score : null });
      }
    } catch {
      // a partial line while the trainer rewrites the file
    }
  }
  return out;
}
