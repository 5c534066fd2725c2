// Training metrics: one JSON line per log call in <output_dir>/metrics.jsonl, TensorBoard scalars, and the
// console progress display.
//
// metrics.jsonl lines look like {"step": 20, "epoch": 0.4, "loss": 2.31, "learning_rate": 1.9e-5, "time": 1700000000.123}:
// `step` first, `epoch` next when given, the metrics in the order given, and `time` (Unix seconds) last.
// Evaluation metrics carry the prefix `eval_` (as in transformers' log_history). JSON has no NaN or
// Infinity, so non-finite values are written as the strings "NaN", "Infinity", "-Infinity" (readMetrics turns
// them back into numbers).
//
// The file is appended to, one write() per line on a file opened with O_APPEND, without fsync: a crash can
// lose the last lines or leave a partial last line, never interleave two. A partial last line is removed when
// the next logger opens the file, and a resumed run calls MetricsLogger.truncateAfter(dir, step) first so
// that the steps it repeats are not logged twice. The rewrite that truncation needs is atomic (temp + rename).
import fs from 'node:fs';
import nodePath from 'node:path';
import { writeAtomically } from '../io/file.ts';
import { AlignkitError } from '../tensor/errors.ts';
import { EventFileWriter } from './tensorboard.ts';
import { ProgressDisplay, formatMetric } from './progress.ts';

export const METRICS_FILE = 'metrics.jsonl';

/** One parsed line of metrics.jsonl. */
export interface MetricsRecord {
  step: number;
  time: number;
  [metric: string]: number;
}

export interface MetricsLoggerOptions {
  /** Write TensorBoard event files (report_to includes 'tensorboard'). */
  tensorboard: boolean;
  /** Show progress on the console. */
  console: boolean;
  /** Total optimizer steps of the run (for percent and ETA). */
  totalSteps: number;
  /** Redraw a progress bar (a terminal) or print plain lines; default: whether the stream is a TTY. Pass false for disable_tqdm. */
  isTTY?: boolean;
  /** Folder for the event files (logging_dir); default <outputDir>/runs. */
  tensorboardDir?: string;
  /** Console stream (default process.stderr). */
  stream?: { write(s: string): unknown; columns?: number; isTTY?: boolean };
  /** Clock in milliseconds for the progress display (tests). */
  now?: () => number;
}

function encodeValue(v: number): number | string {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

function decodeValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return undefined;
}

/** The TensorBoard tag of a metric, as transformers' TensorBoardCallback names them (eval_loss → eval/loss, loss → train/loss). */
export function tensorboardTag(key: string): string {
  if (key.startsWith('eval_')) return `eval/${key.slice(5)}`;
  if (key.startsWith('test_')) return `test/${key.slice(5)}`;
  return `train/${key}`;
}

/** Reads metrics.jsonl (an absent file is empty); malformed lines are errors naming the file and line. */
export function readMetrics(outputDir: string, opts: { skipInvalid?: boolean } = {}): MetricsRecord[] {
  const file = nodePath.join(outputDir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out: MetricsRecord[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const problem = (msg: string) => {
      if (!opts.skipInvalid) throw new AlignkitError(`${file}: line ${i + 1}: ${msg}`);
    };
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      return problem(i === lines.length - 1 ? 'incomplete last line (interrupted write?)' : 'not valid JSON');
    }
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return problem('not a JSON object');
    const rec: Record<string, number> = {};
    for (const [k, v] of Object.entries(obj)) {
      const n = decodeValue(v);
      if (n === undefined) return problem(`field '${k}' is not a number`);
      rec[k] = n;
    }
    if (!Number.isSafeInteger(rec.step)) return problem(`field 'step' is missing or not an integer`);
    out.push(rec as MetricsRecord);
  });
  return out;
}

/** Logs training and evaluation metrics of one run. */
export class MetricsLogger {
  readonly file: string;
  private fd: number;
  private readonly tb: EventFileWriter | null;
  private readonly progress: ProgressDisplay | null;
  /** Whether the console shows a redrawn bar (else plain lines). */
  private readonly tty: boolean;

