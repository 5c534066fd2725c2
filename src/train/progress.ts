// Training progress on the console. On a terminal: one line redrawn in place with '\r' (at most every
// `minIntervalMs`), tqdm-like:
//    37%|███▋      | 370/1000 [01:02<01:45, 5.95 it/s, 1.23k tok/s, loss 2.345, lr 2.00e-05]
// Elsewhere (a log file, CI): one plain line per logged step, each complete on its own:
//    step 370/1000 (37%) loss 2.345 lr 2.00e-05 | 5.95 it/s 1.23k tok/s | elapsed 01:02 eta 01:45
// The formatting functions are pure and tested on their own; ProgressDisplay adds timing and output.

/** Seconds as tqdm shows them: MM:SS under an hour, H:MM:SS above, Nd H:MM:SS over a day; '?' when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  let s = Math.round(seconds);
  const days = Math.floor(s / 86400);
  s -= days * 86400;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
  if (days > 0) return `${days}d ${h}:${mmss}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

/** A number with 3 significant digits and an SI prefix (k, M, G, T): 950, 1.23k, 45.6M. */
export function formatSi(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['', 'k', 'M', 'G', 'T'];
  let u = 0;
  let v = n;
  while (Math.abs(v) >= 999.5 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  const digits = Math.abs(v) >= 99.95 ? 0 : Math.abs(v) >= 9.995 ? 1 : 2;
  return `${v.toFixed(digits)}${units[u]}`;
}

/**
 * A rate: `1.23k tok/s` for perSecond >= 1; below 1 it is inverted as tqdm does (`2.50 s/it`), which reads
 * better for slow steps. '?' when unknown.
 */
export function formatRate(perSecond: number, unit: string): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return `? ${unit}/s`;
  if (perSecond >= 1) return `${formatSi(perSecond)} ${unit}/s`;
  return `${formatSi(1 / perSecond)} s/${unit}`;
}

/** A metric value for display: 4 significant digits, scientific notation for very small or large values. */
export function formatMetric(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}

const PARTIAL_BLOCKS = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar `width` characters wide filled to `fraction` (clamped to [0, 1]) with eighth-block resolution. */
export function renderBar(fraction: number, width: number): string {
  if (width <= 0) return '';
  const f = Number.isFinite(fraction) ? Math.min(1, Math.max(0, fraction)) : 0;
  const eighths = Math.floor(f * width * 8);
  const full = Math.floor(eighths / 8);
  const rest = eighths % 8;
  if (full >= width) return '█'.repeat(width);
  return '█'.repeat(full) + (rest > 0 ? PARTIAL_BLOCKS[rest] : ' ') + ' '.repeat(width - full - 1);
}

export interface ProgressState {
  step: number;
  totalSteps: number;
  elapsedSeconds: number;
  /** Optimizer steps per second (over this session), NaN if unknown. */
  stepsPerSecond: number;
  /** Training tokens per second, NaN if unknown. */
  tokensPerSecond: number;
  loss?: number;
  learningRate?: number;
}

function etaSeconds(s: ProgressState): number {
  return s.stepsPerSecond > 0 ? (s.totalSteps - s.step) / s.stepsPerSecond : NaN;
}

function percent(s: ProgressState): number {
  return s.totalSteps > 0 ? Math.floor((100 * Math.min(s.step, s.totalSteps)) / s.totalSteps) : 0;
}

function stats(s: ProgressState): string[] {
  const out = [formatRate(s.stepsPerSecond, 'it')];
  if (Number.isFinite(s.tokensPerSecond)) out.push(formatRate(s.tokensPerSecond, 'tok'));
  if (s.loss !== undefined) out.push(`loss ${formatMetric(s.loss)}`);
  if (s.learningRate !== undefined) out.push(`lr ${s.learningRate.toExponential(2)}`);
  return out;
}

/**
 * The terminal line for `s`, at most `columns` characters: percent, a bar taking the room the rest leaves
 * (at least 10 characters, else no bar), step/total, elapsed<remaining, rates, loss, lr.
 */
export function formatProgressLine(s: ProgressState, columns: number): string {
  const pct = `${String(percent(s)).padStart(3)}%`;
  const right = `| ${s.step}/${s.totalSteps} [${formatDuration(s.elapsedSeconds)}<${formatDuration(etaSeconds(s))}, ${stats(s).join(', ')}]`;
  const room = columns - pct.length - 1 - right.length;
  const line = room >= 10 ? `${pct}|${renderBar(s.totalSteps > 0 ? s.step / s.totalSteps : 0, room)}${right}` : `${pct}${right}`;
  return line.length > columns ? line.slice(0, Math.max(0, columns - 1)) + '…' : line;
}

