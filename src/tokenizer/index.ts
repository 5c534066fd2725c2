export * from './tokenizer.ts';
export * from './chat_template.ts';
