// Hugging Face <-> GGUF conversion (src/models/gguf_convert.ts): the shared llama.cpp tiny Llama 2 GGUF imports and
// matches its transformers reference; alignkit -> GGUF -> alignkit preserves logits; the exported layout is what
// llama.cpp writes (checked byte for byte against the llama.cpp-made file); tokenizer.json rebuilt from a GGUF
// vocabulary tokenizes llama.cpp's own test inputs like llama.cpp's reference; errors name the file.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { openGguf, saveGguf } from '../../src/io/index.ts';
import { initModel, loadModel, type PretrainedLM } from '../../src/models/index.ts';
import { GGUF_TOKEN_TYPE, exportGguf, ggufToHfFolder, ggufTokenizerJson, importGguf } from '../../src/models/gguf_convert.ts';
import { Tokenizer, loadTokenizer } from '../../src/tokenizer/index.ts';
import { SKIP_NO_ASSETS, assetsDir } from '../tokenizer/assets.ts';
import { fixtureDir, greedyCached, greedyFull, ids2d, maxDelta, tokenLogprobs } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-gguf-convert-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const SHARED = assetsDir ? join(assetsDir, 'models', 'ollama-llama2-tiny-random') : null;
const SHARED_GGUF = SHARED ? join(SHARED, 'llama-2-tiny-random.gguf') : null;
const haveShared = SHARED_GGUF !== null && existsSync(SHARED_GGUF);

function allLogits(model: PretrainedLM, ids: number[][]): number[] {
  return T.noGrad(() => T.tidy(() => model.logits(model.forward(ids2d(ids))).toArray()));
}

function withModels<R>(models: PretrainedLM[], fn: () => R): R {
  try {
    return fn();
  } finally {
    for (const m of models) m.dispose();
  }
}

const IDS = [[1, 5, 9, 17, 33, 2, 60, 7, 100, 3, 11]];

interface SharedRef {
  cases: { input_ids: number[]; decoded_input: string; next_token_nll: number[]; top5_per_position: { ids: number[]; logits: number[] }[]; greedy_16_new_tokens: number[] }[];
}

test('shared llama.cpp tiny Llama 2 GGUF: import matches the transformers reference (NLL, top-5, greedy)', (t) => {
  if (!haveShared || !SHARED || !SHARED_GGUF) return t.skip(SKIP_NO_ASSETS);
  const ref = JSON.parse(readFileSync(join(SHARED, 'reference_outputs.hf-transformers.json'), 'utf8')) as SharedRef;
  const model = importGguf(SHARED_GGUF, { trainable: false });
  withModels([model], () => {
    assert.equal(model.config.rope?.theta, 10000);
    let worst = 0;
    for (const [ci, c] of ref.cases.entries()) {
      const nll = tokenLogprobs(model, [c.input_ids])[0].map((x) => -x);
      const d = maxDelta(nll, c.next_token_nll);
      assert.ok(d <= 1e-4, `case ${ci}: NLL differs by ${d}`);
      worst = Math.max(worst, d);
      const logits = allLogits(model, [c.input_ids]);
      const V = model.config.vocabSize;
      c.top5_per_position.forEach((top, pos) => {
        const row = logits.slice(pos * V, pos * V + V);
        const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]).slice(0, 5);
        assert.deepEqual(order, top.ids, `case ${ci} position ${pos}: top-5 ids`);
      });
      const mask = [c.input_ids.map(() => 1)];
      assert.deepEqual(greedyCached(model, [c.input_ids], mask, 16)[0], c.greedy_16_new_tokens, `case ${ci}: greedy (KV cache)`);
      assert.deepEqual(greedyFull(model, [c.input_ids], mask, 16)[0], c.greedy_16_new_tokens, `case ${ci}: greedy (full)`);
    }
    t.diagnostic(`GGUF import vs transformers: max |Δ NLL| = ${worst.toExponential(2)} over ${ref.cases.length} cases`);
  });
});