/** The non-terminal line for `s` (no width limit). */
export function formatPlainLine(s: ProgressState): string {
  const [rate, ...rest] = stats(s);
  const metrics = rest.filter((x) => !x.endsWith('tok/s') && !x.endsWith('s/tok'));
  const tokens = rest.filter((x) => x.endsWith('tok/s') || x.endsWith('s/tok'));
  return [
    `step ${s.step}/${s.totalSteps} (${percent(s)}%)`,
    ...metrics,
    '|',
    rate,
    ...tokens,
    '|',
    `elapsed ${formatDuration(s.elapsedSeconds)} eta ${formatDuration(etaSeconds(s))}`,
  ].join(' ');
}

export interface ProgressDisplayOptions {
  totalSteps: number;
  /** Redraw in place (a terminal) or print plain lines. */
  isTTY: boolean;
  /** Where to write (default process.stderr, so stdout stays clean for --json output). */
  stream?: { write(s: string): unknown; columns?: number };
  /** Least time between two redraws of the terminal line (default 100 ms). */
  minIntervalMs?: number;
  /** Clock in milliseconds (tests inject one). */
  now?: () => number;
}

/** Live progress: call `update` every optimizer step, `print` for lines that must stay (logs, evaluations). */
export class ProgressDisplay {
  private readonly stream: { write(s: string): unknown; columns?: number };
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly startMs: number;
  /** First step seen and when: rates are measured over this session (a resumed run starts mid-way). */
  private first: { step: number; ms: number } | null = null;
  private lastDrawMs = -Infinity;
  private drawn = false;
  private state: ProgressState;
  private tokens: { count: number; ms: number } | null = null;

  constructor(private readonly opts: ProgressDisplayOptions) {
    this.stream = opts.stream ?? process.stderr;
    this.now = opts.now ?? (() => performance.now());
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.startMs = this.now();
    this.state = { step: 0, totalSteps: opts.totalSteps, elapsedSeconds: 0, stepsPerSecond: NaN, tokensPerSecond: NaN };
  }

  /** The current numbers (for summaries). */
  get current(): Readonly<ProgressState> {
    return this.state;
  }

  /**
   * Records progress at optimizer step `step`: loss, learning rate, and either a measured tokens/s or the
   * cumulative token count (tokens/s is then measured between calls). Redraws the terminal line (throttled).
   */
  update(step: number, info: { loss?: number; learningRate?: number; tokensPerSecond?: number; numTokens?: number } = {}): void {
    const ms = this.now();
    if (this.first === null) this.first = { step, ms };
    const dt = (ms - this.first.ms) / 1000;
    const stepsPerSecond = dt > 0 && step > this.first.step ? (step - this.first.step) / dt : NaN;
    let tokensPerSecond = info.tokensPerSecond ?? this.state.tokensPerSecond;
    if (info.tokensPerSecond === undefined && info.numTokens !== undefined) {
      if (this.tokens && ms > this.tokens.ms && info.numTokens >= this.tokens.count) tokensPerSecond = ((info.numTokens - this.tokens.count) * 1000) / (ms - this.tokens.ms);
      this.tokens = { count: info.numTokens, ms };
    }
    this.state = {
      step,
      totalSteps: this.opts.totalSteps,
      elapsedSeconds: (ms - this.startMs) / 1000,
      stepsPerSecond,
      tokensPerSecond,
      loss: info.loss ?? this.state.loss,
      learningRate: info.learningRate ?? this.state.learningRate,
    };
    if (this.opts.isTTY && (ms - this.lastDrawMs >= this.minIntervalMs || step >= this.opts.totalSteps)) this.draw(ms);
  }

  private draw(ms: number): void {
    this.lastDrawMs = ms;
    this.stream.write(`\r${formatProgressLine(this.state, (this.stream.columns || 100) - 1)}\x1b[K`);
    this.drawn = true;
  }

  /** A plain progress line for the current state (printed by `print` when not on a terminal). */
  plainLine(): string {
    return formatPlainLine(this.state);
  }

  /** Prints a line that stays (above the bar on a terminal). */
  print(line: string): void {
    if (this.opts.isTTY && this.drawn) {
      this.stream.write(`\r\x1b[K${line}\n`);
      this.draw(this.now());
    } else this.stream.write(`${line}\n`);
  }

  /** Ends the terminal line (call once at the end). */
  finish(): void {
    if (this.opts.isTTY && this.drawn) {
      this.draw(this.now());
      this.stream.write('\n');
      this.drawn = false;
    }
  }
}
