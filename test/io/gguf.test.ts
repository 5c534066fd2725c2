// GGUF reader / writer: the real tiny llama GGUF (checked against its HF export after undoing llama.cpp's q/k
// row permutation), llama.cpp's vocab-only files, gguf-py-written fixtures (every metadata type, quantised
// tensors with gguf-py's own dequantisation as the expected values), round trips, and corrupt files.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError, openGguf, openSafetensors, permuteQkForGguf, saveGguf, unpermuteQkFromGguf,
  type GgufFile, type GgufValueInput,
} from '../../src/io/index.ts';
import { jsBackend64 } from '../../src/backend/index.ts';
import { ShapeError, cast, empty, intTensor, tensor, type Tensor } from '../../src/tensor/index.ts';
import { randArray } from '../util.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
// ../shared/assets next to the repository (ALIGNKIT_ASSETS overrides; a worktree one level deeper also works)
const assets =
  [process.env.ALIGNKIT_ASSETS, path.join(repoRoot, '..', 'shared', 'assets'), path.join(repoRoot, '..', '..', 'shared', 'assets')].find(
    (p): p is string => !!p && fs.existsSync(p),
  ) ?? path.join(repoRoot, '..', 'shared', 'assets');
const fixtures = path.join(repoRoot, 'test', 'fixtures-io');
const tinyDir = 'models/ollama-llama2-tiny-random';
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-gguf-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let tmpN = 0;
const tmp = (name = 'x.gguf'): string => {
  const d = path.join(tmpRoot, String(tmpN++));
  fs.mkdirSync(d);
  return path.join(d, name);
};

function haveAssets(t: { skip: (msg: string) => void }, ...rel: string[]): boolean {
  for (const r of rel)
    if (!fs.existsSync(path.join(assets, r))) {
      t.skip(`shared assets not present: ${path.join(assets, r)}`);
      return false;
    }
  return true;
}

function withGguf<T>(file: string, fn: (g: GgufFile) => T): T {
  const g = openGguf(file);
  try {
    return fn(g);
  } finally {
    g.close();
  }
}

function throwsNaming(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `message is not one line: ${e.message}`);
    return true;
  });
}

function bitsOf(t: Tensor): number[] {
  return Array.from(new Uint32Array(Float32Array.from(t.data as Float32Array).buffer));
}

// GGUF llama tensor names -> HF names (for the comparison with hf_export)
const HF_NAME: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'blk.0.attn_q.weight': 'model.layers.0.self_attn.q_proj.weight',
  'blk.0.attn_k.weight': 'model.layers.0.self_attn.k_proj.weight',
  'blk.0.attn_v.weight': 'model.layers.0.self_attn.v_proj.weight',
  'blk.0.attn_output.weight': 'model.layers.0.self_attn.o_proj.weight',
  'blk.0.ffn_gate.weight': 'model.layers.0.mlp.gate_proj.weight',
  'blk.0.ffn_up.weight': 'model.layers.0.mlp.up_proj.weight',
  'blk.0.ffn_down.weight': 'model.layers.0.mlp.down_proj.weight',
  'blk.0.attn_norm.weight': 'model.layers.0.input_layernorm.weight',
  'blk.0.ffn_norm.weight': 'model.layers.0.post_attention_layernorm.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