test('shared GGUF -> HF folder -> GGUF reproduces llama.cpp\'s file: same metadata, tensor names/types/shapes and bytes', (t) => {
  if (!haveShared || !SHARED || !SHARED_GGUF) return t.skip(SKIP_NO_ASSETS);
  const ref = JSON.parse(readFileSync(join(SHARED, 'reference_outputs.hf-transformers.json'), 'utf8')) as SharedRef;
  const dir = join(tmp, 'shared_hf');
  const res = ggufToHfFolder(SHARED_GGUF, dir);
  assert.ok(res.tokenizer);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) assert.ok(res.files.includes(f), f);
  // The rebuilt tokenizer.json encodes the reference prompts to the reference ids (BOS added).
  const tok = loadTokenizer(dir);
  for (const c of ref.cases) assert.deepEqual(tok.encode(c.decoded_input.replace(/^<s> /, '')), c.input_ids, c.decoded_input);
  // The folder loads with loadModel and agrees with the HF export shipped next to the GGUF (F16 weights, exact).
  const a = loadModel(dir, { trainable: false });
  const b = loadModel(join(SHARED, 'hf_export'), { trainable: false });
  withModels([a, b], () => {
    assert.deepEqual(allLogits(a, [ref.cases[0].input_ids]), allLogits(b, [ref.cases[0].input_ids]));
    const out = join(tmp, 'shared_again.gguf');
    exportGguf(a, dir, out, { type: 'F16', name: 'LLaMA v2' });
    const src = openGguf(SHARED_GGUF);
    const mine = openGguf(out);
    try {
      assert.deepEqual(mine.tensors.map((x) => [x.name, x.type, x.shape.join('x')]).sort(), src.tensors.map((x) => [x.name, x.type, x.shape.join('x')]).sort());
      for (const ti of src.tensors) assert.deepEqual(mine.readBytes(ti.name), src.readBytes(ti.name), `tensor ${ti.name} bytes`);
      // Every key llama.cpp wrote is present with the same value (scores excepted: the source file's are all 0,
      // ours encode the merge order; rope.freq_base is added explicitly).
      for (const [k, v] of src.metadata) {
        if (k === 'tokenizer.ggml.scores') continue;
        assert.ok(mine.has(k), `missing metadata ${k}`);
        const mv = mine.metadata.get(k);
        assert.equal(mv?.type, v.type, `${k} type`);
        assert.deepEqual(mine.get(k), src.get(k), `${k} value`);
      }
      assert.equal(mine.getNumber('llama.rope.freq_base'), 10000);
      assert.equal(mine.get('tokenizer.ggml.add_bos_token'), true);
    } finally {
      src.close();
      mine.close();
    }
  });
});

