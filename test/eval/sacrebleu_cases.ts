// Typed access to the sacreBLEU test vectors in the shared assets (metrics/sacrebleu/sacrebleu_test_cases.json:
// the expected scores hard-coded in sacreBLEU's own tests, recomputed with sacrebleu 2.6.0).
import { assetsDir, readAssetJson } from '../shared_assets.ts';

export interface SacreCase {
  metric: 'bleu' | 'chrf' | 'ter';
  level: 'corpus' | 'sentence' | 'from_stats';
  api?: string;
  hyps?: string[];
  hyp?: string;
  refs?: string[][] | string[];
  kwargs?: Record<string, unknown>;
  expected?: number;
  expected_str?: string;
  expected_fraction?: number;
  expected_counts?: number[];
  expected_totals?: number[];
  'expected_with_default_offset_0.1'?: number;
  expected_with_offset_0?: number;
  tolerance?: number;
  recomputed?: unknown;
  correct?: number[];
  total?: number[];
  sys_len?: number;
  ref_len?: number;
  smooth_value?: number;
  max_ngram_order?: number;
}

export function sacreCases(): SacreCase[] {
  if (assetsDir === null) return [];
  return (readAssetJson('metrics', 'sacrebleu', 'sacrebleu_test_cases.json') as { cases: SacreCase[] }).cases;
}

/** A short label naming a case by its index in the file and what it exercises. */
export function caseLabel(i: number, c: SacreCase): string {
  const kw = c.kwargs ? JSON.stringify(c.kwargs) : '';
  const text = c.hyp ?? (c.hyps ? c.hyps.join(' | ') : '');
  return `case ${i} ${c.metric}/${c.level} ${kw} ${JSON.stringify(text.slice(0, 40))}`;
}
