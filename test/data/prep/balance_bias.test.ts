// Balancing (class weights with hand-computed values, exact seeded resampling, SMOTE geometry, hashed TF-IDF) and
// bias tools (term counts, re-weighting with hand-computed weights, counterfactual swaps, report).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { HashedTfidf, ResamplePlan, effectiveNumberWeights, inverseFrequencyWeights, nearestNeighbours, parseTarget, smote, targetCount, tokenizeWords } from '../../../src/data/prep/balance.ts';
import { BiasCounter, TermMatcher, buildReport, counterfactual, loadLexicon, renderBiasMarkdown, swapMap, validateLexicon } from '../../../src/data/prep/bias.ts';
import { Rng } from '../../../src/data/prep/rng.ts';
import { PrepError } from '../../../src/data/prep/errors.ts';

const close = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe('class weights', () => {
  const counts = new Map([['a', 90], ['b', 10]]);

  it('inverse frequency: N / (K n_c)', () => {
    const w = inverseFrequencyWeights(counts);
    close(w.a, 100 / 180);
    close(w.b, 5);
  });

  it('effective number of samples (Cui et al. 2019), beta = 0.99, normalised to sum K', () => {
    // E_a = (1 - 0.99^90) / 0.01 = 59.5268, E_b = (1 - 0.99^10) / 0.01 = 9.5618; w ∝ 1/E, scaled to sum 2.
    const w = effectiveNumberWeights(counts, 0.99);
    close(w.a, 0.2767980002230367, 1e-12);
    close(w.b, 1.7232019997769634, 1e-12);
    const eq = effectiveNumberWeights(counts, 0); // beta = 0: equal weights
    close(eq.a, 1);
    close(eq.b, 1);
    assert.throws(() => effectiveNumberWeights(counts, 1), /--beta must be in \[0, 1\)/);
  });
});

describe('resampling', () => {
  it('targets', () => {
    const c = new Map([['a', 5], ['b', 2], ['c', 9]]);
    assert.deepEqual(['max', 'min', 'mean', 'median'].map((t) => targetCount(c, parseTarget(t))), [9, 2, 5, 5]);
    assert.equal(targetCount(c, parseTarget('7')), 7);
    assert.throws(() => parseTarget('lots'), /--target/);
  });

  it('over-, under- and resampling give exactly the planned class sizes, seed-deterministic', () => {
    const counts = new Map([['a', 5], ['b', 2]]);
    const run = (target: number, strategy: 'oversample' | 'undersample' | 'resample', seed: number): Record<string, number[]> => {
      const plan = new ResamplePlan(counts, target, strategy, seed);
      const out: Record<string, number[]> = { a: [], b: [] };
      for (const [k, n] of counts) for (let i = 0; i < n; i++) out[k].push(plan.copies(k));
      return out;
    };
    const sum = (xs: number[]): number => xs.reduce((x, y) => x + y, 0);
    const over = run(5, 'oversample', 3);
    assert.deepEqual(over.a, [1, 1, 1, 1, 1]);
    assert.equal(sum(over.b), 5);
    assert.ok(over.b.every((c) => c === 2 || c === 3));
    const under = run(2, 'undersample', 3);
    assert.equal(sum(under.a), 2);
    assert.ok(under.a.every((c) => c === 0 || c === 1));
    assert.deepEqual(under.b, [1, 1]);
    const re = run(4, 'resample', 3);
    assert.equal(sum(re.a), 4);
    assert.equal(sum(re.b), 4);
    assert.deepEqual(run(4, 'resample', 3), re);
  });
});

describe('SMOTE', () => {
  const pts = [[0, 0], [1, 0], [0, 1], [10, 10]];

  it('nearest neighbours by Euclidean distance, ties to the lower index', () => {
    assert.deepEqual(nearestNeighbours(pts, 1), [[1], [0], [0], [1]]);
    assert.deepEqual(nearestNeighbours(pts, 2), [[1, 2], [0, 2], [0, 1], [1, 2]]);
  });

  it('synthetic points lie on the segment from a base sample to one of its k nearest neighbours', () => {
    const out = smote(pts, 12, 2, new Rng(4));
    assert.equal(out.length, 12);
    const nn = nearestNeighbours(pts, 2);
    const bases = new Map<number, number>();
    for (const s of out) {
      bases.set(s.base, (bases.get(s.base) ?? 0) + 1);
      assert.ok(nn[s.base].includes(s.neighbour));
      assert.ok(s.lambda >= 0 && s.lambda < 1);
      const a = pts[s.base], b = pts[s.neighbour];
      for (let d = 0; d < 2; d++) close(s.vector[d], a[d] + s.lambda * (b[d] - a[d]), 1e-12);
    }
    assert.deepEqual([...bases.values()], [3, 3, 3, 3]); // 12 samples cycle evenly through the 4 bases
    assert.deepEqual(smote(pts, 12, 2, new Rng(4)), out);
  });

  it('a class of one sample is copied (no neighbour to interpolate with)', () => {
    const out = smote([[2, 3]], 2, 5, new Rng(0));
    assert.deepEqual(out.map((s) => [Array.from(s.vector), s.lambda, s.neighbour]), [[[2, 3], 0, 0], [[2, 3], 0, 0]]);
  });

  it('hashed TF-IDF: smoothed idf, L2-normalised (hand-computed)', () => {
    assert.deepEqual(tokenizeWords('Hello, WORLD 42!'), ['hello', 'world', '42']);
    const t = new HashedTfidf(1 << 16);
    t.addDocument('a b');
    t.addDocument('a c');
    const v = t.vector('a b');
    const nz = Array.from(v).filter((x) => x !== 0).map(Math.abs).sort();
    // idf(a) = ln(3/3) + 1 = 1, idf(b) = ln(3/2) + 1 = 1.405465; normalised: 0.579739, 0.814802
    close(nz[0], 0.5797386715376657, 1e-12);
    close(nz[1], 0.8148024746671689, 1e-12);
  });
});

