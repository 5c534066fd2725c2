// Tokenizer: loading and error messages, then agreement with other implementations' expected ids on the real
// tokenizer files among the third-party assets (../shared/assets), long inputs, and character offsets.
//
// Case sets and the tokenizer each one runs on (see test/tokenizer/assets.ts for how they are built):
//   transformers.js TEST_CONFIG tables (ids with specials, tokens, decoded):
//     gpt2: Xenova/gpt2, openai-community/gpt2, tiiuae/falcon-rw-1b (GPT-2 vocabulary) -> gpt2 tokenizer.json
//     llama: Xenova/llama-tokenizer -> Llama-2 derived from phi-3-mini; Xenova/llama3-tokenizer(-new) -> Llama-3
//            assembled from Ollama's encoder.json + vocab.bpe (the old entry adds no BOS, the new one does)
//     bert: Xenova/bert-base-uncased, distilbert: Xenova/distilbert-base-uncased-finetuned-sst-2-english
//            -> bert-base-uncased.tokenizer.json;  falcon: tiiuae/falcon-7b;  roberta: Xenova/all-distilroberta-v1
//            -> roberta-base;  t5: Xenova/t5-small, google-t5/t5-small -> t5-small
//   llama.cpp vocab .inp/.out (no specials): gpt-2, llama-spm (Llama-2), phi-3, bert-bge, falcon, mpt (NeoX-20B),
//     llama-bpe (Llama-3), roberta-bpe (roberta-base)
//   swift-transformers: *_encoded.json for gpt2, llama, bert-uncased, falcon, llama-3.2, t5-base; tokenizer_tests.json
//     for bert-base-uncased (x2), distilgpt2, Llama-2-7b-chat, falcon-7b, t5-base, Llama-3.2-1B.
// Not tested, for want of a tokenizer.json among the assets: the other transformers.js families (albert, bloom,
// clip, deberta, gemma, qwen2, whisper, xlm-roberta, …), llama.cpp command-r / deepseek / qwen2 / starcoder /
// refact / chameleon, swift gemma / distilbert-cased / whisper. For T5, transformers.js lists an unknown piece by
// its text ('生活的真谛是') where we list '<unk>'; its ids match, so token lists are compared only on cases
// without <unk>.
import { after, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as hfTokenizers from '@huggingface/tokenizers';
import { Tokenizer, loadTokenizer } from '../../src/tokenizer/index.ts';
import * as A from './assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;

// ------------------------------------------------------------------------------------------ no assets needed

/** A tiny BPE tokenizer.json (whitespace pre-tokenizer, two merges, three added tokens). */
function toyTokenizerJson(modelType: string | undefined = 'BPE'): Record<string, unknown> {
  return {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<s>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
      { id: 1, content: '</s>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
      { id: 2, content: '<pad>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'Whitespace' },
    post_processor: null,
    decoder: null,
    model: { ...(modelType ? { type: modelType } : {}), vocab: { '<s>': 0, '</s>': 1, '<pad>': 2, a: 3, b: 4, c: 5, ab: 6, abc: 7 }, merges: ['a b', 'ab c'], unk_token: null },
  };
}

describe('loadTokenizer: files and errors', () => {
  const dirs: string[] = [];
  const mk = (files: Record<string, unknown>): string => {
    const d = mkdtempSync(join(tmpdir(), 'alignkit-tok-'));
    dirs.push(d);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), typeof content === 'string' ? content : JSON.stringify(content));
    return d;
  };
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('names the missing path', () => {
    assert.throws(() => loadTokenizer('/nonexistent/model'), /\/nonexistent\/model: no such directory/);
    const noJson = mk({ 'tokenizer_config.json': {} });
    assert.throws(() => loadTokenizer(noJson), new RegExp(`${noJson}/tokenizer\\.json: not found`));
    const noCfg = mk({ 'tokenizer.json': toyTokenizerJson() });
    assert.throws(() => loadTokenizer(noCfg), new RegExp(`${noCfg}/tokenizer_config\\.json: not found`));
    assert.equal(loadTokenizer(noCfg, { requireConfig: false }).vocabSize, 8);
  });

  it('unsupported model types and bad JSON give one-line errors naming the file', () => {
    const foo = mk({ 'tokenizer.json': toyTokenizerJson('Foo'), 'tokenizer_config.json': {} });
    assert.throws(() => loadTokenizer(foo), (e: Error) => /tokenizer\.json: unsupported model type 'Foo'$/.test(e.message) && !e.message.includes('\n'));
    const wl = mk({ 'tokenizer.json': { ...toyTokenizerJson(), model: { type: 'WordLevel', vocab: { a: 0 }, unk_token: 'a' } }, 'tokenizer_config.json': {} });
    assert.throws(() => loadTokenizer(wl), /tokenizer\.json: unsupported model type 'WordLevel'/);
    const bad = mk({ 'tokenizer.json': '{ not json', 'tokenizer_config.json': {} });
    assert.throws(() => loadTokenizer(bad), new RegExp(`${bad}/tokenizer\\.json: invalid JSON`));
    // Old files without "type" are inferred (merges -> BPE).
    const untyped = mk({ 'tokenizer.json': toyTokenizerJson(undefined), 'tokenizer_config.json': {} });
    assert.equal(loadTokenizer(untyped).modelType, 'BPE');
  });

  it('special tokens: strings or {content} objects, special_tokens_map, generation_config; no silent pad', () => {
    const d = mk({
      'tokenizer.json': toyTokenizerJson(),
      'tokenizer_config.json': { bos_token: { __type: 'AddedToken', content: '<s>', lstrip: false }, eos_token: '</s>' },
      'generation_config.json': { eos_token_id: [1, 2] },
    });
    const t = loadTokenizer(d);
    assert.equal(t.bosId, 0);
    assert.equal(t.bosToken, '<s>');
    assert.equal(t.eosId, 1);
    assert.equal(t.padId, null, 'no pad_token: padId must be null, not the EOS id');
    assert.deepEqual(t.stopIds, [1, 2]);
    const d2 = mk({ 'tokenizer.json': toyTokenizerJson(), 'tokenizer_config.json': {}, 'special_tokens_map.json': { pad_token: { content: '<pad>' }, eos_token: '</s>' } });
    const t2 = loadTokenizer(d2);
    assert.equal(t2.padId, 2);
    assert.equal(t2.eosId, 1);
    assert.equal(t2.bosId, null);
  });

  it('encode / decode / tokens / offsets on the toy tokenizer', () => {
    const t = Tokenizer.fromFiles({ tokenizerJson: toyTokenizerJson(), tokenizerConfig: { eos_token: '</s>' } });
    const ids = t.encode('abc ab</s>c');
    assert.deepEqual(t.tokens(ids), ['abc', 'ab', '</s>', 'c']);
    assert.equal(t.decode(ids, { skipSpecialTokens: true }).replace(/ /g, ''), 'abcabc');
    assert.deepEqual(t.encodeWithOffsets('abc ab</s>c').offsets, [[0, 3], [4, 6], [6, 10], [10, 11]]);
    assert.equal(t.decode([]), '');
    assert.throws(() => t.decode([99]), /token id 99 out of range \[0, 8\)/);
    assert.equal(t.idToToken(6), 'ab');
    assert.equal(t.tokenToId('abc'), 7);
    assert.ok(t.isSpecial(1) && !t.isSpecial(3));
  });
});

// ------------------------------------------------------------------------------------------ expected ids

type Case = { text: string; text_pair?: string; tokens: string[]; ids: number[]; decoded: string };

/** [transformers.js family, hub id, tokenizer, whether that tokenizer's post-processor matches the hub one's]. */
const TJS: Array<[string, string, () => Tokenizer, boolean]> = [
  ['gpt2', 'Xenova/gpt2', A.gpt2, true],
  ['gpt2', 'openai-community/gpt2', A.gpt2, true],
  ['falcon', 'tiiuae/falcon-rw-1b', A.gpt2, true],
  ['llama', 'Xenova/llama-tokenizer', A.llama2, true],
  ['llama', 'Xenova/llama3-tokenizer', A.llama3, false],
  ['llama', 'Xenova/llama3-tokenizer-new', A.llama3, true],
  ['bert', 'Xenova/bert-base-uncased', A.bertUncased, true],
  ['distilbert', 'Xenova/distilbert-base-uncased-finetuned-sst-2-english', A.bertUncased, true],
  ['falcon', 'tiiuae/falcon-7b', A.falcon, true],
  ['roberta', 'Xenova/all-distilroberta-v1', A.roberta, true],
  ['t5', 'Xenova/t5-small', A.t5, true],
  ['t5', 'google-t5/t5-small', A.t5, true],
];

describe('transformers.js tokenization cases', { skip }, () => {
  const all = skip ? {} : (A.readAssetJson('tokenizers', 'expected', 'transformersjs_tokenization_cases.json') as Record<string, { TEST_CONFIG: Record<string, Record<string, Case>> }>);
  for (const [family, hub, make, frame] of TJS) {
    it(`${family} ${hub}`, (t: TestContext) => {
      const tok = make();
      const cases = Object.entries(all[family].TEST_CONFIG[hub]);
      let ids = 0;
      let toks = 0;
      let tokCases = 0;
      let dec = 0;
      for (const [name, c] of cases) {
        const got = c.text_pair !== undefined ? tok.encode(c.text, { pair: c.text_pair }) : tok.encode(c.text, { addSpecialTokens: frame });
        assert.deepEqual(got, c.ids, `${hub} ${name}: ids`);
        ids++;
        if (!c.ids.includes(tok.unkId ?? -1) && c.text_pair === undefined) {
          tokCases++;
          assert.deepEqual(tok.tokens(tok.encode(c.text, { addSpecialTokens: false })), c.tokens, `${hub} ${name}: tokens`);
          toks++;
        }
        assert.equal(tok.decode(c.ids), c.decoded, `${hub} ${name}: decoded`);
        dec++;
      }
      t.diagnostic(`${hub}: ids ${ids}/${cases.length}, tokens ${toks}/${tokCases}, decoded ${dec}/${cases.length}`);
    });
  }
});

describe('llama.cpp vocab cases (.inp/.out, no special tokens)', { skip }, () => {
  const pairs: Array<[string, () => Tokenizer]> = [
    ['gpt-2', A.gpt2],
    ['llama-spm', A.llama2],
    ['phi-3', A.phi3],
    ['bert-bge', A.bertUncased],
    ['falcon', A.falcon],
    ['mpt', A.neox20b],
    ['llama-bpe', A.llama3],
    ['roberta-bpe', A.roberta],
  ];
  for (const [vocab, make] of pairs) {
    it(`${vocab}`, (t: TestContext) => {
      const base = A.asset('llamacpp', 'vocab', `ggml-vocab-${vocab}.gguf`);
      const inputs = readFileSync(`${base}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
      if (inputs[inputs.length - 1] === '') inputs.pop();
      const lines = readFileSync(`${base}.out`, 'utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      assert.equal(inputs.length, lines.length);
      const tok = make();
      inputs.forEach((text, i) => {
        const want = lines[i].trim() === '' ? [] : lines[i].trim().split(/\s+/).map(Number);
        assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), want, `${vocab} case ${i}: ${JSON.stringify(text)}`);
      });
      t.diagnostic(`${vocab}: ${inputs.length}/${inputs.length}`);
    });
  }
});

describe('swift-transformers cases', { skip }, () => {
  it('long encoded samples: ids (with specials), BPE tokens, decoded text', (t: TestContext) => {
    const files: Array<[string, () => Tokenizer]> = [
      ['gpt2_encoded_tokens.json', A.gpt2],
      ['llama_encoded.json', A.llama2],
      ['bert_uncased_encoded.json', A.bertUncased],
      ['falcon_encoded.json', A.falcon],
      ['llama_3.2_encoded.json', A.llama3],
      ['t5_base_encoded.json', A.t5],
    ];
    for (const [f, make] of files) {
      const d = A.readAssetJson('tokenizers', 'swift-transformers', f) as { text: string; bpe_tokens: string[]; token_ids: number[]; decoded_text: string };
      const tok = make();
      assert.deepEqual(tok.encode(d.text), d.token_ids, `${f}: ids`);
      assert.deepEqual(tok.tokens(tok.encode(d.text, { addSpecialTokens: false })), d.bpe_tokens, `${f}: tokens`);
      assert.equal(tok.decode(d.token_ids), d.decoded_text, `${f}: decoded`);
    }
    t.diagnostic(`encoded samples: ${files.length}/${files.length} (ids, tokens and decoded each)`);
  });

  it('edge cases (tokenizer_tests.json): ids, decoded with and without specials', (t: TestContext) => {
    const all = A.readAssetJson('tokenizers', 'swift-transformers', 'tokenizer_tests.json') as Record<string, Array<{ input: string; encoded: { input_ids: number[] }; decoded_with_special: string; decoded_without_special: string }>>;
    const hubs: Array<[string, () => Tokenizer]> = [
      ['bert-base-uncased', A.bertUncased],
      ['google-bert/bert-base-uncased', A.bertUncased],
      ['distilgpt2', A.gpt2],
      ['coreml-projects/Llama-2-7b-chat-coreml', A.llama2],
      ['tiiuae/falcon-7b', A.falcon],
      ['t5-base', A.t5],
      ['pcuenq/Llama-3.2-1B-Instruct-tokenizer', A.llama3],
    ];
    for (const [hub, make] of hubs) {
      const tok = make();
      for (const c of all[hub]) {
        assert.deepEqual(tok.encode(c.input), c.encoded.input_ids, `${hub} ${JSON.stringify(c.input)}`);
        assert.equal(tok.decode(c.encoded.input_ids), c.decoded_with_special, `${hub} ${JSON.stringify(c.input)} decoded`);
        assert.equal(tok.decode(c.encoded.input_ids, { skipSpecialTokens: true }), c.decoded_without_special, `${hub} ${JSON.stringify(c.input)} decoded w/o specials`);
      }
      t.diagnostic(`${hub}: ${all[hub].length}/${all[hub].length}`);
    }
  });
});

// ------------------------------------------------------------------------------------------ model folders

describe('model folders from the assets', { skip }, () => {
  it('phi-3-mini: tokenizer.json + tokenizer_config.json', () => {
    const t = loadTokenizer(A.asset('tokenizers', 'ortx', 'phi-3-mini'));
    assert.equal(t.bosId, 1);
    assert.equal(t.eosId, 32000);
    assert.equal(t.padId, 32000); // pad_token is set explicitly to <|endoftext|> in this config
    assert.equal(t.vocabSize, 32011);
    assert.deepEqual(t.encode('Hello world'), [15043, 3186]); // Phi-3's post-processor adds no BOS
  });
  it('t5-small and phi-2 folders', () => {
    const t5 = loadTokenizer(A.asset('tokenizers', 'ortx', 'tokenizer', 't5-small'));
    assert.equal(t5.modelType, 'Unigram');
    assert.equal(t5.eosId, 1);
    assert.equal(t5.padId, 0);
    assert.equal(t5.bosId, null);
    assert.deepEqual(t5.encode('Hello'), [8774, 1]); // T5 appends </s>
    const phi2 = loadTokenizer(A.asset('tokenizers', 'ortx', 'phi-2'));
    assert.equal(phi2.eosId, 50256);
    assert.equal(phi2.padId, null); // pad_token: null in its config; never silently EOS
    assert.deepEqual(phi2.encode('Hello world'), [15496, 995]);
  });
  it('Llama-2 adds BOS, GPT-2 adds nothing', () => {
    assert.deepEqual(A.llama2().encode('Hello'), [1, 15043]);
    assert.deepEqual(A.llama2().encode('Hello', { addSpecialTokens: false }), [15043]);
    assert.deepEqual(A.gpt2().encode('Hello'), [15496]);
  });
});

// ------------------------------------------------------------------------------------------ long inputs

/** Real multilingual text: all message texts of the OpenAssistant trees among the assets. */
function oasstText(): string {
  const out: string[] = [];
  type Node = { text?: string; replies?: Node[] };
  const walk = (m: Node): void => {
    out.push(m.text ?? '');
    for (const r of m.replies ?? []) walk(r);
  };
  for (const line of readFileSync(A.asset('sft', 'oasst', 'en_100_tree.jsonl'), 'utf8').split('\n')) {
    if (line) walk((JSON.parse(line) as { prompt: Node }).prompt);
  }
  return out.join('\n\n');
}

type RawLib = { Tokenizer: new (j: object, c: object) => { encode(t: string): { ids: number[] } } };

describe('long inputs', { skip }, () => {
  const corpus = skip ? '' : oasstText();
  // The same files, straight through @huggingface/tokenizers in one call: what chunking must reproduce.
  const raw = (json: unknown, cfg: unknown = {}) => new (hfTokenizers as unknown as RawLib).Tokenizer(json as object, cfg as object);

  it('cutting long texts at safe boundaries gives the whole-text ids (byte-level BPE, SentencePiece, WordPiece, Unigram; real text + special tokens)', (t: TestContext) => {
    const cases: Array<[string, () => Tokenizer, () => unknown, number]> = [
      ['gpt2', A.gpt2, () => A.readAssetJson('tokenizers', 'gpt2-gpt-neox-tests', 'tokenizer.json'), 40000],
      ['phi3 (SentencePiece, cut per word)', A.phi3, () => A.phi3Json(), 12000],
      ['bert', A.bertUncased, () => A.readAssetJson('tokenizers', 'bert-daulet', 'bert-base-uncased.tokenizer.json'), 40000],
      ['t5', A.t5, () => A.readAssetJson('tokenizers', 'ortx', 'tokenizer', 't5-small', 'tokenizer.json'), 40000],
    ];
    for (const [name, make, json, len] of cases) {
      const t0 = Date.now();
      const text = `${corpus.slice(50000, 50000 + len)} <|endoftext|> </s> hi <s>  there [SEP] x <|end|>\n\n  y`;
      const mine = make().encode(text);
      assert.ok(mine.length > 2000);
      assert.deepEqual(mine, raw(json()).encode(text).ids, `${name}: chunked encode differs from the whole-text encode`);
      t.diagnostic(`${name}: ${Date.now() - t0} ms`);
    }
    t.diagnostic(`${cases.length} tokenizers agree with the library's one-call result`);
  });

  it('a 2 MB string on the Llama-2 tokenizer: no stack overflow, exact round trip', (t: TestContext) => {
    const para = corpus.slice(0, 40000);
    const big = para.repeat(Math.ceil((2 * 1024 * 1024) / para.length)).slice(0, 2 * 1024 * 1024);
    const tok = A.llama2();
    const t0 = Date.now();
    const ids = tok.encode(big);
    const ms = Date.now() - t0;
    assert.equal(ids[0], 1);
    assert.ok(ids.length > 400000);
    assert.equal(tok.decode(ids.slice(1)), big);
    t.diagnostic(`2 MiB -> ${ids.length} ids in ${ms} ms`);
  });

  it('a 140k-character run without spaces: the library alone overflows (Unigram), the wrapper does not', () => {
    const s = 'a'.repeat(140000);
    const json = A.readAssetJson('tokenizers', 'ortx', 'tokenizer', 't5-small', 'tokenizer.json');
    assert.throws(() => raw(json).encode(s), RangeError);
    const ids = A.t5().encode(s);
    assert.ok(ids.length > 1000);
    assert.equal(ids[ids.length - 1], 1);
  });
});

// ------------------------------------------------------------------------------------------ offsets

describe('encodeWithOffsets', { skip }, () => {
  const texts = [
    'Hello world',
    '  leading spaces, and\ttabs\nand newlines\n\n',
    'Unicode: héllo wörld — 漢字かな 🤗🤗 ½ ℃',
    'Specials: <s> [INST] hi [/INST] ok </s><|endoftext|>',
    "it's 1234567 o'clock... (really?)",
  ];
  const byteLevel: Array<[string, () => Tokenizer]> = [
    ['gpt2', A.gpt2],
    ['llama3', A.llama3],
    ['neox', A.neox20b],
  ];
  it('byte-level BPE: spans tile the text exactly', () => {
    for (const [name, make] of byteLevel) {
      const tok = make();
      for (const text of texts) {
        const { ids, offsets } = tok.encodeWithOffsets(text, { addSpecialTokens: false });
        assert.deepEqual(ids, tok.encode(text, { addSpecialTokens: false }));
        let pos = 0;
        let joined = '';
        for (const [a, b] of offsets) {
          assert.ok(a <= b && b <= text.length, `${name}: span [${a}, ${b})`);
          if (a >= pos) joined += text.slice(a, b); // a multi-byte character split over tokens repeats its span
          pos = Math.max(pos, b);
        }
        assert.equal(joined, text, `${name}: ${JSON.stringify(text)}`);
      }
    }
  });
  it('SentencePiece (Llama-2) and WordPiece (BERT): each span holds its token', () => {
    const llama = A.llama2();
    for (const text of texts) {
      const { ids, offsets } = llama.encodeWithOffsets(text);
      assert.deepEqual(offsets[0], [0, 0]); // BOS from the post-processor
      ids.forEach((id, k) => {
        const tok = llama.idToToken(id) ?? '';
        if (k === 0 || /^<0x/.test(tok)) return;
        const [a, b] = offsets[k];
        const surface = tok.replace(/\u2581/g, ' ');
        assert.equal(text.slice(a, b).replace(/^ /, ''), surface.replace(/^ /, ''), `llama ${JSON.stringify(text)} token ${k}`);
      });
    }
    const bert = A.bertUncased();
    const text = 'Héllo, WORLD! unaffable [SEP] 漢字';
    const { ids, offsets } = bert.encodeWithOffsets(text);
    const pieces = ids.map((id, k) => [bert.idToToken(id), text.slice(...offsets[k])]);
    assert.deepEqual(pieces, [
      ['[CLS]', ''], ['hello', 'Héllo'], [',', ','], ['world', 'WORLD'], ['!', '!'], ['una', 'una'], ['##ffa', 'ffa'], ['##ble', 'ble'], ['[SEP]', '[SEP]'], ['漢', '漢'], ['[UNK]', '字'], ['[SEP]', ''],
    ]);
  });
  it('long texts: offsets of the chunked encoding are consistent', () => {
    const tok = A.phi3();
    const text = oasstText().slice(0, 20000);
    const { ids, offsets } = tok.encodeWithOffsets(text);
    assert.deepEqual(ids, tok.encode(text));
    for (let k = 1; k < offsets.length; k++) assert.ok(offsets[k][0] >= offsets[k - 1][0]);
    assert.equal(offsets[offsets.length - 1][1], text.length);
  });
});

// Keep the listing of swift/llama.cpp files honest: every .out the tests use exists.
describe('asset inventory', { skip }, () => {
  it('llama.cpp vocab pairs used above are present', () => {
    const files = readdirSync(A.asset('llamacpp', 'vocab'));
    for (const v of ['gpt-2', 'llama-spm', 'phi-3', 'bert-bge', 'falcon', 'mpt', 'llama-bpe', 'roberta-bpe']) {
      assert.ok(files.includes(`ggml-vocab-${v}.gguf.out`), v);
    }
  });
});
