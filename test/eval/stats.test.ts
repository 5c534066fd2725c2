// Statistics against published values (Fleiss 1971 / Wikipedia, Cohen's kappa Wikipedia example,
// Krippendorff 2011's worked examples, Newcombe 1998's Wilson intervals), reference tools (SciPy binomtest,
// statsmodels Wilson and Fleiss, scikit-learn weighted kappa, NumPy's generator; golden file) and direct
// combinatorics (pass@k, sign test).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  binomialPmf,
  bootstrapCI,
  bootstrapMeanCI,
  cohenKappa,
  fleissKappa,
  fleissTable,
  krippendorffAlpha,
  meanPassAtK,
  normalQuantile,
  passAtK,
  percentile,
  signTest,
  wilsonInterval,
  winRate,
} from '../../src/eval/stats.ts';
import { NumpyGenerator, seedSequenceState } from '../../src/eval/numpy_random.ts';
import { golden } from './golden.ts';

const near = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b}`);
const g = golden();

describe('agreement coefficients: published worked examples', () => {
  it("Fleiss' kappa: Fleiss (1971) / Wikipedia's 10 subjects x 14 raters example = 0.210", () => {
    const table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]];
    const r = fleissKappa(table);
    assert.equal(r.kappa.toFixed(3), '0.210');
    assert.equal(r.pBar.toFixed(3), '0.378');
    assert.equal(r.pe.toFixed(3), '0.213');
    assert.deepEqual(r.categoryProportions.map((p) => p.toFixed(3)), ['0.143', '0.200', '0.279', '0.150', '0.229']);
  });

  it("Fleiss' kappa equals statsmodels' fleiss_kappa on a random table", () => {
    near(fleissKappa(g.stats.fleiss.table).kappa, g.stats.fleiss.kappa, 1e-12, 'fleiss');
    const { table } = fleissTable([['x', 'y', 'y'], ['x', 'x', 'x'], ['z', 'y', 'x']]);
    assert.deepEqual(table, [[1, 2, 0], [3, 0, 0], [1, 1, 1]]);
  });

  it("Cohen's kappa: Wikipedia's 50-proposal example (20/5/10/15) = 0.4", () => {
    const a: string[] = [], b: string[] = [];
    const add = (x: string, y: string, n: number) => {
      for (let i = 0; i < n; i++) {
        a.push(x);
        b.push(y);
      }
    };
    add('yes', 'yes', 20);
    add('yes', 'no', 5);
    add('no', 'yes', 10);
    add('no', 'no', 15);
    near(cohenKappa(a, b), 0.4, 1e-12, 'kappa');
  });

  it("Cohen's kappa, unweighted / linear / quadratic, equals scikit-learn's cohen_kappa_score", () => {
    const k = g.sklearn.kappa;
    near(cohenKappa(k.r1, k.r2), k.None, 1e-12, 'none');
    near(cohenKappa(k.r1, k.r2, { weights: 'linear' }), k.linear, 1e-12, 'linear');
    near(cohenKappa(k.r1, k.r2, { weights: 'quadratic' }), k.quadratic, 1e-12, 'quadratic');
  });

  it("Krippendorff's alpha: Krippendorff (2011) examples A (binary, 0.095), B (nominal, 0.692), C (4 coders, missing data)", () => {
    near(krippendorffAlpha([[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]), 0.095, 5e-4, 'A');
    const B = [['a', 'a', 'b', 'b', 'd', 'c', 'c', 'c', 'e', 'd', 'd', 'a'], ['b', 'a', 'b', 'b', 'b', 'c', 'c', 'c', 'e', 'd', 'd', 'd']];
    near(krippendorffAlpha(B), 0.692, 5e-4, 'B');
    const _ = null;
    const C = [
      [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
      [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
      [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
      [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
    ];
    near(krippendorffAlpha(C, 'nominal'), 0.743, 5e-4, 'C nominal');
    near(krippendorffAlpha(C, 'ordinal'), 0.815, 5e-4, 'C ordinal');
    near(krippendorffAlpha(C, 'interval'), 0.849, 5e-4, 'C interval');
    near(krippendorffAlpha(C, 'ratio'), 0.797, 5e-4, 'C ratio');
  });

  it('rejects malformed agreement input with a clear message', () => {
    assert.throws(() => cohenKappa([1, 2], [1]), /raters have 2 and 1 ratings/);
    assert.throws(() => fleissKappa([[1, 2], [3]]), /subject 2 has 1 categories/);
    assert.throws(() => fleissKappa([[1, 2], [1, 1]]), /subject 2 has 2 ratings, expected 3/);
    assert.throws(() => krippendorffAlpha([[1, 2], [1]]), /coder 2 has 1 units/);
    assert.throws(() => krippendorffAlpha([['a', 'b']], 'interval'), /interval data must be numbers/);
  });
});

describe('proportions and tests', () => {
  it("Wilson interval: Newcombe (1998)'s examples", () => {
    const cases: [number, number, string, string][] = [[81, 263, '0.2553', '0.3662'], [15, 148, '0.0624', '0.1605'], [0, 20, '0.0000', '0.1611'], [1, 29, '0.0061', '0.1718']];
    for (const [x, n, lo, hi] of cases) {
      const w = wilsonInterval(x, n);
      assert.equal(w.low.toFixed(4), lo, `${x}/${n} low`);
      assert.equal(w.high.toFixed(4), hi, `${x}/${n} high`);
    }
  });

  it("Wilson interval equals statsmodels' proportion_confint(method='wilson')", () => {
    for (const e of g.stats.wilson) {
      const w = wilsonInterval(e.x, e.n, 1 - e.alpha);
      near(w.low, e.ci[0], 1e-12, `${e.x}/${e.n} low`);
      near(w.high, e.ci[1], 1e-12, `${e.x}/${e.n} high`);
    }
  });

  it('normal quantile', () => {
    near(normalQuantile(0.975), 1.959963984540054, 1e-15, 'z 0.975');
    near(normalQuantile(0.5), 0, 0, 'median');
    near(normalQuantile(1e-10), -6.361340902404056, 1e-12, 'far tail');
  });

  it('exact sign test: direct combinatorics and SciPy binomtest', () => {
    near(signTest(9, 1).pValue, (2 * (1 + 10)) / 1024, 1e-15, '9 vs 1');
    near(signTest(15, 5).pValue, (2 * (1 + 20 + 190 + 1140 + 4845 + 15504)) / 2 ** 20, 1e-15, '15 vs 5');
    assert.equal(signTest(0, 0).pValue, 1);
    for (const e of g.stats.binomtest) near(signTest(e.k, e.n - e.k).pValue, e.p, 1e-12, `binomtest ${e.k}/${e.n}`);
    near(binomialPmf(3, 10, 0.5), 120 / 1024, 1e-15, 'pmf');
  });

  it('win rate with ties counted half or excluded', () => {
    const outcomes = [...Array(6).fill('a'), ...Array(2).fill('b'), ...Array(2).fill('tie')] as ('a' | 'b' | 'tie')[];
    const half = winRate(outcomes);
    assert.equal(half.winRate, 7 / 10);
    assert.deepEqual([half.wins, half.losses, half.ties], [6, 2, 2]);
    const w = wilsonInterval(7, 10);
    near(half.ci.low, w.low, 0, 'ci');
    near(half.signTestP, signTest(6, 2).pValue, 0, 'sign');
    const ex = winRate(outcomes, { ties: 'exclude' });
    assert.equal(ex.winRate, 6 / 8);
    assert.throws(() => winRate(['a', 'x' as 'a']), /outcome must be 'a', 'b' or 'tie'/);
  });
});

describe('pass@k (Chen et al. 2021)', () => {
  const binom = (n: number, k: number): bigint => {
    if (k < 0 || k > n) return 0n;
    let r = 1n;
    for (let i = 1; i <= k; i++) r = (r * BigInt(n - k + i)) / BigInt(i);
    return r;
  };
  it('equals 1 - C(n-c,k)/C(n,k) computed exactly', () => {
    for (const [n, c, k] of [[10, 3, 1], [10, 3, 2], [10, 3, 8], [200, 13, 10], [200, 13, 100], [100, 0, 5], [100, 100, 1], [50, 1, 49], [20, 5, 16]]) {
      const exact = 1 - Number((binom(n - c, k) * 10n ** 30n) / binom(n, k)) / 1e30;
      near(passAtK(n, c, k), exact, 1e-12, `n=${n} c=${c} k=${k}`);
    }
    near(passAtK(10, 3, 1), 0.3, 1e-15, 'pass@1 = c/n');
    near(meanPassAtK([{ n: 10, c: 3 }, { n: 10, c: 0 }], 1), 0.15, 1e-15, 'mean');
    assert.throws(() => passAtK(5, 6, 1), /c \(6\) exceeds n \(5\)/);
  });
});

describe('seeded resampling', () => {
  it("NumPy's default_rng stream: SeedSequence, raw PCG64 output, choice and boolean draws", () => {
    const r = g.stats.rng;
    const gen = new NumpyGenerator(12345);
    assert.deepEqual([0, 1, 2, 3].map(() => gen.nextUint64().toString()), r.raw);
    assert.deepEqual(Array.from(new NumpyGenerator(12345).integers(100, 7)), r.choice_100x7);
    assert.deepEqual(Array.from(new NumpyGenerator(2024).booleans(70)), r.bool_70);
    assert.equal(seedSequenceState(12345, 4).length, 4);
  });

  it('bootstrap CI of a mean equals NumPy (same resamples, np.percentile)', () => {
    const b = g.stats.bootstrap_mean;
    const r = bootstrapMeanCI(b.values, { seed: 12345 });
    near(r.low, b.low, 1e-12, 'low');
    near(r.high, b.high, 1e-12, 'high');
    near(r.median, b.median, 1e-12, 'median');
    assert.deepEqual(bootstrapMeanCI(b.values, { seed: 7 }), bootstrapMeanCI(b.values, { seed: 7 }));
    assert.notDeepEqual(bootstrapMeanCI(b.values, { seed: 7 }).low, bootstrapMeanCI(b.values, { seed: 8 }).low);
  });

  it('bootstrap CI works for any statistic (here the median)', () => {
    const values = [5, 1, 4, 2, 3];
    const r = bootstrapCI(values.length, (idx) => percentile(Array.from(idx, (i) => values[i]), 50), { nResamples: 200, seed: 1 });
    assert.equal(r.estimate, 3);
    assert.ok(r.low >= 1 && r.high <= 5 && r.low <= r.high);
  });
});
