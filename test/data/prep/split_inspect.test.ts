// Splitting (exact sizes, stratified, seeded) and inspection (schema, null rates, histograms, roles).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SplitAssigner, allocate, parseFractions, stratumKey } from '../../../src/data/prep/split.ts';
import { Inspector, binLabel, log2Bin, svgHistogram, textHistogram, renderInspect } from '../../../src/data/prep/inspect.ts';
import { Rng } from '../../../src/data/prep/rng.ts';

describe('split', () => {
  it('allocate: largest remainder, exact totals (hand-computed)', () => {
    assert.deepEqual(allocate(10, [0.8, 0.1, 0.1]), [8, 1, 1]);
    assert.deepEqual(allocate(7, [0.8, 0.1, 0.1]), [5, 1, 1]); // 5.6, 0.7, 0.7 -> 5, 0, 0 + the 2 leftovers to the .7s
  });

  it('assigns exact sizes per stratum, keeps strata proportions, and is seed-deterministic', () => {
    const counts = new Map([['a', 50], ['b', 30], ['c', 3]]);
    const run = (seed: number): number[] => {
      const s = new SplitAssigner(counts, [0.8, 0.2], seed);
      const out: number[] = [];
      for (const [k, n] of counts) for (let i = 0; i < n; i++) out.push(s.assign(k));
      return out;
    };
    const a = run(1);
    assert.deepEqual(a, run(1));
    assert.notDeepEqual(a, run(2));
    const per = (from: number, to: number): number[] => [0, 1].map((k) => a.slice(from, to).filter((x) => x === k).length);
    assert.deepEqual(per(0, 50), [40, 10]);
    assert.deepEqual(per(50, 80), [24, 6]);
    assert.deepEqual(per(80, 83), [2, 1]); // 2.4, 0.6 -> 2, 0 + leftover to .6
    const s = new SplitAssigner(new Map([['x', 1]]), [0.5, 0.5], 0);
    s.assign('x');
    assert.throws(() => s.assign('x'), /more rows of stratum 'x'/);
  });

  it('every assignment with the right sizes is equally likely (sequential selection is uniform)', () => {
    // 4 rows, sizes [2, 2]: C(4,2) = 6 arrangements, each ~1/6 over many seeds.
    const freq = new Map<string, number>();
    for (let seed = 0; seed < 6000; seed++) {
      const s = new SplitAssigner(new Map([['all', 4]]), [0.5, 0.5], seed);
      const key = [0, 1, 2, 3].map(() => s.assign('all')).join('');
      freq.set(key, (freq.get(key) ?? 0) + 1);
    }
    assert.equal(freq.size, 6);
    for (const [k, n] of freq) assert.ok(Math.abs(n - 1000) < 150, `${k}: ${n}`);
  });

  it('parses fractions and stratum keys', () => {
    assert.deepEqual(parseFractions('0.9, 0.1'), [0.9, 0.1]);
    assert.throws(() => parseFractions('0.9,0.2'), /summing to 1/);
    assert.equal(stratumKey(undefined), '(missing)');
    assert.equal(stratumKey(3), '3');
    assert.equal(stratumKey('pos'), 'pos');
  });
});

describe('inspect', () => {
  it('log2 bins', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 7, 8, 1000].map(log2Bin), [0, 1, 2, 2, 3, 3, 4, 10]);
    assert.deepEqual([0, 1, 2, 3, 10].map(binLabel), ['0', '1', '2-3', '4-7', '512-1023']);
  });

  it('detects types, null rates, top values, chat roles and the layout', () => {
    const insp = new Inspector(0, 2);
    const rows = [
      { messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello there' }], label: 'a', score: 1 },
      { messages: [{ role: 'system', content: 's' }, { role: 'user', content: 'q' }, { role: 'assistant', content: 'answer' }], label: 'b', score: 2.5 },
      { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y' }], label: 'a', score: null },
      { messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'yy' }], label: 'a' },
    ];
    rows.forEach((r, i) => insp.add(r, i + 1));
    const r = insp.report();
    assert.equal(r.rows, 4);
    assert.equal(r.layout, 'messages');
    const f = Object.fromEntries(r.fields.map((x) => [x.field, x]));
    assert.equal(f.messages.type, 'messages');
    assert.deepEqual(f.messages.roles, { user: 4, assistant: 4, system: 1 });
    assert.deepEqual({ min: f.messages.lengths!.min, max: f.messages.lengths!.max, mean: f.messages.lengths!.mean }, { min: 2, max: 3, mean: 2.25 });
    assert.deepEqual(f.label.topValues, [{ value: 'a', count: 3 }, { value: 'b', count: 1 }]);
    assert.equal(f.score.type, 'number');
    assert.equal(f.score.nullRate, 0.5); // one null, one missing
    assert.deepEqual({ min: f.score.numbers!.min, max: f.score.numbers!.max, mean: f.score.numbers!.mean }, { min: 1, max: 2.5, mean: 1.75 });
    // contents: hi, hello there, s, q, answer, x, y, x, yy
    assert.deepEqual(f.messages.contentLengths!.histogram, [{ bin: '1', count: 5 }, { bin: '2-3', count: 2 }, { bin: '4-7', count: 1 }, { bin: '8-15', count: 1 }]);
    assert.equal(r.samples.length, 2);
    const text = renderInspect(r, 'x.jsonl');
    assert.match(text, /x\.jsonl: 4 rows, layout: messages/);
    assert.match(text, /roles in 'messages': user 4, assistant 4, system 1/);
  });

  it('percentiles are exact below the reservoir size', () => {
    const insp = new Inspector(0, 0);
    for (let i = 1; i <= 100; i++) insp.add({ t: 'x'.repeat(i) }, i);
    const l = insp.report().fields[0].lengths!;
    assert.deepEqual([l.p50, l.p90, l.p99, l.exactPercentiles], [50, 90, 99, true]);
  });

  it('renders text and SVG histograms', () => {
    const h = [{ bin: '1', count: 2 }, { bin: '2-3', count: 4 }];
    assert.deepEqual(textHistogram(h, 4), ['  1 │██   2', '2-3 │████ 4']);
    const svg = svgHistogram('a <title>', h, 'chars');
    assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.match(svg, /a &lt;title&gt;/);
    assert.equal((svg.match(/<rect x=/g) ?? []).length, 2);
  });

  it('the reservoir sample of rows depends only on the seed', () => {
    const take = (seed: number): number[] => {
      const insp = new Inspector(seed, 3);
      for (let i = 1; i <= 50; i++) insp.add({ i }, i);
      return insp.report().samples.map((s) => s.line);
    };
    assert.deepEqual(take(5), take(5));
    assert.ok(new Rng(5).next() !== new Rng(6).next());
  });
});
