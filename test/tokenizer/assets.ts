// Builds the tokenizers of the third-party assets (see test/shared_assets.ts for where the assets are found).
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { asset, readAssetJson, readAssetText } from '../shared_assets.ts';

export { asset, assetsDir, readAssetJson, readAssetText, repoRoot, SKIP_NO_ASSETS } from '../shared_assets.ts';

type Obj = Record<string, unknown>;
const cache = new Map<string, Tokenizer>();

function once(key: string, make: () => Tokenizer): Tokenizer {
  let t = cache.get(key);
  if (!t) {
    t = make();
    cache.set(key, t);
  }
  return t;
}

/** Raw tokenizer.json of Phi-3-mini: the Llama-2 32000-token SentencePiece BPE vocabulary plus Phi-3 chat tokens. */
export function phi3Json(): Obj {
  return readAssetJson('tokenizers', 'ortx', 'phi-3-mini', 'tokenizer.json') as Obj;
}

/** Phi-3-mini as shipped (adds no BOS). */
export function phi3(): Tokenizer {
  return once('phi3', () =>
    Tokenizer.fromFiles({
      tokenizerJson: phi3Json(),
      tokenizerConfig: readAssetJson('tokenizers', 'ortx', 'phi-3-mini', 'tokenizer_config.json'),
      source: asset('tokenizers', 'ortx', 'phi-3-mini', 'tokenizer.json'),
    }),
  );
}

/**
 * A Llama-2 tokenizer derived from Phi-3-mini's file: same vocabulary, merges, normalizer and decoder; only the
 * three Llama-2 added tokens (<unk>, <s>, </s>, none stripping whitespace) and Llama-2's post-processor, which
 * puts BOS in front. No Llama-2 tokenizer.json is among the assets; the README's cross-check table records
 * that this derivation reproduces llama.cpp's llama-spm and transformers.js's llama-tokenizer ids.
 */
export function llama2(): Tokenizer {
  return once('llama2', () => {
    const j = phi3Json();
    const added = [
      { id: 0, content: '<unk>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 1, content: '<s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
      { id: 2, content: '</s>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ];
    const post = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    };
    return Tokenizer.fromFiles({
      tokenizerJson: { ...j, added_tokens: added, post_processor: post },
      tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', pad_token: null, add_bos_token: true, clean_up_tokenization_spaces: false, legacy: true },
      source: 'llama2 (derived from phi-3-mini/tokenizer.json)',
    });
  });
}

export function gpt2(): Tokenizer {
  return once('gpt2', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'gpt2-gpt-neox-tests', 'tokenizer.json'),
      tokenizerConfig: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' },
      source: asset('tokenizers', 'gpt2-gpt-neox-tests', 'tokenizer.json'),
    }),
  );
}

export function bertUncased(): Tokenizer {
  return once('bert', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'bert-daulet', 'bert-base-uncased.tokenizer.json'),
      tokenizerConfig: { do_lower_case: true, unk_token: '[UNK]', sep_token: '[SEP]', pad_token: '[PAD]', cls_token: '[CLS]', mask_token: '[MASK]' },
      source: asset('tokenizers', 'bert-daulet', 'bert-base-uncased.tokenizer.json'),
    }),
  );
}

export function neox20b(): Tokenizer {
  return once('neox', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'gpt-neox-20b-rwkv', '20B_tokenizer.json'),
      tokenizerConfig: { bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>' },
      source: asset('tokenizers', 'gpt-neox-20b-rwkv', '20B_tokenizer.json'),
    }),
  );
}

export function falcon(): Tokenizer {
  return once('falcon', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'ortx', 'falcon-tokenizer', 'tokenizer.json'),
      tokenizerConfig: { eos_token: '<|endoftext|>' },
      source: asset('tokenizers', 'ortx', 'falcon-tokenizer', 'tokenizer.json'),
    }),
  );
}

export function roberta(): Tokenizer {
  return once('roberta', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'ortx', 'tokenizer', 'roberta-base', 'tokenizer.json'),
      tokenizerConfig: { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', sep_token: '</s>', cls_token: '<s>', pad_token: '<pad>', mask_token: '<mask>' },
      source: asset('tokenizers', 'ortx', 'tokenizer', 'roberta-base', 'tokenizer.json'),
    }),
  );
}

export function t5(): Tokenizer {
  return once('t5', () =>
    Tokenizer.fromFiles({
      tokenizerJson: readAssetJson('tokenizers', 'ortx', 'tokenizer', 't5-small', 'tokenizer.json'),
      tokenizerConfig: readAssetJson('tokenizers', 'ortx', 'tokenizer', 't5-small', 'tokenizer_config.json'),
      source: asset('tokenizers', 'ortx', 'tokenizer', 't5-small', 'tokenizer.json'),
    }),
  );
}

/**
 * Llama-3 (3.1/3.2 vocabulary) assembled from Ollama's encoder.json + vocab.bpe: byte-level BPE with
 * ignore_merges and the Llama-3 split regex (taken from the assets' mini_llama tokenizer.json), the 256 added
 * tokens from llama3-daulet/tokenizer_config.json, and a post-processor that puts <|begin_of_text|> in front.
 */
export function llama3(): Tokenizer {
  return once('llama3', () => {
    const vocab = readAssetJson('tokenizers', 'ollama', 'llama3.2_encoder.json');
    const merges = readAssetText('tokenizers', 'ollama', 'llama3.2_vocab.bpe')
      .split('\n')
      .filter((l) => l.length > 0 && !l.startsWith('#version'));
    const mini = readAssetJson('tokenizers', 'ollama', 'mini_llama.tokenizer.json') as Obj;
    const cfg = readAssetJson('tokenizers', 'llama3-daulet', 'tokenizer_config.json') as Obj;
    const dec = cfg.added_tokens_decoder as Record<string, Obj>;
    const added = Object.entries(dec).map(([id, t]) => ({ ...t, id: Number(id) }));
    const post = {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '<|begin_of_text|>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<|begin_of_text|>': { id: '<|begin_of_text|>', ids: [128000], tokens: ['<|begin_of_text|>'] } },
    };
    const json = {
      version: '1.0',
      added_tokens: added,
      normalizer: null,
      pre_tokenizer: mini.pre_tokenizer,
      post_processor: post,
      decoder: mini.decoder,
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab, merges },
    };
    const { added_tokens_decoder: _drop, ...rest } = cfg;
    return Tokenizer.fromFiles({ tokenizerJson: json, tokenizerConfig: rest, source: 'llama3 (assembled from ollama llama3.2_encoder.json + llama3.2_vocab.bpe)' });
  });
}
