// Classification metrics against scikit-learn (golden), SQuAD EM/F1 against hand-computed values of the
// official script's rules, and fairness metrics against hand-computed tables.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { classificationReport, confusionMatrix, confusionMatrixSvg } from '../../src/eval/classification.ts';
import { exactMatch, normalizeAnswer, squadScores, tokenF1 } from '../../src/eval/squad.ts';
import { fairnessReport } from '../../src/eval/fairness.ts';
import { golden } from './golden.ts';

const near = (a: number, b: number, tol: number, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what}: got ${a}, expected ${b}`);

describe('classification = scikit-learn', () => {
  const c = golden().sklearn.classification;
  it('accuracy, micro / macro / weighted P R F1, per-class scores and the confusion matrix', () => {
    const r = classificationReport(c.y_true, c.y_pred);
    near(r.accuracy, c.accuracy, 1e-15, 'accuracy');
    for (const avg of ['micro', 'macro', 'weighted'] as const) for (const k of ['precision', 'recall', 'f1'] as const) near(r[avg][k], c[avg][k], 1e-12, `${avg} ${k}`);
    assert.deepEqual(r.labels, c.labels);
    assert.deepEqual(r.confusion, c.confusion);
    r.perClass.forEach((pc, i) => {
      near(pc.precision, c.per_class.precision[i], 1e-12, `${pc.label} precision`);
      near(pc.recall, c.per_class.recall[i], 1e-12, `${pc.label} recall`);
      near(pc.f1, c.per_class.f1[i], 1e-12, `${pc.label} f1`);
      assert.equal(pc.support, c.per_class.support[i]);
    });
  });

  it('hand-computed binary case; zero division counts as 0', () => {
    // true: 1 1 1 0 0, pred: 1 0 1 1 0 -> TP 2, FN 1, FP 1, TN 1
    const r = classificationReport([1, 1, 1, 0, 0], [1, 0, 1, 1, 0]);
    assert.deepEqual(r.confusion, [[1, 1], [1, 2]]);
    near(r.perClass[1].precision, 2 / 3, 1e-15, 'P(1)');
    near(r.perClass[1].recall, 2 / 3, 1e-15, 'R(1)');
    near(r.accuracy, 0.6, 1e-15, 'acc');
    const z = classificationReport(['a', 'a'], ['b', 'b']);
    assert.equal(z.perClass.find((p) => p.label === 'b')!.precision, 0);
    assert.deepEqual(confusionMatrix(['x'], ['y'], ['x', 'y', 'z']).matrix, [[0, 1, 0], [0, 0, 0], [0, 0, 0]]);
  });

  it('renders the confusion matrix as SVG with escaped labels', () => {
    const svg = confusionMatrixSvg(['<a>', 'b'], [[3, 1], [0, 2]]);
    assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.match(svg, /&lt;a&gt;/);
    assert.equal((svg.match(/<rect x=/g) ?? []).length, 4);
  });
});

describe('SQuAD exact match and F1', () => {
  it('normalises like the official script (lowercase, punctuation, articles, whitespace)', () => {
    assert.equal(normalizeAnswer('  The  Denver Broncos! '), 'denver broncos');
    assert.equal(normalizeAnswer('an apple, a pear & the-end'), 'apple pear theend');
    assert.equal(normalizeAnswer('Éthe thé'), 'éthe thé'); // Unicode word boundaries as Python's \b
  });

  it('exact match and token F1 (hand-computed)', () => {
    assert.equal(exactMatch('the Denver Broncos', 'Denver Broncos.'), 1);
    // pred tokens [denver, broncos, won], gold [broncos]: common 1, P 1/3, R 1 -> F1 0.5
    assert.equal(tokenF1('Denver Broncos won', 'the Broncos'), 0.5);
    assert.equal(tokenF1('', ''), 0);
    assert.equal(tokenF1('', '', '2.0'), 1);
    assert.equal(tokenF1('x', '', '2.0'), 0);
    const s = squadScores(['Denver Broncos won', 'Paris'], [['the Broncos', 'Denver Broncos'], ['London']]);
    // example 1: best F1 max(0.5, 0.8) = 0.8, EM 0; example 2: 0, 0
    near(s.f1, 40, 1e-12, 'f1');
    assert.equal(s.exactMatch, 0);
    assert.throws(() => squadScores(['a'], [[]]), /example 1 has no gold answer/);
  });
});

describe('fairness (hand-computed)', () => {
  // group A: labels 1 1 0 0, predictions 1 0 1 0 -> TP1 FN1 FP1 TN1
  // group B: labels 1 1 1 0, predictions 1 1 1 1 -> TP3 FP1
  const rows = [
    ...[[1, 1], [1, 0], [0, 1], [0, 0]].map(([label, prediction]) => ({ group: 'A', label, prediction })),
    ...[[1, 1], [1, 1], [1, 1], [0, 1]].map(([label, prediction]) => ({ group: 'B', label, prediction })),
  ];
  it('selection rates, parity differences and per-group confusion tables', () => {
    const r = fairnessReport(rows);
    const [a, b] = r.groups;
    assert.deepEqual([a.tp, a.fp, a.tn, a.fn], [1, 1, 1, 1]);
    assert.deepEqual([b.tp, b.fp, b.tn, b.fn], [3, 1, 0, 0]);
    assert.equal(a.selectionRate, 0.5);
    assert.equal(b.selectionRate, 1);
    assert.equal(r.demographicParityDifference, 0.5);
    assert.equal(r.demographicParityRatio, 0.5);
    assert.equal(r.equalOpportunityDifference, 0.5); // TPR 0.5 vs 1
    assert.equal(r.equalizedOddsDifference, 0.5); // FPR 0.5 vs 1
    assert.equal(r.predictiveParityDifference, 0.25); // PPV 0.5 vs 0.75
    assert.deepEqual(r.undefinedRates, []);
  });

  it('reports undefined rates instead of inventing them', () => {
    const r = fairnessReport([{ group: 'x', label: 0, prediction: 0 }, { group: 'y', label: 1, prediction: 1 }]);
    assert.equal(r.groups[0].truePositiveRate, null);
    assert.ok(r.undefinedRates.includes('x: true positive rate (no positive labels)'));
    assert.equal(r.equalOpportunityDifference, 0);
    const custom = fairnessReport([{ group: 'g', label: 'yes', prediction: 'no' }], 'yes');
    assert.equal(custom.groups[0].fn, 1);
  });
});
