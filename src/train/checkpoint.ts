// Training checkpoints: everything a run needs to continue bit for bit — model weights (written by the trainer,
// as a normal Hugging Face folder or a PEFT adapter), optimizer buffers, and the trainer state (step, data
// position, RNG states, schedule, early stopping, counters) — in `output_dir/checkpoint-<step>/`.
//
// Nothing is ever half-written: a checkpoint is assembled in a hidden staging folder next to its final place,
// every file is fsynced, trainer_state.json is written last, and one rename publishes the folder. A run killed
// at any moment leaves either the previous checkpoints or the new one complete; staging leftovers are removed
// on the next start. Rotation keeps the newest `save_total_limit` checkpoints (and the best one).

import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError } from '../io/errors.ts';
import { openSafetensorsFile, saveSafetensors } from '../io/safetensors.ts';
import type { Optimizer, OptimizerMeta } from '../optim/optimizer.ts';
import { noGrad, tidy, type Tensor } from '../tensor/index.ts';

export const TRAINER_STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
const CHECKPOINT_RE = /^checkpoint-(\d+)$/;
const STAGING_PREFIX = '.checkpoint-staging-';

/** The JSON state of a run at a step boundary. Trainers put their own fields in `extra`. */
export interface TrainerState {
  /** Format version of this file. */
  version: 1;
  /** Optimizer steps completed. */
  globalStep: number;
  /** Fractional epochs completed (micro-batches consumed / micro-batches per epoch). */
  epoch: number;
  /** Steps skipped because the loss or a gradient was NaN/Inf. */
  nanSteps: number;
  /** Tokens trained on so far (for tokens/s and the summary). */
  tokensSeen: number;
  /** The data sampler(s) position. */
  data: unknown;
  /** Generator states by name (dropout, LoRA dropout, rehearsal sampling, ...). */
  rng: Record<string, unknown>;
  earlyStopping: unknown;
  /** Best evaluation so far: checkpoint folder name and metric value. */
  best: { checkpoint: string | null; step: number; value: number } | null;
  optimizer: OptimizerMeta;
  /** The run's configuration, for the record (resume checks that it is compatible). */
  config: Record<string, unknown>;
  extra: Record<string, unknown>;
}

export interface CheckpointInfo {
  dir: string;
  step: number;
}

/** Complete checkpoints in `outputDir`, oldest first (a folder counts only once trainer_state.json is in it). */
export function listCheckpoints(outputDir: string): CheckpointInfo[] {
  if (!fs.existsSync(outputDir)) return [];
  const out: CheckpointInfo[] = [];
  for (const name of fs.readdirSync(outputDir)) {
    const m = CHECKPOINT_RE.exec(name);
    if (!m) continue;
    const dir = path.join(outputDir, name);
    if (fs.existsSync(path.join(dir, TRAINER_STATE_FILE))) out.push({ dir, step: Number(m[1]) });
  }
  return out.sort((a, b) => a.step - b.step);
}

export function latestCheckpoint(outputDir: string): CheckpointInfo | null {
  const all = listCheckpoints(outputDir);
  return all.length ? all[all.length - 1] : null;
}

/** Removes staging folders a killed run left behind (they never hold anything the run still needs). */
export function removeStaleStaging(outputDir: string): number {
  if (!fs.existsSync(outputDir)) return 0;
  let n = 0;
  for (const name of fs.readdirSync(outputDir))
    if (name.startsWith(STAGING_PREFIX)) {
      fs.rmSync(path.join(outputDir, name), { recursive: true, force: true });
      n++;
    }
  return n;
}

