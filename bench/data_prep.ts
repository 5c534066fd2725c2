// Streaming data preparation throughput and memory: generates a large JSONL file in os.tmpdir() (default 200 MB
// with --quick, 2 GB otherwise; ALIGNKIT_BENCH_DATA_MB overrides), then runs `clean` (invisible characters, NFC,
// whitespace, PII masking, Gopher quality filter) + exact dedup over it in a child process, and reports rows/s,
// MB/s and the child's peak resident memory (VmHWM from /proc/self/status where available, else the highest
// process.memoryUsage().rss sampled every 50 ms). A child process keeps the memory figure free of whatever the
// benches before it allocated; a constant peak across sizes is what "streaming" promises.
//
// The generated rows: ~70% {"text": ...} of 40-400 random words (some with e-mail addresses, phone numbers,
// HTML), ~20% chat rows {"messages": [...]}, ~10% exact copies of an earlier row's text (so dedup has work).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { registerBench, type BenchContext } from './common.ts';
import { CleanPipeline, buildStep, stepsFromFlags } from '../src/data/prep/clean.ts';
import { Deduplicator } from '../src/data/prep/dedup.ts';
import { rowText } from '../src/data/prep/fields.ts';
import { Rng } from '../src/data/prep/rng.ts';
import { readRows, withWriter } from '../src/data/prep/stream.ts';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Writes ~targetBytes of JSONL; returns the row count. */
export function generateJsonl(file: string, targetBytes: number, seed = 0): number {
  const rng = new Rng(seed);
  const vocab: string[] = [];
  for (let i = 0; i < 5000; i++) {
    let w = '';
    const len = 2 + rng.below(9);
    for (let j = 0; j < len; j++) w += String.fromCharCode(97 + rng.below(26));
    vocab.push(w);
  }
  const sentence = (n: number): string => {
    const ws: string[] = [];
    for (let i = 0; i < n; i++) ws.push(vocab[rng.below(vocab.length)]);
    if (rng.next() < 0.1) ws.splice(rng.below(ws.length), 0, `mail ${vocab[rng.below(vocab.length)]}@example.com`);
    if (rng.next() < 0.05) ws.splice(rng.below(ws.length), 0, '+1 (555) 123-4567');
    if (rng.next() < 0.05) ws.splice(rng.below(ws.length), 0, '<b>bold</b>&amp;');
    return ws.join(' ');
  };
  const fd = fs.openSync(file, 'w');
  let bytes = 0, rows = 0;
  const recent: string[] = [];
  let buf: string[] = [];
  let bufLen = 0;
  try {
    while (bytes < targetBytes) {
      const r = rng.next();
      let line: string;
      if (r < 0.1 && recent.length) line = JSON.stringify({ id: rows, text: recent[rng.below(recent.length)] });
      else if (r < 0.3) line = JSON.stringify({ id: rows, messages: [{ role: 'user', content: sentence(10 + rng.below(40)) }, { role: 'assistant', content: sentence(40 + rng.below(200)) }] });
      else {
        const text = sentence(40 + rng.below(360));
        if (recent.length < 64) recent.push(text);
        else recent[rng.below(64)] = text;
        line = JSON.stringify({ id: rows, text });
      }
      buf.push(line);
      bufLen += line.length + 1;
      bytes += Buffer.byteLength(line) + 1;
      rows++;
      if (bufLen > 1 << 22) {
        fs.writeSync(fd, buf.join('\n') + '\n');
        buf = [];
        bufLen = 0;
      }
    }
    if (buf.length) fs.writeSync(fd, buf.join('\n') + '\n');
  } finally {
    fs.closeSync(fd);
  }
  return rows;
}

function vmHwmBytes(): number | null {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** The measured pipeline (runs in the child). */
async function runChild(input: string, output: string): Promise<void> {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  timer.unref();
  const steps = stepsFromFlags({ maskPii: ['email', 'phone', 'ip', 'credit_card'], quality: true }).map((c) => buildStep(c, null));
  const pipeline = new CleanPipeline(steps, null);
  const dedup = new Deduplicator({ mode: 'exact' });
  const t0 = process.hrtime.bigint();
  let rowsIn = 0;
  await withWriter(output, {}, async (w) => {
    for await (const { row, line } of readRows(input)) {
      rowsIn++;
      const r = pipeline.process(row);
      if (r && dedup.check(rowText(r, null), line).keep) w.write(r);
    }
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const hwm = vmHwmBytes();
  process.stdout.write(JSON.stringify({ rowsIn, rowsOut: dedup.counts.kept, exactDuplicates: dedup.counts.exact, dropped: rowsIn - pipeline.rowsOut, seconds, peakRss: hwm ?? peak, peakSource: hwm !== null ? 'VmHWM' : 'sampled rss', hashTableBytes: dedup.approxBytes() }) + '\n');
}

async function bench(ctx: BenchContext): Promise<void> {
  const mb = Number(process.env.ALIGNKIT_BENCH_DATA_MB ?? (ctx.options.quick ? 200 : 2048));
  if (!(mb > 0)) throw new Error(`ALIGNKIT_BENCH_DATA_MB must be a positive number, got ${process.env.ALIGNKIT_BENCH_DATA_MB}`);
  const shape = `clean+exact dedup, ${mb} MB JSONL`;
  if (!ctx.wants('data_prep', shape)) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-bench-data-'));
  const input = path.join(dir, 'in.jsonl');
  const output = path.join(dir, 'out.jsonl');
  try {
    const tg = Date.now();
    const rows = generateJsonl(input, mb * 1e6);
    const bytes = fs.statSync(input).size;
    ctx.note(`data_prep: generated ${rows} rows (${(bytes / 1e6).toFixed(0)} MB) in ${((Date.now() - tg) / 1e3).toFixed(1)} s at ${input}`);
    const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'data_prep.ts'), '--data-prep-child', input, output], { encoding: 'utf8', maxBuffer: 1 << 20, cwd: path.join(here, '..') });
    if (res.status !== 0) throw new Error(`child failed (exit ${res.status}): ${res.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as { rowsIn: number; rowsOut: number; exactDuplicates: number; dropped: number; seconds: number; peakRss: number; peakSource: string; hashTableBytes: number };
    ctx.report({ bench: 'data_prep', shape, unit: 'rows/s', value: r.rowsIn / r.seconds, peer: null, peer_value: null });
    ctx.report({ bench: 'data_prep', shape, unit: 'MB/s', value: bytes / 1e6 / r.seconds, peer: null, peer_value: null });
    ctx.report({ bench: 'data_prep', shape, unit: 'MB', value: r.peakRss / 2 ** 20, peer: null, peer_value: null });
    ctx.note(`data_prep: ${r.rowsIn} rows in ${r.seconds.toFixed(1)} s; ${r.dropped} dropped by cleaning, ${r.exactDuplicates} exact duplicates, ${r.rowsOut} written; peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MiB (${r.peakSource}); dedup table ${(r.hashTableBytes / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isChild = process.argv[2] === '--data-prep-child' && process.argv[1] !== undefined && pathToFileURL(path.resolve(process.argv[1])).href === import.meta.url;
if (isChild) await runChild(process.argv[3], process.argv[4]);
else registerBench('data_prep', bench);
