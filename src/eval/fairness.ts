// Group fairness metrics for a binary classifier, from rows with a group, a true label and a prediction
// (definitions as in fairlearn's metrics and Hardt et al. 2016):
// - selection rate P(ŷ = 1 | group); demographic parity difference = max - min over groups, ratio = min / max;
// - equal opportunity difference: max - min of the true positive rate TP / (TP + FN);
// - equalized odds difference: the larger of the TPR and FPR differences;
// - predictive parity difference: max - min of the positive predictive value TP / (TP + FP).
// A rate whose denominator is 0 for a group is undefined (null) for that group and left out of the
// differences, which the result lists under `undefinedRates`.

export type Value = string | number | boolean;

export interface FairnessRow {
  group: Value;
  label: Value;
  prediction: Value;
}

export interface GroupStats {
  group: string;
  n: number;
  tp: number;
  fp: number;
  tn: number;
  fn: number;
  selectionRate: number;
  accuracy: number;
  truePositiveRate: number | null;
  falsePositiveRate: number | null;
  positivePredictiveValue: number | null;
}

export interface FairnessReport {
  positiveLabel: string;
  groups: GroupStats[];
  demographicParityDifference: number;
  demographicParityRatio: number | null;
  equalOpportunityDifference: number | null;
  equalizedOddsDifference: number | null;
  predictiveParityDifference: number | null;
  /** "group: rate" for every rate that was undefined. */
  undefinedRates: string[];
}

const rate = (a: number, b: number): number | null => (b === 0 ? null : a / b);

function spread(values: (number | null)[]): number | null {
  const v = values.filter((x): x is number => x !== null);
  if (v.length === 0) return null;
  return Math.max(...v) - Math.min(...v);
}

/** `positive`: the value (compared as a string) that means the positive class; default '1'. */
export function fairnessReport(rows: readonly FairnessRow[], positive: Value = 1): FairnessReport {
  if (rows.length === 0) throw new RangeError('fairness: no rows');
  const pos = String(positive);
  const byGroup = new Map<string, { tp: number; fp: number; tn: number; fn: number }>();
  for (const r of rows) {
    const g = String(r.group);
    let c = byGroup.get(g);
    if (!c) byGroup.set(g, (c = { tp: 0, fp: 0, tn: 0, fn: 0 }));
    const y = String(r.label) === pos, p = String(r.prediction) === pos;
    if (y && p) c.tp++;
    else if (!y && p) c.fp++;
    else if (!y && !p) c.tn++;
    else c.fn++;
  }
  const groups = [...byGroup.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([group, c]) => {
      const n = c.tp + c.fp + c.tn + c.fn;
      return {
        group,
        n,
        ...c,
        selectionRate: (c.tp + c.fp) / n,
        accuracy: (c.tp + c.tn) / n,
        truePositiveRate: rate(c.tp, c.tp + c.fn),
        falsePositiveRate: rate(c.fp, c.fp + c.tn),
        positivePredictiveValue: rate(c.tp, c.tp + c.fp),
      };
    });
  const undefinedRates: string[] = [];
  for (const g of groups) {
    if (g.truePositiveRate === null) undefinedRates.push(`${g.group}: true positive rate (no positive labels)`);
    if (g.falsePositiveRate === null) undefinedRates.push(`${g.group}: false positive rate (no negative labels)`);
    if (g.positivePredictiveValue === null) undefinedRates.push(`${g.group}: positive predictive value (no positive predictions)`);
  }
  const sel = groups.map((g) => g.selectionRate);
  const maxSel = Math.max(...sel), minSel = Math.min(...sel);
  const tprDiff = spread(groups.map((g) => g.truePositiveRate));
  const fprDiff = spread(groups.map((g) => g.falsePositiveRate));
  return {
    positiveLabel: pos,
    groups,
    demographicParityDifference: maxSel - minSel,
    demographicParityRatio: maxSel === 0 ? null : minSel / maxSel,
    equalOpportunityDifference: tprDiff,
    equalizedOddsDifference: tprDiff === null && fprDiff === null ? null : Math.max(tprDiff ?? -Infinity, fprDiff ?? -Infinity),
    predictiveParityDifference: spread(groups.map((g) => g.positivePredictiveValue)),
    undefinedRates,
  };
}