// ------------------------------------------------------------------------------------------- real files
test('the tiny llama GGUF parses: version, metadata, tensor infos', (t) => {
  if (!haveAssets(t, `${tinyDir}/llama-2-tiny-random.gguf`)) return;
  withGguf(path.join(assets, tinyDir, 'llama-2-tiny-random.gguf'), (g) => {
    assert.equal(g.version, 3);
    assert.equal(g.alignment, 32);
    assert.equal(g.dataOffset % 32, 0);
    assert.equal(g.metadata.size, 18);
    assert.equal(g.get('general.architecture'), 'llama');
    assert.equal(g.getString('general.name'), 'LLaMA v2');
    assert.deepEqual(g.metadata.get('llama.embedding_length'), { type: 'uint32', value: 8 });
    assert.equal(g.getNumber('llama.context_length'), 4096);
    assert.equal(g.getNumber('llama.block_count'), 1);
    assert.equal(g.getNumber('llama.feed_forward_length'), 32);
    assert.equal(g.getNumber('llama.attention.head_count'), 2);
    assert.equal(g.getNumber('llama.attention.head_count_kv'), 2);
    assert.equal(g.getNumber('llama.rope.dimension_count'), 4);
    assert.equal(g.metadata.get('llama.attention.layer_norm_rms_epsilon')?.type, 'float32');
    assert.equal(g.getNumber('llama.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
    assert.equal(g.has('llama.rope.freq_base'), false);
    assert.equal(g.getString('tokenizer.ggml.model'), 'llama');
    const tokens = g.getStringArray('tokenizer.ggml.tokens');
    assert.equal(tokens.length, 32000);
    assert.deepEqual(tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
    assert.ok(tokens.includes('▁the'));
    const scores = g.get('tokenizer.ggml.scores');
    assert.ok(scores instanceof Float32Array && scores.length === 32000);
    const types = g.get('tokenizer.ggml.token_type');
    assert.ok(types instanceof Int32Array && types.length === 32000);
    assert.deepEqual(Array.from(types.slice(0, 4)), [2, 3, 3, 6]); // unknown, control, control, byte
    assert.equal(g.getNumber('tokenizer.ggml.bos_token_id'), 1);
    assert.equal(g.getNumber('tokenizer.ggml.eos_token_id'), 2);
    assert.equal(g.getNumber('tokenizer.ggml.unknown_token_id'), 0);
    assert.deepEqual(
      g.tensors.map((x) => [x.name, x.type, x.shape.join('x')]),
      [
        ['token_embd.weight', 'F16', '32000x8'], ['blk.0.attn_q.weight', 'F16', '8x8'], ['blk.0.attn_k.weight', 'F16', '8x8'],
        ['blk.0.attn_v.weight', 'F16', '8x8'], ['blk.0.attn_output.weight', 'F16', '8x8'], ['blk.0.ffn_gate.weight', 'F16', '32x8'],
        ['blk.0.ffn_up.weight', 'F16', '32x8'], ['blk.0.ffn_down.weight', 'F16', '8x32'], ['blk.0.attn_norm.weight', 'F32', '8'],
        ['blk.0.ffn_norm.weight', 'F32', '8'], ['output_norm.weight', 'F32', '8'], ['output.weight', 'F16', '32000x8'],
      ],
    );
    assert.deepEqual(g.tensorInfo('token_embd.weight').ne, [8, 32000]);
    throwsNaming(() => g.getNumber('general.architecture'), 'llama-2-tiny-random.gguf', /'general.architecture' is string, expected a number/);
    throwsNaming(() => g.getString('nope'), 'llama-2-tiny-random.gguf', /metadata key 'nope' is missing/);
    throwsNaming(() => g.load('nope'), 'llama-2-tiny-random.gguf', /no tensor named 'nope'/);
  });
});

test('tiny llama GGUF tensors equal the HF export after undoing the q/k permutation', (t) => {
  if (!haveAssets(t, `${tinyDir}/llama-2-tiny-random.gguf`, `${tinyDir}/hf_export/model.safetensors`)) return;
  const hf = openSafetensors(path.join(assets, tinyDir, 'hf_export', 'model.safetensors'));
  try {
    withGguf(path.join(assets, tinyDir, 'llama-2-tiny-random.gguf'), (g) => {
      const nHead = g.getNumber('llama.attention.head_count');
      const nKv = g.getNumber('llama.attention.head_count_kv');
      for (const info of g.tensors) {
        let w = g.load(info.name);
        const ref = hf.load(HF_NAME[info.name]);
        assert.deepEqual(w.shape, ref.shape, info.name);
        if (info.name.endsWith('attn_q.weight') || info.name.endsWith('attn_k.weight')) {
          // as stored, the rows are in llama.cpp's interleaved order: not equal to HF
          assert.notDeepEqual(bitsOf(w), bitsOf(ref), `${info.name} should be permuted as stored`);
          w = unpermuteQkFromGguf(w, info.name.endsWith('attn_q.weight') ? nHead : nKv);
          // and permuting the HF weight gives the GGUF one back
          assert.deepEqual(bitsOf(permuteQkForGguf(ref, nHead)), bitsOf(g.load(info.name)), `${info.name} permute`);
        }
        assert.deepEqual(bitsOf(w), bitsOf(ref), info.name);
      }
      // raw load keeps the float16 bits
      const raw = g.load('blk.0.attn_v.weight', { as: 'raw' });
      assert.equal(raw.dtype, 'float16');
      assert.deepEqual(bitsOf(cast(raw, 'float32')), bitsOf(hf.load('model.layers.0.self_attn.v_proj.weight')));
    });
  } finally {
    hf.close();
  }
});

test('the writer reproduces the tiny llama GGUF byte for byte', (t) => {
  if (!haveAssets(t, `${tinyDir}/llama-2-tiny-random.gguf`)) return;
  const src = path.join(assets, tinyDir, 'llama-2-tiny-random.gguf');
  const out = tmp();
  withGguf(src, (g) => {
    saveGguf(out, {
      metadata: g.metadata,
      tensors: g.tensors.map((x) => ({ name: x.name, tensor: g.load(x.name, { as: 'raw' }), type: x.type === 'F16' ? 'F16' : 'F32' })),
    });
  });
  assert.ok(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src)) === 0, 'rewritten GGUF differs from the original');
  // and F16 from float32 rounds back to the same bits
  const out2 = tmp();
  withGguf(src, (g) =>
    saveGguf(out2, { metadata: g.metadata, tensors: g.tensors.map((x) => ({ name: x.name, tensor: g.load(x.name), type: x.type === 'F16' ? 'F16' : 'F32' })) }),
  );
  assert.ok(Buffer.compare(fs.readFileSync(out2), fs.readFileSync(src)) === 0);
});

test("llama.cpp's vocab-only GGUFs parse", (t) => {
  const dir = 'llamacpp/vocab';
  if (!haveAssets(t, dir)) return;
  const files = fs.readdirSync(path.join(assets, dir)).filter((f) => f.endsWith('.gguf'));
  assert.ok(files.length >= 8, `only ${files.length} vocab files`);
  const expect: Record<string, [string, number]> = {
    'ggml-vocab-llama-spm.gguf': ['llama', 32000],
    'ggml-vocab-gpt-2.gguf': ['gpt2', 50257],
    'ggml-vocab-bert-bge.gguf': ['bert', 30522],
  };
  for (const f of files) {
    withGguf(path.join(assets, dir, f), (g) => {
      assert.equal(g.version, 3, f);
      assert.equal(g.tensors.length, 0, f);
      const tokens = g.getStringArray('tokenizer.ggml.tokens');
      assert.ok(tokens.length > 1000, f);
      const tt = g.get('tokenizer.ggml.token_type');
      assert.ok(tt instanceof Int32Array && tt.length === tokens.length, f);
      const e = expect[f];
      if (e) {
        assert.equal(g.getString('tokenizer.ggml.model'), e[0], f);
        assert.equal(tokens.length, e[1], f);
      }
      if (g.has('tokenizer.ggml.merges')) assert.ok(g.getStringArray('tokenizer.ggml.merges').every((m) => m.includes(' ')), f);
    });
  }
});

// ------------------------------------------------------------------------------------------- gguf-py fixtures
test('gguf-py file: metadata of every type', () => {
  withGguf(path.join(fixtures, 'ref_quant.gguf'), (g) => {
    const m = g.metadata;
    assert.deepEqual(m.get('general.architecture'), { type: 'string', value: 'llama' });
    assert.deepEqual(m.get('t.u8'), { type: 'uint8', value: 200 });
    assert.deepEqual(m.get('t.i8'), { type: 'int8', value: -100 });
    assert.deepEqual(m.get('t.u16'), { type: 'uint16', value: 60000 });
    assert.deepEqual(m.get('t.i16'), { type: 'int16', value: -30000 });
    assert.deepEqual(m.get('t.u32'), { type: 'uint32', value: 4000000000 });
    assert.deepEqual(m.get('t.i32'), { type: 'int32', value: -2000000000 });
    assert.deepEqual(m.get('t.f32'), { type: 'float32', value: Math.fround(0.1) });
    assert.deepEqual(m.get('t.u64'), { type: 'uint64', value: 2n ** 64n - 1n });
    assert.deepEqual(m.get('t.i64'), { type: 'int64', value: -(2n ** 63n) });
    assert.deepEqual(m.get('t.f64'), { type: 'float64', value: 0.1 });
    assert.deepEqual(m.get('t.bool'), { type: 'bool', value: true });
    assert.deepEqual(m.get('t.str'), { type: 'string', value: 'héllo ▁wörld\n' });
    assert.deepEqual(m.get('t.arr_i32'), { type: 'array', itemType: 'int32', value: new Int32Array([1, -2, 3]) });
    assert.deepEqual(m.get('t.arr_f32'), { type: 'array', itemType: 'float32', value: new Float32Array([0.5, -1.25]) });
    assert.deepEqual(m.get('t.arr_u8'), { type: 'array', itemType: 'uint8', value: new Uint8Array([0, 255]) });
    assert.deepEqual(m.get('t.arr_u64'), { type: 'array', itemType: 'uint64', value: new BigUint64Array([0n, 2n ** 64n - 1n]) });
    assert.deepEqual(m.get('t.arr_bool'), { type: 'array', itemType: 'bool', value: [true, false, true] });
    assert.deepEqual(m.get('t.arr_str'), { type: 'array', itemType: 'string', value: ['a', '', 'ü▁'] });
    assert.deepEqual(m.get('t.arr_nested'), {
      type: 'array', itemType: 'array',
      value: [{ type: 'array', itemType: 'int32', value: new Int32Array([1, 2]) }, { type: 'array', itemType: 'int32', value: new Int32Array([3]) }],
    });
    assert.throws(() => g.getNumber('t.u64'), /does not fit a JavaScript number exactly/);
  });
});

test('gguf-py file: F32/F16/BF16/F64/I8/I32 and Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 dequantise exactly as gguf-py does', () => {
  const exp = openSafetensors(path.join(fixtures, 'ref_quant.expected.safetensors'));
  try {
    withGguf(path.join(fixtures, 'ref_quant.gguf'), (g) => {
      const types = Object.fromEntries(g.tensors.map((x) => [x.name, x.type]));
      assert.deepEqual(types, {
        f32: 'F32', f16: 'F16', bf16: 'BF16', q8_0: 'Q8_0', q4_0: 'Q4_0', q4_1: 'Q4_1', q5_0: 'Q5_0', q5_1: 'Q5_1', i32: 'I32', i8: 'I8', f64: 'F64', cube: 'F32',
        'blk.0.attn_q.weight': 'Q5_K',
      });
      assert.deepEqual(g.tensorInfo('cube').shape, [2, 3, 4]);
      assert.deepEqual(g.tensorInfo('cube').ne, [4, 3, 2]);
      assert.deepEqual(g.tensorInfo('q8_0').shape, [3, 64]);
      for (const x of g.tensors) {
        if (x.type === 'Q5_K') continue;
        const got = g.load(x.name);
        const want = exp.load(x.name);
        assert.deepEqual(got.shape, want.shape, x.name);
        assert.deepEqual(bitsOf(got), bitsOf(want), x.name);
        // float64 storage gets the same float32 values
        assert.deepEqual(g.load(x.name, { on: jsBackend64 }).toArray().map(Math.fround), want.toArray(), `${x.name} on js64`);
      }
      assert.equal(g.load('bf16', { as: 'raw' }).dtype, 'bfloat16');
      assert.deepEqual(g.load('i32', { as: 'raw' }).toArray(), [1, -2, 2147483647]);
      assert.deepEqual(g.load('i8', { as: 'raw' }).toArray(), [-128, 5, 7, 127]);
      assert.deepEqual(g.load('f64', { as: 'raw' }).toArray(), [1.5, -1e300]);
      throwsNaming(() => g.load('q8_0', { as: 'raw' }), 'ref_quant.gguf', /tensor q8_0 is Q8_0, which has no raw form/);
      throwsNaming(() => g.load('blk.0.attn_q.weight'), 'ref_quant.gguf', /: unsupported quantisation Q5_K in tensor blk\.0\.attn_q\.weight$/);
      assert.equal(g.readBytes('blk.0.attn_q.weight').length, 176);
    });
  } finally {
    exp.close();
  }
});

test('general.alignment is honoured (gguf-py file with alignment 64), and the writer matches gguf-py', () => {
  const src = path.join(fixtures, 'ref_align64.gguf');
  const out = tmp();
  withGguf(src, (g) => {
    assert.equal(g.alignment, 64);
    assert.equal(g.dataOffset % 64, 0);
    assert.equal(g.tensorInfo('b').byteOffset % 64, 0);
    assert.deepEqual(g.load('a').toArray(), [0, 1, 2, 3, 4]);
    assert.deepEqual(g.load('b').shape, [2, 3]);
    assert.deepEqual(g.load('b').toArray(), [0, 1, 2, 3, 4, 5]);
    saveGguf(out, { metadata: g.metadata, tensors: g.tensors.map((x) => ({ name: x.name, tensor: g.load(x.name), type: 'F32' })) });
  });
  assert.ok(Buffer.compare(fs.readFileSync(out), fs.readFileSync(src)) === 0, 'differs from the gguf-py file');
});

// ------------------------------------------------------------------------------------------- writer round trip
const everyType: Record<string, GgufValueInput> = {
  'general.architecture': { type: 'string', value: 'llama' },
  'a.u8': { type: 'uint8', value: 255 },
  'a.i8': { type: 'int8', value: -128 },
  'a.u16': { type: 'uint16', value: 65535 },
  'a.i16': { type: 'int16', value: -32768 },
  'a.u32': { type: 'uint32', value: 4294967295 },
  'a.i32': { type: 'int32', value: -2147483648 },
  'a.f32': { type: 'float32', value: Math.fround(-1.5e-7) },
  'a.f64': { type: 'float64', value: Math.PI },
  'a.u64': { type: 'uint64', value: 2n ** 64n - 1n },
  'a.i64': { type: 'int64', value: -(2n ** 63n) },
  'a.bool': { type: 'bool', value: false },
  'a.str': { type: 'string', value: 'ünïcødé ▁ \u0000 "quoted"' },
  'a.empty': { type: 'string', value: '' },
  'b.u8': { type: 'array', itemType: 'uint8', value: new Uint8Array([0, 7, 255]) },
  'b.i8': { type: 'array', itemType: 'int8', value: new Int8Array([-128, 127]) },
  'b.u16': { type: 'array', itemType: 'uint16', value: new Uint16Array([65535]) },
  'b.i16': { type: 'array', itemType: 'int16', value: new Int16Array([-32768, 1]) },
  'b.u32': { type: 'array', itemType: 'uint32', value: new Uint32Array([4294967295, 0]) },
  'b.i32': { type: 'array', itemType: 'int32', value: new Int32Array([-1, 2, -3]) },
  'b.f32': { type: 'array', itemType: 'float32', value: new Float32Array([0.25, NaN, -Infinity]) },
  'b.f64': { type: 'array', itemType: 'float64', value: new Float64Array([1e-300, -0]) },
  'b.u64': { type: 'array', itemType: 'uint64', value: new BigUint64Array([2n ** 63n, 1n]) },
  'b.i64': { type: 'array', itemType: 'int64', value: new BigInt64Array([-1n, 2n ** 62n]) },
  'b.bool': { type: 'array', itemType: 'bool', value: [true, false] },
  'b.str': { type: 'array', itemType: 'string', value: ['x', '', 'ü'] },
  'b.empty': { type: 'array', itemType: 'int32', value: new Int32Array(0) },
  'b.nested': {
    type: 'array', itemType: 'array',
    value: [{ type: 'array', itemType: 'string', value: ['p', 'q'] }, { type: 'array', itemType: 'array', value: [{ type: 'array', itemType: 'float64', value: new Float64Array([2]) }] }],
  },
};

test('GGUF round trip: metadata of every type and F32/F16/BF16 tensors read back identical', () => {
  const a = tensor(randArray(5 * 7, 1), [5, 7]);
  const h = cast(tensor(randArray(3 * 32, 2), [3, 32]), 'float16');
  const b = cast(tensor(randArray(4 * 2 * 3, 3), [4, 2, 3]), 'bfloat16');
  const v = tensor([1, -2, 3.5]);
  const out = tmp();
  saveGguf(out, {
    metadata: everyType,
    tensors: [
      { name: 'a', tensor: a, type: 'F32' },
      { name: 'a_as_f16', tensor: a, type: 'F16' },
      { name: 'h', tensor: h, type: 'F16' },
      { name: 'b', tensor: b, type: 'BF16' },
      { name: 'v', tensor: v, type: 'F32' },
      { name: 'h_as_f32', tensor: h, type: 'F32' },
    ],
  });
  withGguf(out, (g) => {
    assert.equal(g.version, 3);
    assert.deepEqual([...g.metadata.keys()], Object.keys(everyType));
    for (const [k, val] of Object.entries(everyType)) assert.deepEqual(g.metadata.get(k), val, k);
    assert.deepEqual(g.tensors.map((x) => [x.name, x.type, x.shape.join('x')]), [
      ['a', 'F32', '5x7'], ['a_as_f16', 'F16', '5x7'], ['h', 'F16', '3x32'], ['b', 'BF16', '4x2x3'], ['v', 'F32', '3'], ['h_as_f32', 'F32', '3x32'],
    ]);
    for (const x of g.tensors) assert.equal(x.byteOffset % 32, 0, x.name);
    assert.deepEqual(bitsOf(g.load('a')), bitsOf(a));
    const u16 = (x: Tensor): number[] => Array.from(x.data as Uint16Array);
    assert.deepEqual(u16(g.load('a_as_f16', { as: 'raw' })), u16(cast(a, 'float16')));
    assert.deepEqual(u16(g.load('h', { as: 'raw' })), u16(h));
    assert.deepEqual(u16(g.load('b', { as: 'raw' })), u16(b));
    assert.deepEqual(g.load('v').toArray(), [1, -2, 3.5]);
    assert.deepEqual(bitsOf(g.load('h_as_f32')), bitsOf(cast(h, 'float32')));
  });
  // metadata given as a Map, numbers for 64-bit values
  const out2 = tmp();
  saveGguf(out2, { metadata: new Map<string, GgufValueInput>([['k', { type: 'uint64', value: 5 }], ['l', { type: 'array', itemType: 'int64', value: [-1, 2] }]]), tensors: [] });
  withGguf(out2, (g) => {
    assert.deepEqual(g.metadata.get('k'), { type: 'uint64', value: 5n });
    assert.deepEqual(g.metadata.get('l'), { type: 'array', itemType: 'int64', value: new BigInt64Array([-1n, 2n]) });
    assert.equal(g.getNumber('k'), 5);
  });
});

test('q/k permutation helpers invert each other and match the reshape/swapaxes definition', () => {
  for (const [nHead, headDim, inDim] of [[2, 4, 8], [4, 6, 5], [1, 2, 1], [8, 16, 3]]) {
    const rows = nHead * headDim;
    const w = tensor(randArray(rows * inDim, nHead * 100 + headDim), [rows, inDim]);
    const p = permuteQkForGguf(w, nHead);
    assert.deepEqual(p.shape, w.shape);
    assert.deepEqual(unpermuteQkFromGguf(p, nHead).toArray(), w.toArray());
    assert.deepEqual(permuteQkForGguf(unpermuteQkFromGguf(w, nHead), nHead).toArray(), w.toArray());
    // definition: view HF as [nHead, 2, half, in], swap axes 1 and 2
    const half = headDim / 2;
    const src = w.toArray();
    const got = p.toArray();
    for (let h = 0; h < nHead; h++)
      for (let i = 0; i < half; i++)
        for (let j = 0; j < 2; j++)
          for (let c = 0; c < inDim; c++)
            assert.equal(got[((h * half + i) * 2 + j) * inDim + c], src[((h * 2 + j) * half + i) * inDim + c]);
  }
  // biases, integer and 16-bit tensors
  const bias = tensor([0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(permuteQkForGguf(bias, 2).toArray(), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.deepEqual(permuteQkForGguf(intTensor([0, 1, 2, 3]), 1).toArray(), [0, 2, 1, 3]);
  const hb = cast(tensor([0, 1, 2, 3]), 'bfloat16');
  assert.deepEqual(cast(unpermuteQkFromGguf(hb, 1), 'float32').toArray(), [0, 2, 1, 3]);
  // grouped-query k: n_kv_head heads
  const k = tensor(randArray(2 * 4 * 3, 9), [8, 3]);
  assert.deepEqual(unpermuteQkFromGguf(permuteQkForGguf(k, 2), 2).toArray(), k.toArray());
  assert.throws(() => permuteQkForGguf(tensor(randArray(6 * 2, 1), [6, 2]), 2), ShapeError);
  assert.throws(() => permuteQkForGguf(empty([4, 2, 2]), 1), /expected a \[out, in\] weight/);
});

// ------------------------------------------------------------------------------------------- corrupt inputs
function smallGguf(): { file: string; buf: Buffer } {
  const file = tmp('small.gguf');
  saveGguf(file, {
    metadata: { 'general.architecture': { type: 'string', value: 'llama' }, 'k.aa': { type: 'uint32', value: 7 }, 'k.ab': { type: 'bool', value: true } },
    tensors: [{ name: 'weight.one', tensor: tensor(randArray(64, 4), [2, 32]), type: 'F32' }, { name: 'weight.two', tensor: tensor([1, 2, 3]), type: 'F32' }],
  });
  return { file, buf: fs.readFileSync(file) };
}

function variant(buf: Buffer, edit: (b: Buffer) => Buffer | void): string {
  const b = Buffer.from(buf);
  const r = edit(b) ?? b;
  const f = tmp('bad.gguf');
  fs.writeFileSync(f, r);
  return f;
}

test('corrupt GGUF files fail with one-line errors naming the file', () => {
  const { file, buf } = smallGguf();
  withGguf(file, (g) => assert.deepEqual(g.load('weight.two').toArray(), [1, 2, 3]));
  const at = (s: string): number => buf.indexOf(Buffer.from(s));
  const tensorInfo = (name: string): number => at(name) + name.length; // n_dims follows the name

  // GGUF v2 has the same layout as v3
  let f = variant(buf, (b) => void b.writeUInt32LE(2, 4));
  withGguf(f, (g) => {
    assert.equal(g.version, 2);
    assert.deepEqual(g.load('weight.two').toArray(), [1, 2, 3]);
  });
  // after close(), loads fail naming the file
  const closed = openGguf(file);
  closed.close();
  closed.close();
  throwsNaming(() => closed.load('weight.two'), file, /after close\(\)/);

  f = variant(buf, (b) => b.subarray(0, 10));
  throwsNaming(() => openGguf(f), f, /too short for a GGUF header/);
  f = variant(buf, (b) => b.subarray(0, at('k.ab') + 2));
  throwsNaming(() => openGguf(f), f, /truncated file: key of metadata entry 2 at byte \d+ claims 4 bytes, only 2 left/);
  f = variant(buf, (b) => b.subarray(0, at('weight.two') - 4));
  throwsNaming(() => openGguf(f), f, /truncated file/);
  f = variant(buf, (b) => b.subarray(0, b.length - 24));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.two' \(F32 \[3\]\) data \[\d+, \d+\) is past the end of the file/);
  f = variant(buf, (b) => void b.write('GGUX', 0));
  throwsNaming(() => openGguf(f), f, /bad magic 'GGUX', expected 'GGUF'/);
  f = variant(buf, (b) => void b.writeUInt32LE(1, 4));
  throwsNaming(() => openGguf(f), f, /GGUF version 1 is not supported/);
  f = variant(buf, (b) => void b.writeUInt32BE(3, 4));
  throwsNaming(() => openGguf(f), f, /big-endian GGUF files are not supported/);
  f = variant(buf, (b) => void b.writeUInt32LE(9, 4));
  throwsNaming(() => openGguf(f), f, /unsupported GGUF version 9/);
  f = variant(buf, (b) => void b.writeBigUInt64LE(2n ** 40n, 8));
  throwsNaming(() => openGguf(f), f, /tensor count 1099511627776 is absurd/);
  f = variant(buf, (b) => void b.writeBigUInt64LE(2n ** 63n, 16));
  throwsNaming(() => openGguf(f), f, /metadata count is 9223372036854775808, absurdly large/);
  f = variant(buf, (b) => void b.writeUInt32LE(99, at('k.aa') + 4));
  throwsNaming(() => openGguf(f), f, /metadata 'k.aa' has unknown value type 99/);
  f = variant(buf, (b) => void b.writeUInt8(2, at('k.ab') + 8));
  throwsNaming(() => openGguf(f), f, /metadata 'k.ab' is a bool with byte value 2/);
  f = variant(buf, (b) => void b.write('k.aa', at('k.ab')));
  throwsNaming(() => openGguf(f), f, /duplicate metadata key 'k.aa'/);
  f = variant(buf, (b) => void b.writeBigUInt64LE(2n ** 50n, at('general.architecture') + 'general.architecture'.length + 4));
  throwsNaming(() => openGguf(f), f, /metadata 'general.architecture' at byte \d+ claims 1125899906842624 bytes/);
  f = variant(buf, (b) => void b.write('weight.one', at('weight.two')));
  throwsNaming(() => openGguf(f), f, /duplicate tensor name 'weight.one'/);
  f = variant(buf, (b) => void b.writeUInt32LE(5, tensorInfo('weight.one')));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.one' has 5 dimensions \(at most 4\)/);
  const typeAt = tensorInfo('weight.one') + 4 + 2 * 8;
  f = variant(buf, (b) => void b.writeUInt32LE(99, typeAt));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.one' has unknown ggml type 99/);
  f = variant(buf, (b) => void b.writeUInt32LE(8, typeAt)); // Q8_0 needs rows of 32: ok; 2 blocks of 34 bytes fit in 256
  withGguf(f, (g) => assert.equal(g.tensorInfo('weight.one').type, 'Q8_0'));
  f = variant(buf, (b) => void b.writeUInt32LE(12, typeAt)); // Q4_K: rows of 256
  throwsNaming(() => openGguf(f), f, /row length 32 is not a multiple of the Q4_K block size 256/);
  f = variant(buf, (b) => void b.writeBigUInt64LE(4n, typeAt + 4));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.one' data offset 4 is not a multiple of the alignment 32/);
  f = variant(buf, (b) => void b.writeBigUInt64LE(224n, typeAt + 4));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.one' \(F32 \[2,32\]\) data \[\d+, \d+\) is past the end of the file/);
  const offsetTwo = tensorInfo('weight.two') + 4 + 8 + 4;
  f = variant(buf, (b) => void b.writeBigUInt64LE(0n, offsetTwo));
  throwsNaming(() => openGguf(f), f, /tensor 'weight.two' data overlaps tensor 'weight.one'/);
  throwsNaming(() => openGguf(path.join(tmpRoot, 'missing.gguf')), 'missing.gguf', /file not found/);
  throwsNaming(() => openGguf(path.join(fixtures, 'ref_writer.safetensors')), 'ref_writer.safetensors', /bad magic/);
});

test('bad general.alignment values are rejected', () => {
  const mk = (v: GgufValueInput): string => {
    const f = tmp();
    saveGguf(f, { metadata: { 'general.alignmenX': v }, tensors: [] });
    const b = fs.readFileSync(f);
    b.write('general.alignment', b.indexOf('general.alignmenX'));
    fs.writeFileSync(f, b);
    return f;
  };
  let f = mk({ type: 'uint32', value: 48 });
  throwsNaming(() => openGguf(f), f, /general.alignment 48 is not a power of two/);
  f = mk({ type: 'uint64', value: 64n });
  throwsNaming(() => openGguf(f), f, /general.alignment has type uint64, expected uint32/);
  f = mk({ type: 'uint32', value: 128 });
  withGguf(f, (g) => assert.equal(g.alignment, 128));
});

test('the GGUF writer validates its input and is atomic', () => {
  const out = tmp('model.gguf');
  const dir = path.dirname(out);
  fs.writeFileSync(out, 'OLD');
  const w = tensor([1, 2]);
  const bad: [SaveArg, RegExp][] = [
    [{ metadata: { 'a.x': { type: 'uint8', value: 256 } }, tensors: [] }, /metadata 'a.x' = 256 is not a uint8/],
    [{ metadata: { 'a.x': { type: 'int32', value: 1.5 } }, tensors: [] }, /is not a int32/],
    [{ metadata: { 'a.x': { type: 'uint64', value: -1n } }, tensors: [] }, /out of range for uint64/],
    [{ metadata: { 'a.x': { type: 'array', itemType: 'string', value: ['a', 5 as unknown as string] } }, tensors: [] }, /metadata 'a.x'\[1\] is number, expected a string/],
    [{ metadata: { 'general.alignment': { type: 'uint32', value: 24 } }, tensors: [] }, /general.alignment must be a uint32 power of two/],
    [{ metadata: {}, tensors: [{ name: 'w', tensor: w, type: 'F32' }, { name: 'w', tensor: w, type: 'F16' }] }, /duplicate tensor name 'w'/],
    [{ metadata: {}, tensors: [{ name: 'i', tensor: intTensor([1]), type: 'F32' }] }, /tensor 'i' has dtype int32; only float tensors/],
    [{ metadata: {}, tensors: [{ name: 'w', tensor: w, type: 'Q8_0' as 'F32' }] }, /type 'Q8_0' cannot be written/],
    [{ metadata: {}, tensors: [{ name: 'x'.repeat(64), tensor: w, type: 'F32' }] }, /names must be under 64 bytes/],
    [{ metadata: {}, tensors: [{ name: 'w5', tensor: empty([1, 1, 1, 1, 2]), type: 'F32' }] }, /at most 4 dimensions/],
  ];
  for (const [arg, re] of bad) {
    throwsNaming(() => saveGguf(out, arg), out, re);
    assert.equal(fs.readFileSync(out, 'utf8'), 'OLD');
    assert.deepEqual(fs.readdirSync(dir), ['model.gguf']);
  }
  saveGguf(out, { metadata: {}, tensors: [{ name: 'w', tensor: w, type: 'F32' }] });
  withGguf(out, (g) => assert.deepEqual(g.load('w').toArray(), [1, 2]));
  assert.deepEqual(fs.readdirSync(dir), ['model.gguf']);
});

type SaveArg = Parameters<typeof saveGguf>[1];
