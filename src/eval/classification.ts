// Accuracy, precision, recall and F1 (per class; micro, macro and support-weighted averages) and the confusion
// matrix, with scikit-learn's conventions: the classes are the sorted union of true and predicted labels
// unless given; a ratio with a zero denominator counts as 0 (zero_division=0); the confusion matrix has true
// labels as rows and predicted labels as columns.

export type Label = string | number;

export interface ClassReport {
  label: Label;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true instances. */
  support: number;
}

export interface AveragedScores {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassificationReport {
  accuracy: number;
  n: number;
  labels: Label[];
  perClass: ClassReport[];
  micro: AveragedScores;
  macro: AveragedScores;
  weighted: AveragedScores;
  /** confusion[i][j]: items of true label i predicted as label j. */
  confusion: number[][];
}

export function sortLabels(labels: Iterable<Label>): Label[] {
  const u = [...new Set(labels)];
  const allNumbers = u.every((x) => typeof x === 'number');
  return u.sort((a, b) => (allNumbers ? (a as number) - (b as number) : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
}

const ratio = (a: number, b: number): number => (b === 0 ? 0 : a / b);
const f1Of = (p: number, r: number): number => (p + r === 0 ? 0 : (2 * p * r) / (p + r));

export function confusionMatrix(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): { labels: Label[]; matrix: number[][] } {
  if (yTrue.length !== yPred.length) throw new RangeError(`confusion matrix: ${yTrue.length} true labels but ${yPred.length} predictions`);
  const ls = labels ? [...labels] : sortLabels([...yTrue, ...yPred]);
  const index = new Map(ls.map((l, i) => [l, i]));
  const matrix = ls.map(() => new Array<number>(ls.length).fill(0));
  for (let i = 0; i < yTrue.length; i++) {
    const a = index.get(yTrue[i]), b = index.get(yPred[i]);
    if (a !== undefined && b !== undefined) matrix[a][b]++;
  }
  return { labels: ls, matrix };
}

export function classificationReport(yTrue: readonly Label[], yPred: readonly Label[], labels?: readonly Label[]): ClassificationReport {
  if (yTrue.length === 0) throw new RangeError('classification: no examples');
  const { labels: ls, matrix } = confusionMatrix(yTrue, yPred, labels);
  let correct = 0;
  for (let i = 0; i < yTrue.length; i++) if (yTrue[i] === yPred[i]) correct++;
  let tpSum = 0, predSum = 0, trueSum = 0;
  const perClass = ls.map((label, i) => {
    const tp = matrix[i][i];
    const predicted = matrix.reduce((a, row) => a + row[i], 0);
    const support = matrix[i].reduce((a, b) => a + b, 0);
    tpSum += tp;
    predSum += predicted;
    trueSum += support;
    const precision = ratio(tp, predicted), recall = ratio(tp, support);
    return { label, precision, recall, f1: f1Of(precision, recall), support };
  });
  const microP = ratio(tpSum, predSum), microR = ratio(tpSum, trueSum);
  const k = perClass.length;
  const macro = {
    precision: perClass.reduce((a, c) => a + c.precision, 0) / k,
    recall: perClass.reduce((a, c) => a + c.recall, 0) / k,
    f1: perClass.reduce((a, c) => a + c.f1, 0) / k,
  };
  const totalSupport = perClass.reduce((a, c) => a + c.support, 0);
  const weighted = {
    precision: ratio(perClass.reduce((a, c) => a + c.precision * c.support, 0), totalSupport),
    recall: ratio(perClass.reduce((a, c) => a + c.recall * c.support, 0), totalSupport),
    f1: ratio(perClass.reduce((a, c) => a + c.f1 * c.support, 0), totalSupport),
  };
  return { accuracy: correct / yTrue.length, n: yTrue.length, labels: ls, perClass, micro: { precision: microP, recall: microR, f1: f1Of(microP, microR) }, macro, weighted, confusion: matrix };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** The confusion matrix as a standalone SVG heat map (rows: true labels, columns: predicted). */
export function confusionMatrixSvg(labels: readonly Label[], matrix: readonly (readonly number[])[], title = 'Confusion matrix'): string {
  const k = labels.length;
  const cell = 48, left = 120, top = 70;
  const width = left + k * cell + 20, height = top + k * cell + 60;
  const max = Math.max(1, ...matrix.flat());
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">${escapeXml(title)}</text>`,
    `<text x="${left + (k * cell) / 2}" y="42" text-anchor="middle">predicted</text>`,
    `<text x="16" y="${top + (k * cell) / 2}" text-anchor="middle" transform="rotate(-90 16 ${top + (k * cell) / 2})">true</text>`,
  ];
  labels.forEach((l, i) => {
    parts.push(`<text x="${left + i * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${escapeXml(String(l))}</text>`);
    parts.push(`<text x="${left - 8}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${escapeXml(String(l))}</text>`);
  });
  matrix.forEach((row, i) =>
    row.forEach((v, j) => {
      const shade = Math.round(255 - (200 * v) / max);
      const fill = `rgb(${shade},${shade},255)`;
      parts.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="${fill}" stroke="#888"/>`);
      parts.push(`<text x="${left + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 4}" text-anchor="middle" fill="${shade < 128 ? 'white' : 'black'}">${v}</text>`);
    }),
  );
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
