// MetricsLogger: metrics.jsonl lines (order, eval prefix, non-finite values), TensorBoard scalars with
// transformers' tag names, console output, truncation on resume, recovery from a partial last line.
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetricsLogger, readMetrics, tensorboardTag } from '../../src/train/logging.ts';
import { maskedCrc32c } from '../../src/train/tensorboard.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-log-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = () => readFileSync(join(dir, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

/** The summary value tags of an event file, checking the record framing and CRCs. */
function eventTags(file: string): string[] {
  const buf = readFileSync(file);
  const tags: string[] = [];
  let o = 0;
  while (o < buf.length) {
    const len = Number(buf.readBigUInt64LE(o));
    assert.equal(buf.readUInt32LE(o + 8), maskedCrc32c(buf.subarray(o, o + 8)));
    const data = buf.subarray(o + 12, o + 12 + len);
    assert.equal(buf.readUInt32LE(o + 12 + len), maskedCrc32c(data));
    // Event: wall_time (key 0x09, 8 bytes), step (key 0x10, varint), then summary (key 0x2a) > value (0x0a) >
    // tag (0x0a); the lengths here all fit in one byte.
    assert.equal(data[0], 0x09);
    assert.equal(data[9], 0x10);
    let i = 10;
    while (data[i] & 0x80) i++;
    i++;
    if (data[i] === 0x2a) {
      assert.equal(data[i + 2], 0x0a);
      assert.equal(data[i + 4], 0x0a);
      tags.push(data.subarray(i + 6, i + 6 + data[i + 5]).toString('utf8'));
    } else assert.equal(data[i], 0x1a); // file_version
    o += 16 + len;
  }
  return tags;
}

describe('MetricsLogger', () => {
  it('writes one JSON line per call: step, epoch, metrics in order, time; eval keys prefixed', () => {
    const log = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 100 });
    const before = Date.now() / 1000;
    log.log(10, { loss: 2.5, learning_rate: 2e-5, epoch: 0.1 });
    log.log(20, { loss: 2.25, eval_accuracy: 0.5 }, { prefix: 'eval' });
    log.log(30, { loss: NaN, grad_norm: Infinity, x: -Infinity });
    log.close();
    log.close();
    const l = lines();
    assert.deepEqual(Object.keys(l[0]), ['step', 'epoch', 'loss', 'learning_rate', 'time']);
    assert.deepEqual({ ...l[0], time: 0 }, { step: 10, epoch: 0.1, loss: 2.5, learning_rate: 2e-5, time: 0 });
    assert.ok((l[0].time as number) >= before - 1 && (l[0].time as number) <= Date.now() / 1000 + 1);
    assert.deepEqual(Object.keys(l[1]), ['step', 'eval_loss', 'eval_accuracy', 'time']);
    assert.deepEqual([l[2].loss, l[2].grad_norm, l[2].x], ['NaN', 'Infinity', '-Infinity']);
    const back = readMetrics(dir);
    assert.ok(Number.isNaN(back[2].loss));
    assert.equal(back[2].grad_norm, Infinity);
    assert.equal(back[1].eval_loss, 2.25);
    assert.throws(() => log.log(40, { loss: 1 }), /log\(\) after close\(\)/);
  });

  it('rejects bad steps, non-numbers and reserved keys', () => {
    const log = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 1 });
    assert.throws(() => log.log(-1, {}), /step must be an integer >= 0/);
    assert.throws(() => log.log(1, { loss: '1' as unknown as number }), /metric 'loss' at step 1 is not a number/);
    assert.throws(() => log.log(1, { time: 1 }), /'time' is reserved/);
    log.close();
  });

  it('writes TensorBoard scalars named as transformers does (train/loss, eval/loss)', () => {
    assert.equal(tensorboardTag('loss'), 'train/loss');
    assert.equal(tensorboardTag('eval_loss'), 'eval/loss');
    const log = new MetricsLogger(dir, { tensorboard: true, console: false, totalSteps: 10 });
    log.log(5, { loss: 1.5, learning_rate: 1e-4 });
    log.log(10, { loss: 1.25 }, { prefix: 'eval' });
    // Records are flushed by every log call: visible before close.
    const files = readdirSync(join(dir, 'runs'));
    assert.equal(files.length, 1);
    assert.match(files[0], /^events\.out\.tfevents\./);
    assert.deepEqual(eventTags(join(dir, 'runs', files[0])), ['train/loss', 'train/learning_rate', 'eval/loss']);
    log.close();
    const custom = new MetricsLogger(dir, { tensorboard: true, console: false, totalSteps: 10, tensorboardDir: join(dir, 'tb') });
    custom.close();
    assert.equal(readdirSync(join(dir, 'tb')).length, 1);
  });

  it('console: plain lines when not a terminal, a redrawn bar on one', () => {
    const out: string[] = [];
    const stream = { write: (s: string) => out.push(s), columns: 120 };
    let t = 0;
    const plain = new MetricsLogger(dir, { tensorboard: false, console: true, totalSteps: 20, isTTY: false, stream, now: () => t });
    plain.log(10, { loss: 2, learning_rate: 1e-3 });
    t = 1000;
    plain.log(20, { loss: 1.5, learning_rate: 5e-4 });
    plain.log(20, { loss: 1.25 }, { prefix: 'eval' });
    plain.close();
    assert.deepEqual(out, [
      'step 10/20 (50%) loss 2 lr 1.00e-3 | ? it/s | elapsed 00:00 eta ?\n',
      'step 20/20 (100%) loss 1.5 lr 5.00e-4 | 10.0 it/s | elapsed 00:01 eta 00:00\n',
      'eval at step 20: eval_loss 1.25\n',
    ]);
    out.length = 0;
    const tty = new MetricsLogger(dir, { tensorboard: false, console: true, totalSteps: 20, isTTY: true, stream, now: () => t });
    tty.log(10, { loss: 2 });
    tty.advance(11, { loss: 1.9 });
    tty.close();
    assert.match(out[0], /^\r 50%\|/);
    assert.equal(out.at(-1), '\n');
  });

  it('summary: aligned key = value lines', () => {
    const log = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 1 });
    assert.equal(log.summary({ train_loss: 1.23456, train_runtime: 12.5, epoch: 3, status: 'completed' }), [
      '***** train metrics *****',
      '  train_loss    = 1.235',
      '  train_runtime = 12.5',
      '  epoch         = 3',
      '  status        = completed',
    ].join('\n'));
    log.close();
  });
});

