// Benchmark plumbing shared by every bench file: timing (warm-up, repeats, MEDIAN), the record type and
// its printers, a registry that bench files add themselves to, and a helper that runs a Python peer
// (NumPy / PyTorch) for comparison. The bench must run without Python: a missing peer yields null.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One measurement. `value` is alignkit's; `peer_value` the comparison library's in the same unit. */
export interface BenchRecord {
  bench: string;
  shape: string;
  unit: string; // e.g. 'GFLOPS' (higher is better) or 'ms' (lower is better)
  value: number;
  peer: string | null;
  peer_value: number | null;
  ratio: number | null; // alignkit / peer for higher-is-better units, peer / alignkit for lower-is-better
}

export interface BenchOptions {
  json: boolean; // one JSON object per record on stdout, nothing else on stdout
  quick: boolean; // fewer repeats and rounds (a smoke run)
  filter: string | null; // run only cases whose "bench shape" contains this
}

export interface BenchContext {
  readonly options: BenchOptions;
  /** Whether a case is selected by --filter (matched against "bench shape"). */
  wants(bench: string, shape: string): boolean;
  /** Records and prints one measurement. */
  report(r: Omit<BenchRecord, 'ratio'> & { ratio?: number | null }): void;
  /** A remark for the human (stderr, so --json output stays clean). */
  note(message: string): void;
}

export type BenchFn = (ctx: BenchContext) => void | Promise<void>;

const registry: { name: string; fn: BenchFn }[] = [];

/** Adds a bench; bench/run.ts runs every registered bench in registration order. */
export function registerBench(name: string, fn: BenchFn): void {
  if (registry.some((b) => b.name === name)) throw new Error(`bench '${name}' registered twice`);
  registry.push({ name, fn });
}

export function registeredBenches(): readonly { name: string; fn: BenchFn }[] {
  return registry;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

export interface TimingOptions {
  warmup?: number; // untimed calls first (default 1)
  repeat?: number; // at least this many timed calls (default 5)
  minMs?: number; // and keep repeating until this much time was measured (default 200)
  maxRepeat?: number; // but never more than this many (default 50)
}

/** Times fn: warm-up calls, then repeats; returns the MEDIAN seconds per call (and every sample). */
export function timeIt(fn: () => void, o: TimingOptions = {}): { seconds: number; samples: number[] } {
  const warmup = o.warmup ?? 1, repeat = o.repeat ?? 5, minMs = o.minMs ?? 200, maxRepeat = o.maxRepeat ?? 50;
  for (let i = 0; i < warmup; i++) fn();
  const samples: number[] = [];
  let total = 0;
  while (samples.length < repeat || (total < minMs / 1e3 && samples.length < maxRepeat)) {
    const t0 = process.hrtime.bigint();
    fn();
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    samples.push(s);
    total += s;
  }
  return { seconds: median(samples), samples };
}

const here = dirname(fileURLToPath(import.meta.url));
const peerNotes = new Set<string>();

/**
 * Runs `python3 bench/peers/<script> <args...>` and parses the JSON object it prints on stdout.
 * Returns null (with a note on stderr, once per reason) when python3 or the library is unavailable or the
 * script fails: the peer column then stays empty and the bench goes on.
 */
export function runPythonPeer(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 600_000): unknown | null {
  const path = join(here, 'peers', script);
  const res = spawnSync(process.env.ALIGNKIT_PYTHON ?? 'python3', [path, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: timeoutMs,
    maxBuffer: 64 << 20,
  });
  const once = (msg: string): null => {
    if (!peerNotes.has(msg)) {
      peerNotes.add(msg);
      process.stderr.write(`bench: ${msg}\n`);
    }
    return null;
  };
  if (res.error) return once(`peer ${script} not run (${(res.error as NodeJS.ErrnoException).code ?? res.error.message}); continuing without it`);
  if (res.status !== 0) {
    const why = (res.stderr || '').trim().split('\n').slice(-1)[0] || `exit ${res.status}`;
    return once(`peer ${script} unavailable (${why}); continuing without it`);
  }
  try {
    const parsed: unknown = JSON.parse(res.stdout.trim().split('\n').slice(-1)[0]);
    if (parsed && typeof parsed === 'object' && 'error' in parsed) return once(`peer ${script}: ${String((parsed as { error: unknown }).error)}`);
    return parsed;
  } catch {
    return once(`peer ${script} printed no JSON; continuing without it`);
  }
}

function fmt(v: number | null, digits = 1): string {
  if (v === null || !Number.isFinite(v)) return '-';
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
}

/** Collects records and prints them as they arrive: a table for people, or JSON lines with --json. */
export class Reporter {
  readonly records: BenchRecord[] = [];
  private headerDone = false;
  constructor(private readonly options: BenchOptions) {}

  add(r: BenchRecord): void {
    this.records.push(r);
    if (this.options.json) {
      process.stdout.write(JSON.stringify(r) + '\n');
      return;
    }
    if (!this.headerDone) {
      this.headerDone = true;
      process.stdout.write(`${'bench'.padEnd(18)} ${'shape'.padEnd(40)} ${'unit'.padEnd(7)} ${'alignkit'.padStart(9)} ${'peer'.padEnd(8)} ${'peer val'.padStart(9)} ${'ratio'.padStart(6)}\n`);
      process.stdout.write(`${'-'.repeat(18)} ${'-'.repeat(40)} ${'-'.repeat(7)} ${'-'.repeat(9)} ${'-'.repeat(8)} ${'-'.repeat(9)} ${'-'.repeat(6)}\n`);
    }
    process.stdout.write(
      `${r.bench.padEnd(18)} ${r.shape.padEnd(40)} ${r.unit.padEnd(7)} ${fmt(r.value).padStart(9)} ${(r.peer ?? '-').padEnd(8)} ${fmt(r.peer_value).padStart(9)} ${(r.ratio === null ? '-' : r.ratio.toFixed(2)).padStart(6)}\n`,
    );
  }
}

/** alignkit / peer for higher-is-better units; peer / alignkit for times (so > 1 always means alignkit wins). */
export function ratioOf(unit: string, value: number, peer: number | null): number | null {
  if (peer === null || !(peer > 0) || !(value > 0)) return null;
  const lowerIsBetter = unit === 'ms' || unit === 's' || unit === 'us' || unit === 'MB';
  return lowerIsBetter ? peer / value : value / peer;
}

export function makeContext(options: BenchOptions, reporter: Reporter): BenchContext {
  return {
    options,
    wants: (bench, shape) => !options.filter || `${bench} ${shape}`.includes(options.filter),
    report: (r) => reporter.add({ ...r, ratio: r.ratio ?? ratioOf(r.unit, r.value, r.peer_value) }),
    note: (m) => process.stderr.write(`bench: ${m}\n`),
  };
}