describe('bias: lexicon and counting', () => {
  const lex = loadLexicon();

  it('the default lexicon loads and says it is illustrative', () => {
    assert.deepEqual(Object.keys(lex.attributes), ['gender', 'religion', 'nationality']);
    assert.match(lex.description, /ILLUSTRATIVE AND INCOMPLETE/);
  });

  it('matches whole words case-insensitively', () => {
    const m = new TermMatcher(lex);
    assert.deepEqual(m.match('She gave him HER book.').group.gender, 'mixed');
    assert.deepEqual(m.match('She gave him HER book.').terms.gender, { she: 1, him: 1, her: 1 });
    assert.equal(m.match('The theme of Hermann’s menu').group.gender, 'none');
    assert.equal(m.match("He's a Muslim from Germany").group.religion, 'muslim');
    assert.equal(m.match("He's here").group.gender, 'male');
  });

  it('re-weighting: equalize and Kamiran-Calders (hand-computed)', () => {
    const small = validateLexicon({ attributes: { gender: { groups: { f: ['she'], m: ['he'] }, swaps: [['he', 'she']] } } }, 'inline');
    const c = new BiasCounter(new TermMatcher(small));
    const add = (text: string, label: string, times: number): void => {
      for (let i = 0; i < times; i++) c.add(text, label);
    };
    add('she', 'pos', 1);
    add('she', 'neg', 1);
    add('he', 'pos', 4);
    add('he', 'neg', 2);
    add('nobody', 'pos', 2);
    const eq = c.weights('gender', 'equalize');
    close(eq.get('f')!.get('pos')!, 8 / (2 * 2));
    close(eq.get('m')!.get('neg')!, 8 / (2 * 6));
    assert.equal(eq.get('none')!.get('pos'), 1);
    const kc = c.weights('gender', 'kamiran_calders');
    close(kc.get('f')!.get('pos')!, (2 * 5) / (8 * 1)); // n_g n_y / (A n_gy)
    close(kc.get('f')!.get('neg')!, (2 * 3) / (8 * 1));
    close(kc.get('m')!.get('pos')!, (6 * 5) / (8 * 4));
    close(kc.get('m')!.get('neg')!, (6 * 3) / (8 * 2));
    // After Kamiran-Calders weighting, P_w(pos | group) = P(pos) = 5/8 for both groups.
    close(kc.get('f')!.get('pos')! / (kc.get('f')!.get('pos')! + kc.get('f')!.get('neg')!), 5 / 8);
    close((4 * kc.get('m')!.get('pos')!) / (4 * kc.get('m')!.get('pos')! + 2 * kc.get('m')!.get('neg')!), 5 / 8);
    const report = buildReport(c, 'inline', { reweighting: null, counterfactual: null });
    assert.deepEqual(report.attributes.gender.groupByLabel, { f: { neg: 1, pos: 1 }, m: { neg: 2, pos: 4 }, none: { pos: 2 } });
    assert.deepEqual(report.attributes.gender.mentions, { f: 2, m: 6 });
    const md = renderBiasMarkdown(report);
    assert.match(md, /\| group \| neg \| pos \| total \| rows mentioning \|/);
    assert.match(md, /\| m \| 2 \| 4 \| 6 \| 6 \|/);
  });

  it('rejects a malformed lexicon with the field', () => {
    assert.throws(() => validateLexicon({ attributes: { g: { groups: { a: ['two words'] } } } }, 'lex.json'), (e: Error) => e instanceof PrepError && /field 'attributes\.g\.groups\.a'/.test(e.message));
    assert.throws(() => validateLexicon({ attributes: { g: { groups: { a: ['x'] }, swaps: [['x']] } } }, 'lex.json'), /swaps/);
  });
});

describe('bias: counterfactual augmentation', () => {
  const swaps = swapMap(loadLexicon().attributes.gender.swaps);

  it('swaps both ways, keeps case, respects word boundaries', () => {
    assert.deepEqual(counterfactual('He said HE likes his mother. The theme.', swaps), { text: 'She said SHE likes her father. The theme.', swaps: 4 });
    assert.deepEqual(counterfactual("She's my sister, Hermann.", swaps), { text: "He's my brother, Hermann.", swaps: 2 });
    assert.deepEqual(counterfactual('no terms here', swaps), { text: 'no terms here', swaps: 0 });
  });

  it('the first pair wins for a word in several pairs (documented ambiguity)', () => {
    assert.equal(swaps.get('her'), 'him');
    assert.equal(swaps.get('his'), 'her');
    assert.equal(swaps.get('hers'), 'his');
  });
});