describe('resume', () => {
  it('truncateAfter drops the lines after the resumed step (and a partial last line)', () => {
    const log = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 100 });
    for (const s of [10, 20, 30, 40]) log.log(s, { loss: s });
    log.log(30, { loss: 1 }, { prefix: 'eval' });
    log.close();
    appendFileSync(join(dir, 'metrics.jsonl'), '{"step": 50, "lo'); // killed mid-write
    assert.equal(MetricsLogger.truncateAfter(dir, 30), 2); // step 40 and the partial line
    assert.deepEqual(lines().map((l) => l.step), [10, 20, 30, 30]);
    assert.equal(MetricsLogger.truncateAfter(dir, 30), 0);
    assert.equal(MetricsLogger.truncateAfter(join(dir, 'absent'), 5), 0);
    // The resumed run appends after the kept lines.
    const again = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 100 });
    again.log(40, { loss: 0.5 });
    again.close();
    assert.deepEqual(lines().map((l) => l.step), [10, 20, 30, 30, 40]);
  });

  it('a new logger removes a partial last line before appending', () => {
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"loss":2,"time":0}\n{"step":2,"lo');
    const log = new MetricsLogger(dir, { tensorboard: false, console: false, totalSteps: 3 });
    log.log(2, { loss: 1 });
    log.close();
    assert.deepEqual(lines().map((l) => [l.step, l.loss]), [[1, 2], [2, 1]]);
  });

  it('malformed lines are errors naming file and line', () => {
    writeFileSync(join(dir, 'metrics.jsonl'), '{"step":1,"time":0}\nnot json\n{"step":3,"time":0}\n');
    assert.throws(() => MetricsLogger.truncateAfter(dir, 1), new RegExp(`${join(dir, 'metrics.jsonl').replace(/[.]/g, '\\.')}: line 2: not valid JSON`));
    assert.throws(() => readMetrics(dir), /metrics\.jsonl: line 2: not valid JSON/);
    assert.equal(readMetrics(dir, { skipInvalid: true }).length, 2);
    writeFileSync(join(dir, 'metrics.jsonl'), '{"time":0}\n');
    assert.throws(() => MetricsLogger.truncateAfter(dir, 1), /line 1: no numeric 'step' field/);
    assert.throws(() => readMetrics(dir), /line 1: field 'step' is missing or not an integer/);
  });
});