  constructor(
    readonly outputDir: string,
    opts: MetricsLoggerOptions,
  ) {
    if (!Number.isSafeInteger(opts.totalSteps) || opts.totalSteps < 0) throw new AlignkitError(`MetricsLogger: totalSteps must be an integer >= 0, got ${opts.totalSteps}`);
    try {
      fs.mkdirSync(outputDir, { recursive: true });
    } catch (e) {
      throw new AlignkitError(`${outputDir}: cannot create the output folder: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.file = nodePath.join(outputDir, METRICS_FILE);
    MetricsLogger.dropPartialLastLine(this.file);
    try {
      this.fd = fs.openSync(this.file, 'a');
    } catch (e) {
      throw new AlignkitError(`${this.file}: cannot open for appending: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.tb = opts.tensorboard ? new EventFileWriter(opts.tensorboardDir ?? nodePath.join(outputDir, 'runs')) : null;
    const stream = opts.stream ?? process.stderr;
    this.tty = opts.isTTY ?? stream.isTTY === true;
    this.progress = opts.console ? new ProgressDisplay({ totalSteps: opts.totalSteps, isTTY: this.tty, stream, now: opts.now }) : null;
  }

  /** Removes a final line without its newline (left by a crash mid-write). */
  private static dropPartialLastLine(file: string): void {
    // Look at the last byte only: the whole file is read just in the rare case it needs repair.
    let fd: number;
    try {
      fd = fs.openSync(file, 'r');
    } catch {
      return; // no file yet
    }
    const last = new Uint8Array(1);
    try {
      const size = fs.fstatSync(fd).size;
      if (size === 0 || (fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] === 0x0a)) return;
    } finally {
      fs.closeSync(fd);
    }
    const text = fs.readFileSync(file, 'utf8');
    const keep = text.slice(0, text.lastIndexOf('\n') + 1);
    writeAtomically('metrics', file, (f) => f.write(new TextEncoder().encode(keep)));
  }

  /**
   * Drops the lines of <outputDir>/metrics.jsonl whose step is greater than `step` (and a partial last line),
   * before a run resumed from the checkpoint at `step` logs those steps again. Returns the number of lines
   * dropped. Lines that are not JSON are errors (naming the line), not silently dropped.
   */
  static truncateAfter(outputDir: string, step: number): number {
    const file = nodePath.join(outputDir, METRICS_FILE);
    if (!fs.existsSync(file)) return 0;
    const text = fs.readFileSync(file, 'utf8');
    const lines = text.split('\n');
    const complete = lines.slice(0, -1); // what follows the last '\n' is empty, or a partial line
    const kept: string[] = [];
    complete.forEach((line, i) => {
      if (line.trim() === '') return;
      let rec: { step?: unknown };
      try {
        rec = JSON.parse(line) as { step?: unknown };
      } catch {
        throw new AlignkitError(`${file}: line ${i + 1}: not valid JSON; fix or remove the line before resuming`);
      }
      if (typeof rec?.step !== 'number') throw new AlignkitError(`${file}: line ${i + 1}: no numeric 'step' field`);
      if (rec.step <= step) kept.push(line);
    });
    const dropped = lines.filter((l) => l.trim() !== '').length - kept.length;
    if (dropped > 0) writeAtomically('metrics', file, (f) => f.write(new TextEncoder().encode(kept.map((l) => `${l}\n`).join(''))));
    return dropped;
  }

  /**
   * Logs `metrics` of optimizer step `step`: a metrics.jsonl line, TensorBoard scalars, the console. With
   * prefix 'eval' the keys get 'eval_' (unless they have it). `epoch`, when among the metrics, goes right
   * after `step`.
   */
  log(step: number, metrics: Record<string, number>, opts: { prefix?: 'train' | 'eval' } = {}): void {
    if (this.fd < 0) throw new AlignkitError(`${this.file}: log() after close()`);
    if (!Number.isSafeInteger(step) || step < 0) throw new AlignkitError(`MetricsLogger.log: step must be an integer >= 0, got ${step}`);
    const eval_ = opts.prefix === 'eval';
    const named: [string, number][] = [];
    for (const [k, v] of Object.entries(metrics)) {
      if (typeof v !== 'number') throw new AlignkitError(`MetricsLogger.log: metric '${k}' at step ${step} is not a number (${typeof v})`);
      if (k === 'step' || k === 'time') throw new AlignkitError(`MetricsLogger.log: '${k}' is reserved`);
      named.push([k === 'epoch' || !eval_ || k.startsWith('eval_') ? k : `eval_${k}`, v]);
    }
    const record: Record<string, number | string> = { step };
    const epoch = named.find(([k]) => k === 'epoch');
    if (epoch) record.epoch = encodeValue(epoch[1]);
    for (const [k, v] of named) if (k !== 'epoch') record[k] = encodeValue(v);
    const wallTime = Date.now() / 1000;
    record.time = Math.round(wallTime * 1000) / 1000;
    const line = `${JSON.stringify(record)}\n`;
    try {
      fs.writeSync(this.fd, line); // one write() with O_APPEND: the line lands whole or not at all
    } catch (e) {
      throw new AlignkitError(`${this.file}: write failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (this.tb) {
      for (const [k, v] of named) this.tb.addScalar(tensorboardTag(k), v, step, wallTime);
      this.tb.flush();
    }
    if (this.progress) {
      const get = (k: string) => named.find(([n]) => n === k)?.[1];
      if (!eval_) {
        this.progress.update(step, { loss: get('loss'), learningRate: get('learning_rate'), tokensPerSecond: get('tokens_per_second'), numTokens: get('num_tokens') });
        if (!this.tty) this.progress.print(this.progress.plainLine()); // a terminal shows the bar instead
      } else {
        this.progress.print(`eval at step ${step}: ${named.filter(([k]) => k !== 'epoch').map(([k, v]) => `${k} ${formatMetric(v)}`).join(', ')}`);
      }
    }
  }

  /** Moves the progress bar between log calls (every optimizer step, if the trainer wants a live bar). */
  advance(step: number, info: { loss?: number; learningRate?: number; numTokens?: number; tokensPerSecond?: number } = {}): void {
    this.progress?.update(step, info);
  }

  /** Writes a text to TensorBoard (e.g. the resolved config at step 0); no-op without TensorBoard. */
  logText(tag: string, text: string, step: number): void {
    this.tb?.addText(tag, text, step);
    this.tb?.flush();
  }

  /**
   * The final report as aligned `key = value` lines (numbers shown to 4 significant digits), as transformers
   * prints `***** train metrics *****`. Returns the text; printing it is the caller's choice.
   */
  summary(final: Record<string, number | string>): string {
    const keys = Object.keys(final);
    const width = keys.reduce((w, k) => Math.max(w, k.length), 0);
    const lines = keys.map((k) => {
      const v = final[k];
      return `  ${k.padEnd(width)} = ${typeof v === 'number' ? formatMetric(v) : v}`;
    });
    return ['***** train metrics *****', ...lines].join('\n');
  }

  /** Ends the progress line and closes the files. A second close() does nothing. */
  close(): void {
    if (this.fd < 0) return;
    this.progress?.finish();
    this.tb?.close();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
