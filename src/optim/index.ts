export * from './optimizer.ts';
export * from './adamw.ts';
export * from './sgd.ts';
export * from './clip.ts';