function vocabAgreement(v: string, tok: Tokenizer): { ok: number; total: number; bad: string[] } {
  const inputs = readFileSync(`${v}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  const outputs = readFileSync(`${v}.out`, 'utf8').split('\n');
  let ok = 0;
  const bad: string[] = [];
  inputs.forEach((text, i) => {
    const want = (outputs[i] ?? '').trim() === '' ? [] : outputs[i].trim().split(/\s+/).map(Number);
    const got = tok.encode(text, { addSpecialTokens: false });
    if (JSON.stringify(got) === JSON.stringify(want)) ok++;
    else bad.push(JSON.stringify(text).slice(0, 40));
  });
  return { ok, total: inputs.length, bad };
}

function vocabTokenizer(v: string): { tok: Tokenizer; dir: string } {
  const g = openGguf(v);
  let tj: ReturnType<typeof ggufTokenizerJson>;
  try {
    tj = ggufTokenizerJson(g);
  } finally {
    g.close();
  }
  assert.ok(tj);
  const dir = mkdtempSync(join(tmp, 'vocab-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tj.tokenizer));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tj.config));
  return { tok: Tokenizer.fromFiles({ tokenizerJson: tj.tokenizer, tokenizerConfig: tj.config, source: v }), dir };
}

for (const vocab of ['llama-spm', 'gpt-2'] as const) {
  test(`llama.cpp ${vocab} vocabulary -> tokenizer.json tokenizes llama.cpp's test inputs like its reference`, (t) => {
    const v = assetsDir ? join(assetsDir, 'llamacpp', 'vocab', `ggml-vocab-${vocab}.gguf`) : null;
    if (!v || !existsSync(v)) return t.skip(SKIP_NO_ASSETS);
    const { tok, dir } = vocabTokenizer(v);
    const r = vocabAgreement(v, tok);
    t.diagnostic(`${vocab}: ${r.ok}/${r.total} llama.cpp test inputs tokenized identically${r.bad.length ? `; differing: ${r.bad.join(' | ')}` : ''}`);
    assert.equal(r.ok, r.total, `only ${r.ok}/${r.total} agree: ${r.bad.join(' | ')}`);
    // And back: a model exported with this tokenizer.json carries the same vocabulary as llama.cpp's file.
    const src = openGguf(v);
    const V = src.getStringArray('tokenizer.ggml.tokens').length;
    const m = initModel({ arch: 'llama', hidden: 8, layers: 1, heads: 2, vocab: V, intermediate: 8 });
    const out = join(tmp, `vocab-${vocab}.gguf`);
    withModels([m], () => exportGguf(m, dir, out, { type: 'F16', pre: vocab === 'gpt-2' ? 'gpt-2' : undefined }));
    const mine = openGguf(out);
    try {
      const keys = ['tokenizer.ggml.model', 'tokenizer.ggml.tokens', 'tokenizer.ggml.token_type', 'tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id'];
      if (vocab === 'gpt-2') keys.push('tokenizer.ggml.merges', 'tokenizer.ggml.pre');
      else keys.push('tokenizer.ggml.unknown_token_id');
      for (const k of keys) assert.deepEqual(mine.get(k), src.get(k), k);
    } finally {
      mine.close();
      src.close();
    }
  });
}

test('initModel llama (GQA, untied head) -> GGUF F32 -> import: logits within 1e-6; F16: weights are exactly the f16 rounding', () => {
  const model = initModel({ arch: 'llama', hidden: 48, layers: 2, heads: 6, kvHeads: 2, vocab: 97, intermediate: 40, tieWordEmbeddings: false, ropeTheta: 5000, seed: 3, bosTokenId: 1, eosTokenId: 2 });
  const f32 = join(tmp, 'init_f32.gguf');
  const f16 = join(tmp, 'init_f16.gguf');
  const ex = exportGguf(model, null, f32, { type: 'F32' });
  assert.equal(ex.tokenizerModel, 'no_vocab');
  exportGguf(model, null, f16, { type: 'F16' });
  const a = importGguf(f32, { trainable: false });
  const b = importGguf(f16, { trainable: false });
  withModels([model, a, b], () => {
    assert.equal(a.config.numKvHeads, 2);
    assert.equal(a.config.tieWordEmbeddings, false);
    assert.equal(a.config.rope?.theta, 5000);
    const d = maxDelta(allLogits(a, IDS.map((r) => r.map((x) => x % 97))), allLogits(model, IDS.map((r) => r.map((x) => x % 97))));
    assert.ok(d <= 1e-6, `F32 round trip logits differ by ${d}`);
    const orig = model.namedParameters();
    for (const [name, p] of b.namedParameters()) {
      const o = orig.get(name);
      assert.ok(o, name);
      const isNorm = /norm\.weight$/.test(name);
      const want = isNorm ? o.toArray() : T.noGrad(() => T.tidy(() => T.cast(T.cast(o, 'float16'), 'float32').toArray()));
      assert.deepEqual(p.toArray(), want, `${name} after F16`);
    }
    const d16 = maxDelta(allLogits(b, [[1, 2, 3, 4, 5]]), allLogits(model, [[1, 2, 3, 4, 5]]));
    assert.ok(d16 <= 1e-3, `F16 logits differ by ${d16}`);
  });
});

