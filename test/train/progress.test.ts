// Progress display: the pure formatting functions at chosen values and widths, then the display with a fake
// clock and stream (throttled redraws on a terminal, plain lines elsewhere).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProgressDisplay, formatDuration, formatMetric, formatPlainLine, formatProgressLine, formatRate, formatSi, renderBar, type ProgressState } from '../../src/train/progress.ts';

describe('formatting', () => {
  it('formatDuration: MM:SS, H:MM:SS, Nd H:MM:SS, ? when unknown', () => {
    const cases: [number, string][] = [[0, '00:00'], [5, '00:05'], [59.6, '01:00'], [65, '01:05'], [3599.4, '59:59'], [3600, '1:00:00'], [3723, '1:02:03'], [90061, '1d 1:01:01'], [NaN, '?'], [Infinity, '?'], [-1, '?']];
    for (const [s, want] of cases) assert.equal(formatDuration(s), want, String(s));
  });
  it('formatSi: three significant digits with k/M/G', () => {
    const cases: [number, string][] = [[0, '0.00'], [1.5, '1.50'], [12.345, '12.3'], [950, '950'], [999.4, '999'], [999.6, '1.00k'], [1234, '1.23k'], [45_600_000, '45.6M'], [2.5e9, '2.50G']];
    for (const [n, want] of cases) assert.equal(formatSi(n), want, String(n));
  });
  it('formatRate: per second, inverted below 1 (as tqdm)', () => {
    assert.equal(formatRate(1234, 'tok'), '1.23k tok/s');
    assert.equal(formatRate(5.95, 'it'), '5.95 it/s');
    assert.equal(formatRate(0.4, 'it'), '2.50 s/it');
    assert.equal(formatRate(0, 'it'), '? it/s');
    assert.equal(formatRate(NaN, 'tok'), '? tok/s');
  });
  it('formatMetric: 4 significant digits, exponent for tiny or huge values', () => {
    assert.equal(formatMetric(2.34567), '2.346');
    assert.equal(formatMetric(0.5), '0.5');
    assert.equal(formatMetric(2e-5), '2.00e-5');
    assert.equal(formatMetric(123456), '1.23e+5');
    assert.equal(formatMetric(0), '0');
    assert.equal(formatMetric(NaN), 'NaN');
  });
  it('renderBar: eighth blocks at the given width', () => {
    assert.equal(renderBar(0.5, 10), '█████     ');
    assert.equal(renderBar(0.37, 10), '███▋      '); // 29.6 eighths → 3 full + 5/8
    assert.equal(renderBar(0.999, 10), '█████████▉');
    assert.equal(renderBar(1, 4), '████');
    assert.equal(renderBar(1.5, 3), '███');
    assert.equal(renderBar(0, 3), '   ');
    assert.equal(renderBar(NaN, 2), '  ');
    assert.equal(renderBar(0.5, 0), '');
    for (const w of [1, 7, 33]) for (const f of [0, 0.13, 0.5, 0.99, 1]) assert.equal([...renderBar(f, w)].length, w, `width ${w} at ${f}`);
  });

  const s: ProgressState = { step: 370, totalSteps: 1000, elapsedSeconds: 62, stepsPerSecond: 5.95, tokensPerSecond: 1234, loss: 2.3449, learningRate: 2e-5 };
  it('formatProgressLine: bar fills the width; no bar when narrow; truncated at the width', () => {
    const right = '| 370/1000 [01:02<01:46, 5.95 it/s, 1.23k tok/s, loss 2.345, lr 2.00e-5]';
    const line = formatProgressLine(s, 100);
    assert.equal(line, ` 37%|${renderBar(0.37, 100 - 5 - right.length)}${right}`);
    assert.equal([...line].length, 100);
    assert.equal(formatProgressLine(s, 80), ` 37%${right}`); // 80 leaves < 10 columns for a bar
    const narrow = formatProgressLine(s, 40);
    assert.equal(narrow.length, 40);
    assert.ok(narrow.endsWith('…'));
  });
  it('formatPlainLine: one complete line', () => {
    assert.equal(formatPlainLine(s), 'step 370/1000 (37%) loss 2.345 lr 2.00e-5 | 5.95 it/s 1.23k tok/s | elapsed 01:02 eta 01:46');
    assert.equal(formatPlainLine({ step: 0, totalSteps: 10, elapsedSeconds: 0, stepsPerSecond: NaN, tokensPerSecond: NaN }), 'step 0/10 (0%) | ? it/s | elapsed 00:00 eta ?');
  });
});

function fakeStream() {
  const writes: string[] = [];
  return { writes, stream: { columns: 120, write: (x: string) => writes.push(x) } };
}

describe('ProgressDisplay', () => {
  it('on a terminal: redraws in place at most every minIntervalMs, always at the last step', () => {
    let t = 1000;
    const { writes, stream } = fakeStream();
    const p = new ProgressDisplay({ totalSteps: 10, isTTY: true, stream, minIntervalMs: 100, now: () => t });
    p.update(1, { loss: 3 });
    t += 50;
    p.update(2); // throttled
    t += 60;
    p.update(3, { learningRate: 1e-3 });
    assert.equal(writes.length, 2);
    for (const w of writes) assert.match(w, /^\r.*\x1b\[K$/);
    assert.match(writes[1], /30%\|.* 3\/10 \[00:00<00:00, 18\.2 it\/s, loss 3, lr 1\.00e-3\]/); // 2 steps in 0.11 s
    p.update(10); // the last step is drawn even within the interval
    assert.equal(writes.length, 3);
    assert.match(writes[2], /100%\|█+\| 10\/10/);
    p.print('eval at step 10: eval_loss 2.5');
    assert.equal(writes[3], '\r\x1b[Keval at step 10: eval_loss 2.5\n'); // the line above, then the bar again
    assert.match(writes[4], /^\r100%/);
    p.finish();
    assert.equal(writes.at(-1), '\n');
  });

  it('elsewhere: no redraws; print() writes plain lines; tokens/s from cumulative counts', () => {
    let t = 0;
    const { writes, stream } = fakeStream();
    const p = new ProgressDisplay({ totalSteps: 100, isTTY: false, stream, now: () => t });
    p.update(0, { numTokens: 0 });
    t = 2000;
    p.update(10, { numTokens: 5000, loss: 1.5 });
    assert.equal(writes.length, 0);
    assert.equal(p.current.tokensPerSecond, 2500);
    assert.equal(p.current.stepsPerSecond, 5);
    p.print(p.plainLine());
    p.finish();
    assert.deepEqual(writes, ['step 10/100 (10%) loss 1.5 | 5.00 it/s 2.50k tok/s | elapsed 00:02 eta 00:18\n']);
  });

  it('rates are measured from the first step seen (a resumed run)', () => {
    let t = 0;
    const p = new ProgressDisplay({ totalSteps: 1000, isTTY: false, stream: fakeStream().stream, now: () => t });
    p.update(500);
    t = 10_000;
    p.update(600);
    assert.equal(p.current.stepsPerSecond, 10);
    assert.match(p.plainLine(), /eta 00:40$/);
  });
});
