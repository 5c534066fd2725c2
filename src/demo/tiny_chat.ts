// A tiny chat model for demos and tests, made on the spot (nothing binary is shipped): a byte-level tokenizer
// (GPT-2's byte-to-unicode alphabet, no merges: one token per UTF-8 byte, so any text round-trips) with ChatML
// special tokens and chat template, and a randomly initialised Llama-style model sized to it. Training it with
// SFT on data/sft/ exercises the real loading, templating, masking and saving code paths end to end.

import fs from 'node:fs';
import path from 'node:path';
import { writeAtomically } from '../io/file.ts';
import { initModel } from '../models/init.ts';

/** GPT-2's reversible byte -> printable-unicode map (bytes that are printable map to themselves). */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = keep.includes(b) ? String.fromCodePoint(b) : String.fromCodePoint(256 + extra++);
  return out;
}

export const TINY_CHAT_SPECIAL = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'] as const;

/** ChatML, as Qwen/SmolLM2 use it: every turn is <|im_start|>role\ncontent<|im_end|>\n. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** tokenizer.json of the byte-level tokenizer: ids 0..255 are bytes, then the special tokens. */
export function byteLevelTokenizerJson(): Record<string, unknown> {
  const vocab: Record<string, number> = {};
  byteToUnicode().forEach((ch, b) => (vocab[ch] = b));
  const added = TINY_CHAT_SPECIAL.map((content, i) => {
    vocab[content] = 256 + i;
    return { id: 256 + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: [] },
  };
}

export interface TinyChatModelOptions {
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediate?: number;
  seed?: number;
  arch?: 'llama' | 'gpt2' | 'qwen2';
}

/** Writes a tiny chat model folder (config, weights, tokenizer, chat template) into `dir`. */
export function writeTinyChatModel(dir: string, o: TinyChatModelOptions = {}): string {
  fs.mkdirSync(dir, { recursive: true });
  const vocab = 256 + TINY_CHAT_SPECIAL.length;
  const eos = 256 + TINY_CHAT_SPECIAL.indexOf('<|im_end|>');
  const pad = 256 + TINY_CHAT_SPECIAL.indexOf('<|endoftext|>');
  const tokenizerConfig = {
    bos_token: null,
    eos_token: '<|im_end|>',
    pad_token: '<|endoftext|>',
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    model_max_length: 2048,
    tokenizer_class: 'PreTrainedTokenizerFast',
    clean_up_tokenization_spaces: false,
  };
  const text = (v: unknown) => (f: { write(b: Uint8Array): void }) => f.write(new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`));
  writeAtomically('tokenizer', path.join(dir, 'tokenizer.json'), text(byteLevelTokenizerJson()));
  writeAtomically('tokenizer config', path.join(dir, 'tokenizer_config.json'), text(tokenizerConfig));
  const model = initModel({
    arch: o.arch ?? 'llama',
    vocab,
    hidden: o.hidden ?? 64,
    layers: o.layers ?? 2,
    heads: o.heads ?? 4,
    kvHeads: o.arch === 'gpt2' ? undefined : (o.kvHeads ?? 2),
    intermediate: o.intermediate ?? 4 * (o.hidden ?? 64),
    maxPositions: 512,
    seed: o.seed ?? 0,
    eosTokenId: eos,
    padTokenId: pad,
    tieWordEmbeddings: true,
    dir,
  });
  model.dispose();
  return dir;
}
