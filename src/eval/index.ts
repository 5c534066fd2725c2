// Evaluation metrics whose numbers equal the reference tools': sacreBLEU 2.6.0 (BLEU, chrF/chrF++, TER,
// bootstrap and paired tests), Google's rouge-score (ROUGE-N/L/Lsum), NLTK 3.10 (BLEU with smoothing 0-7,
// chrF, GLEU, METEOR, Porter stemmer), SQuAD's evaluation script (EM/F1), scikit-learn's conventions for
// classification, and statistics checked against published values. See docs/eval.md.
export * from './text.ts';
export * from './tokenizers.ts';
export * from './corpus_metric.ts';
export * from './bleu.ts';
export * from './chrf.ts';
export * from './ter.ts';
export * from './nltk_bleu.ts';
export * from './porter.ts';
export * from './rouge.ts';
export * from './wordnet.ts';
export * from './meteor.ts';
export * from './squad.ts';
export * from './classification.ts';
export * from './fairness.ts';
export * from './stats.ts';
export * from './significance.ts';
export * from './numpy_random.ts';
export * from './io.ts';
export * from './report.ts';
export * from './bertscore_rescale.ts';
export * from './sandbox.ts';
export * from './passatk.ts';