function fsyncPath(p: string): void {
  let fd = -1;
  try {
    fd = fs.openSync(p, 'r');
    fs.fsyncSync(fd);
  } catch {
    /* directories cannot be fsynced everywhere; best effort */
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function writeDurable(file: string, text: string): void {
  const fd = fs.openSync(file, 'w', 0o644);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface SaveCheckpointParts {
  /** Writes the model weights (HF folder or adapter) into the given (staging) folder. */
  writeModel: (dir: string) => void;
  optimizer: Optimizer<{ lr: number }>;
  state: Omit<TrainerState, 'optimizer' | 'version'>;
}

/**
 * Writes `output_dir/checkpoint-<step>` atomically (staging folder + rename) and returns its path. An existing
 * checkpoint of the same step (a resumed run saving again) is replaced only after the new one is complete.
 */
export function saveCheckpoint(outputDir: string, parts: SaveCheckpointParts): string {
  const step = parts.state.globalStep;
  const name = `checkpoint-${step}`;
  const final = path.join(outputDir, name);
  fs.mkdirSync(outputDir, { recursive: true });
  const stage = fs.mkdtempSync(path.join(outputDir, `${STAGING_PREFIX}${step}-`));
  try {
    parts.writeModel(stage);
    const { meta, buffers } = parts.optimizer.saveState();
    const record: Record<string, Tensor> = {};
    for (const [k, t] of buffers) record[k] = t;
    tidy(() => noGrad(() => saveSafetensors(path.join(stage, OPTIMIZER_FILE), record, { metadata: { format: 'alignkit-optimizer' } })));
    for (const f of fs.readdirSync(stage)) if (fs.statSync(path.join(stage, f)).isFile()) fsyncPath(path.join(stage, f));
    const state: TrainerState = { version: 1, ...parts.state, optimizer: meta };
    writeDurable(path.join(stage, TRAINER_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    fsyncPath(stage);
    fs.chmodSync(stage, 0o755);
    if (fs.existsSync(final)) {
      const old = `${stage}-replaced`;
      fs.renameSync(final, old);
      fs.renameSync(stage, final);
      fs.rmSync(old, { recursive: true, force: true });
    } else fs.renameSync(stage, final);
    fsyncPath(outputDir);
  } catch (e) {
    fs.rmSync(stage, { recursive: true, force: true });
    if (e instanceof CheckpointError) throw e;
    throw new CheckpointError('checkpoint', final, `not written: ${e instanceof Error ? e.message : String(e)}`);
  }
  return final;
}

/** Reads trainer_state.json of a checkpoint folder, with clear errors. */
export function readTrainerState(dir: string): TrainerState {
  const file = path.join(dir, TRAINER_STATE_FILE);
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError('checkpoint', file, `cannot read the trainer state: ${e instanceof Error ? e.message : String(e)}`);
  }
  const s = parsed as Partial<TrainerState>;
  if (s.version !== 1 || typeof s.globalStep !== 'number' || !s.optimizer)
    throw new CheckpointError('checkpoint', file, 'not an alignkit trainer state (version 1 with globalStep and optimizer)');
  return s as TrainerState;
}

/** Restores the optimizer buffers of a checkpoint (bit for bit). */
export function loadOptimizerState(dir: string, optimizer: Optimizer<{ lr: number }>, meta: OptimizerMeta): void {
  const file = path.join(dir, OPTIMIZER_FILE);
  const reader = openSafetensorsFile(file);
  try {
    optimizer.loadState(meta, (key) => {
      if (!reader.has(key)) throw new CheckpointError('checkpoint', file, `optimizer buffer '${key}' is missing`);
      if (reader.info(key).dtype !== 'F32') throw new CheckpointError('checkpoint', file, `optimizer buffer '${key}' is ${reader.info(key).dtype}, expected F32`);
      const b = reader.readBytes(key); // copied into an aligned buffer: the file offset need not be 4-aligned
      return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    });
  } finally {
    reader.close();
  }
}

/**
 * Deletes the oldest checkpoints beyond `limit`, never the one named `keep` (the best). HF's rule: when the best
 * is among the deleted candidates the limit effectively grows by one.
 */
export function rotateCheckpoints(outputDir: string, limit: number | null, keep: string | null): string[] {
  if (limit === null || limit <= 0) return [];
  const all = listCheckpoints(outputDir);
  const keepDir = keep ? path.resolve(outputDir, keep) : null;
  const candidates = all.filter((c) => path.resolve(c.dir) !== keepDir);
  const budget = keepDir && all.some((c) => path.resolve(c.dir) === keepDir) ? Math.max(limit - 1, 0) : limit;
  const removed: string[] = [];
  for (const c of candidates.slice(0, Math.max(candidates.length - budget, 0))) {
    fs.rmSync(c.dir, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}