for (const name of ['llama', 'mistral', 'qwen2', 'qwen3'] as const) {
  test(`fixture ${name} -> GGUF F32 -> import preserves logits`, () => {
    const model = loadModel(fixtureDir(name), { trainable: false });
    const out = join(tmp, `${name}.gguf`);
    const tokDir = existsSync(join(fixtureDir(name), 'tokenizer.json')) ? fixtureDir(name) : null;
    const ex = exportGguf(model, tokDir, out, { type: 'F32' });
    assert.equal(ex.architecture, name === 'mistral' ? 'llama' : name);
    const back = importGguf(out, { trainable: false });
    withModels([model, back], () => {
      const ids = [[1, 5, 9, 17, 33, 2, 60, 7, 100, 3, 11].map((x) => x % model.config.vocabSize)];
      const d = maxDelta(allLogits(back, ids), allLogits(model, ids));
      assert.ok(d <= 1e-6, `${name}: logits differ by ${d}`);
      assert.equal(back.config.numKvHeads, model.config.numKvHeads);
      assert.equal(back.config.tieWordEmbeddings, model.config.tieWordEmbeddings);
      assert.equal(back.config.rope?.theta, model.config.rope?.theta);
      assert.equal(back.config.normEps, Math.fround(model.config.normEps));
    });
  });
}

test('exported layout: llama.cpp key names, tensor names, shapes, F32 norms; tokenizer metadata from tokenizer.json', () => {
  const model = loadModel(fixtureDir('llama'), { trainable: false });
  const out = join(tmp, 'layout.gguf');
  withModels([model], () => exportGguf(model, fixtureDir('llama'), out, { type: 'F16' }));
  const g = openGguf(out);
  try {
    const c = JSON.parse(readFileSync(join(fixtureDir('llama'), 'config.json'), 'utf8')) as Record<string, number>;
    assert.equal(g.version, 3);
    assert.equal(g.getString('general.architecture'), 'llama');
    const expect: [string, number][] = [
      ['llama.context_length', c.max_position_embeddings], ['llama.embedding_length', c.hidden_size], ['llama.block_count', c.num_hidden_layers],
      ['llama.feed_forward_length', c.intermediate_size], ['llama.attention.head_count', c.num_attention_heads],
      ['llama.attention.head_count_kv', c.num_key_value_heads], ['llama.rope.dimension_count', c.hidden_size / c.num_attention_heads],
      ['llama.rope.freq_base', 10000],
    ];
    for (const [k, v] of expect) assert.equal(g.getNumber(k), v, k);
    assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon')?.type, 'float32');
    const C = c.hidden_size;
    const I = c.intermediate_size;
    const D = C / c.num_attention_heads;
    const V = c.vocab_size;
    const want = new Map<string, [string, number[]]>([['token_embd.weight', ['F16', [V, C]]], ['output_norm.weight', ['F32', [C]]], ['output.weight', ['F16', [V, C]]]]);
    for (let i = 0; i < c.num_hidden_layers; i++) {
      want.set(`blk.${i}.attn_norm.weight`, ['F32', [C]]);
      want.set(`blk.${i}.attn_q.weight`, ['F16', [c.num_attention_heads * D, C]]);
      want.set(`blk.${i}.attn_k.weight`, ['F16', [c.num_key_value_heads * D, C]]);
      want.set(`blk.${i}.attn_v.weight`, ['F16', [c.num_key_value_heads * D, C]]);
      want.set(`blk.${i}.attn_output.weight`, ['F16', [C, c.num_attention_heads * D]]);
      want.set(`blk.${i}.ffn_norm.weight`, ['F32', [C]]);
      want.set(`blk.${i}.ffn_gate.weight`, ['F16', [I, C]]);
      want.set(`blk.${i}.ffn_up.weight`, ['F16', [I, C]]);
      want.set(`blk.${i}.ffn_down.weight`, ['F16', [C, I]]);
    }
    assert.equal(g.tensors.length, want.size);
    for (const ti of g.tensors) {
      const w = want.get(ti.name);
      assert.ok(w, `unexpected tensor ${ti.name}`);
      assert.equal(ti.type, w[0], ti.name);
      assert.deepEqual([...ti.ne], [...w[1]].reverse(), `${ti.name} ne (GGUF order)`);
    }
    // Tokenizer: a Metaspace BPE -> 'llama'; special tokens are CONTROL, <unk> UNKNOWN; ids from tokenizer_config.
    assert.equal(g.getString('tokenizer.ggml.model'), 'llama');
    const toks = g.getStringArray('tokenizer.ggml.tokens');
    assert.equal(toks.length, V);
    const types = g.get('tokenizer.ggml.token_type');
    assert.ok(types instanceof Int32Array);
    assert.deepEqual(Array.from(types.slice(0, 5)), [GGUF_TOKEN_TYPE.CONTROL, GGUF_TOKEN_TYPE.CONTROL, GGUF_TOKEN_TYPE.CONTROL, GGUF_TOKEN_TYPE.UNKNOWN, GGUF_TOKEN_TYPE.NORMAL]);
    assert.equal(g.getNumber('tokenizer.ggml.bos_token_id'), toks.indexOf('<s>'));
    assert.equal(g.getNumber('tokenizer.ggml.eos_token_id'), toks.indexOf('</s>'));
    assert.equal(g.getNumber('tokenizer.ggml.unknown_token_id'), toks.indexOf('<unk>'));
    assert.equal(g.getNumber('tokenizer.ggml.padding_token_id'), toks.indexOf('<pad>'));
    assert.equal(g.get('tokenizer.ggml.add_bos_token'), false);
    const scores = g.get('tokenizer.ggml.scores');
    assert.ok(scores instanceof Float32Array && scores.length === V);
  } finally {
    g.close();
  }
  // The vocabulary converts back to a tokenizer.json that encodes like the original.
  const hf = join(tmp, 'layout_hf');
  ggufToHfFolder(out, hf);
  const orig = loadTokenizer(fixtureDir('llama'));
  const back = loadTokenizer(hf);
  for (const s of ['the cat sat on a mat', 'hello there', 'zebra quartz'])
    assert.deepEqual(back.encode(s, { addSpecialTokens: false }), orig.encode(s, { addSpecialTokens: false }), s);
});

