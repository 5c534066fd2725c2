export * from './errors.ts';
export * from './source.ts';
export * from './formats.ts';
export * from './sft_tokenize.ts';
export * from './packing.ts';
export * from './collate.ts';
export * from './loader.ts';
export * from './sft_dataset.ts';
