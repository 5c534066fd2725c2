// Tokenizer training (byte-level BPE, WordPiece, Unigram) and dataset statistics; see docs/tokenizer-training.md.
export { trainTokenizer, saveTrainedTokenizer, resolveSpecialTokens, TOKENIZER_KINDS, type TokenizerKind, type TrainTokenizerOptions, type TrainedTokenizer } from './train.ts';
export { trainBpe, type BpeTrainerOptions, type BpeTrainingResult } from './bpe.ts';
export { trainUnigram, digamma, expectedPieceCounts, type UnigramTrainerOptions, type UnigramTrainingResult } from './unigram.ts';
export { WordCounter, byteLevelAlphabet, toByteLevel, gpt2Pieces, bertNormalize, bertPreTokenize, metaspacePreTokenize, nfkc, type PreTokenizerKind, type BertNormalizerOptions } from './pretokenize.ts';
export { forEachCorpusText, forEachLineBytes, corpusFormatOf, CorpusError, type CorpusOptions, type CorpusFormat, type CorpusSummary } from './corpus.ts';
export { tokenizerStats, formatTokenizerStats, type TokenizerStats, type TokenizerStatsOptions, type FieldStats, type LengthBucket } from './stats.ts';
export { stringifyOrdered, type OrderedJson, type NamedSpecialTokens } from './serialize.ts';