function assertOneLine(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.ok(!e.message.includes('\n'), `multi-line: ${e.message}`);
    assert.ok(e.message.includes(file), `does not name ${file}: ${e.message}`);
    assert.match(e.message, re);
    return true;
  });
}

test('errors: unsupported architecture (export and import) and unsupported quantisation name the file, in one line', () => {
  const gpt2 = initModel({ arch: 'gpt2', hidden: 16, layers: 1, heads: 2, vocab: 32 });
  const gOut = join(tmp, 'gpt2.gguf');
  withModels([gpt2], () => assertOneLine(() => exportGguf(gpt2, null, gOut), gOut, /gpt2.*not supported/));
  assert.ok(!existsSync(gOut));

  const falcon = join(tmp, 'falcon.gguf');
  saveGguf(falcon, { metadata: { 'general.architecture': { type: 'string', value: 'falcon' } }, tensors: [] });
  assertOneLine(() => importGguf(falcon), falcon, /architecture 'falcon' is not supported/);

  // A K-quant tensor: export a model whose rows are 256 wide, then relabel token_embd (F16) as Q4_K (its data
  // needs fewer bytes than the F16 data, so the file stays self-consistent).
  const m = initModel({ arch: 'llama', hidden: 256, layers: 1, heads: 4, vocab: 8, intermediate: 16 });
  const qf = join(tmp, 'q4k.gguf');
  withModels([m], () => exportGguf(m, null, qf, { type: 'F16' }));
  const buf = readFileSync(qf);
  const at = buf.indexOf(Buffer.from('token_embd.weight'));
  assert.ok(at > 0);
  const typeAt = at + 'token_embd.weight'.length + 4 + 8 * 2;
  assert.equal(buf.readUInt32LE(typeAt), 1);
  buf.writeUInt32LE(12, typeAt);
  writeFileSync(qf, buf);
  assertOneLine(() => importGguf(qf), qf, /token_embd\.weight Q4_K/);
});

test('Q8_0 tensors are dequantised on import (d * q per 32-block) and the HF folder stores them as float32', () => {
  const m = initModel({ arch: 'llama', hidden: 64, layers: 1, heads: 2, vocab: 8, intermediate: 16, seed: 5 });
  const file = join(tmp, 'q8.gguf');
  withModels([m], () => exportGguf(m, null, file, { type: 'F16' }));
  const g = openGguf(file);
  const info = g.tensorInfo('token_embd.weight');
  g.close();
  // Replace token_embd (F16, 8 x 64) by Q8_0 blocks: d = 1/64 * (block + 1), q = (i * 7 + block) % 255 - 127.
  const buf = readFileSync(file);
  const n = 8 * 64;
  const want = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const d = (b + 1) / 64; // exactly representable in f16
    const half = new Uint16Array(1);
    T.noGrad(() => T.tidy(() => half.set(T.cast(T.tensor([d]), 'float16').data as Uint16Array)));
    buf.writeUInt16LE(half[0], info.byteOffset + b * 34);
    for (let i = 0; i < 32; i++) {
      const q = ((i * 7 + b) % 255) - 127;
      buf.writeInt8(q, info.byteOffset + b * 34 + 2 + i);
      want[b * 32 + i] = Math.fround(d * q);
    }
  }
  const at = buf.indexOf(Buffer.from('token_embd.weight'));
  buf.writeUInt32LE(8, at + 'token_embd.weight'.length + 4 + 16); // ggml type 8 = Q8_0
  writeFileSync(file, buf);
  const back = importGguf(file, { trainable: false });
  withModels([back], () => {
    const e = back.namedParameters().get('model.embed_tokens.weight');
    assert.ok(e);
    assert.deepEqual(Array.from(e.toArray()), Array.from(want));
  });
  const dir = join(tmp, 'q8_hf');
  const res = ggufToHfFolder(file, dir);
  assert.equal(res.tokenizer, false);
  const reloaded = loadModel(dir, { trainable: false });
  withModels([reloaded], () => assert.deepEqual(Array.from(reloaded.namedParameters().get('model.embed_tokens.weight')?.toArray() ?? []), Array.from(want)));
});

test('tied head and head_dim != hidden/heads: no output.weight, key_length/value_length written, logits preserved', () => {
  const m = initModel({ arch: 'llama', hidden: 32, layers: 2, heads: 4, kvHeads: 1, headDim: 12, vocab: 50, intermediate: 24, tieWordEmbeddings: true, seed: 9 });
  const file = join(tmp, 'tied.gguf');
  const ex = exportGguf(m, null, file, { type: 'F32' });
  assert.ok(!ex.tensors.some((x) => x.name === 'output.weight'));
  const g = openGguf(file);
  try {
    assert.equal(g.getNumber('llama.attention.key_length'), 12);
    assert.equal(g.getNumber('llama.attention.value_length'), 12);
    assert.equal(g.getNumber('llama.rope.dimension_count'), 12);
    assert.deepEqual([...g.tensorInfo('blk.0.attn_q.weight').shape], [48, 32]);
    assert.deepEqual([...g.tensorInfo('blk.0.attn_k.weight').shape], [12, 32]);
  } finally {
    g.close();
  }
  const back = importGguf(file, { trainable: false });
  withModels([m, back], () => {
    assert.equal(back.config.tieWordEmbeddings, true);
    assert.equal(back.config.headDim, 12);
    const ids = [[3, 1, 4, 1, 5, 9, 2, 6]];
    const d = maxDelta(allLogits(back, ids), allLogits(m, ids));
    assert.ok(d <= 1e-6, `logits differ by ${d}`);
  });
});
