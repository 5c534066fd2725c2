// safetensors reader / writer: real files from other projects, reference-writer fixtures (test/fixtures-io,
// made by make_fixtures.py with the `safetensors` and `huggingface_hub` packages), round trips, and corrupt
// inputs that must fail with one-line errors naming the file.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  CheckpointError, loadSafetensors, openSafetensors, openSafetensorsFile, saveSafetensors, saveSafetensorsSharded,
  type SafetensorsReader,
} from '../../src/io/index.ts';
import { jsBackend64 } from '../../src/backend/index.ts';
import { cast, empty, intTensor, tensor, transpose, type Tensor } from '../../src/tensor/index.ts';
import { rng } from '../util.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
// ../shared/assets next to the repository (ALIGNKIT_ASSETS overrides; a worktree one level deeper also works)
const assets =
  [process.env.ALIGNKIT_ASSETS, path.join(repoRoot, '..', 'shared', 'assets'), path.join(repoRoot, '..', '..', 'shared', 'assets')].find(
    (p): p is string => !!p && fs.existsSync(p),
  ) ?? path.join(repoRoot, '..', 'shared', 'assets');
const fixtures = path.join(repoRoot, 'test', 'fixtures-io');
const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-st-'));
process.on('exit', () => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let tmpN = 0;
const tmp = (name = 'x.safetensors'): string => {
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

/** float32 bit patterns of a float tensor's values. */
function f32Bits(t: Tensor): number[] {
  return Array.from(new Uint32Array(Float32Array.from(t.data as Float32Array).buffer));
}

function with_<T>(r: SafetensorsReader, fn: (r: SafetensorsReader) => T): T {
  try {
    return fn(r);
  } finally {
    r.close();
  }
}

/** Asserts fn throws a one-line CheckpointError naming `file` and matching `re`. */
function throwsNaming(fn: () => unknown, file: string, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), `message is not one line: ${e.message}`);
    return true;
  });
}

/** A safetensors file from a header object (or raw header text) and data bytes. */
function rawFile(header: unknown, data: Uint8Array | number, file = tmp()): string {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = Buffer.from(text, 'utf8');
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = Buffer.alloc(8 + h.length + d.length);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  out.set(d, 8 + h.length);
  fs.writeFileSync(file, out);
  return file;
}

// ------------------------------------------------------------------------------------------- real files
test('reads the swift-transformers files (I32, F64, 3-D and 4-D F32)', (t) => {
  const dir = 'safetensors/swift-transformers';
  if (!haveAssets(t, dir)) return;
  const p = (n: string): string => path.join(assets, dir, n);
  with_(openSafetensors(p('tensor-1d-int32.safetensors')), (r) => {
    assert.deepEqual(r.tensors.map((x) => [x.name, x.dtype, x.shape]), [['embedding', 'I32', [3]]]);
    const raw = r.load('embedding', { as: 'raw' });
    assert.equal(raw.dtype, 'int32');
    assert.deepEqual(raw.toArray(), [1, 2, 3]);
    assert.deepEqual(r.load('embedding').toArray(), [1, 2, 3]);
  });
  with_(openSafetensors(p('tensor-2d-float64.safetensors')), (r) => {
    const raw = r.load('embedding', { as: 'raw' });
    assert.equal(raw.dtype, 'float64');
    assert.deepEqual(raw.shape, [2, 3]);
    assert.deepEqual(raw.toArray(), [1, 2, 3, 24, 25, 26]);
    assert.deepEqual(r.load('embedding').toArray(), [1, 2, 3, 24, 25, 26]);
  });
  with_(openSafetensors(p('tensor-3d-float32.safetensors')), (r) => {
    const x = r.load('embedding');
    assert.deepEqual(x.shape, [2, 2, 3]);
    assert.deepEqual(x.toArray(), [22, 23, 24, 11, 12, 13, 2, 3, 4, 1, 2, 3]);
  });
  with_(openSafetensors(p('tensor-4d-float32.safetensors')), (r) => {
    const x = r.load('embedding');
    assert.deepEqual(x.shape, [2, 3, 1, 3]);
    assert.deepEqual(x.toArray(), [11, 12, 13, 1, 2, 3, 4, 5, 6, 22, 23, 24, 15, 16, 17, 17, 18, 19]);
  });
});

test('reads the HF-exported tiny llama and rewrites it byte for byte', (t) => {
  const rel = 'models/ollama-llama2-tiny-random/hf_export/model.safetensors';
  if (!haveAssets(t, rel)) return;
  const file = path.join(assets, rel);
  const r = openSafetensors(path.dirname(file)); // a directory resolves to its model.safetensors
  try {
    assert.equal(r.path, file);
    assert.deepEqual({ ...r.metadata }, { format: 'pt' });
    assert.equal(r.tensors.length, 12);
    assert.deepEqual(r.info('model.embed_tokens.weight').shape, [32000, 8]);
    assert.deepEqual(r.info('model.layers.0.mlp.down_proj.weight').shape, [8, 32]);
    assert.ok(r.tensors.every((x) => x.dtype === 'F32'));
    const all: Record<string, Tensor> = {};
    for (const x of r.tensors) all[x.name] = r.load(x.name, { as: 'raw' });
    const out = tmp();
    saveSafetensors(out, all, { metadata: { format: 'pt' } });
    assert.ok(Buffer.compare(fs.readFileSync(out), fs.readFileSync(file)) === 0, 'rewritten file differs from the transformers-written one');
  } finally {
    r.close();
  }
});

// ------------------------------------------------------------------------------------------- reference fixtures
interface MixedExpected {
  [name: string]: { shape: number[]; ints?: string[]; f64?: string[]; f32bits?: number[] };
}

test('every dtype of the reference file loads as float32 and raw, bit-exact', () => {
  const expected = JSON.parse(fs.readFileSync(path.join(fixtures, 'ref_mixed.expected.json'), 'utf8')) as MixedExpected;
  with_(openSafetensors(path.join(fixtures, 'ref_mixed.safetensors')), (r) => {
    assert.deepEqual({ ...r.metadata }, { format: 'pt', note: 'mixed dtypes' });
    const dtypes = Object.fromEntries(r.tensors.map((x) => [x.name, x.dtype]));
    assert.deepEqual(
      { f32: dtypes.f32, bf16: dtypes.bf16, f16: dtypes.f16, f64: dtypes.f64, i64: dtypes.i64, i32: dtypes.i32, i16: dtypes.i16, i8: dtypes.i8, u8: dtypes.u8, u16: dtypes.u16, u32: dtypes.u32, u64: dtypes.u64, bool: dtypes.bool, e4: dtypes.f8_e4m3, e5: dtypes.f8_e5m2 },
      { f32: 'F32', bf16: 'BF16', f16: 'F16', f64: 'F64', i64: 'I64', i32: 'I32', i16: 'I16', i8: 'I8', u8: 'U8', u16: 'U16', u32: 'U32', u64: 'U64', bool: 'BOOL', e4: 'F8_E4M3', e5: 'F8_E5M2' },
    );
    for (const [name, e] of Object.entries(expected)) {
      assert.deepEqual(r.info(name).shape, e.shape, name);
      if (e.f32bits) assert.deepEqual(f32Bits(r.load(name)), e.f32bits, `${name} as float32`);
    }
    // 16- and 8-bit floats against torch's own float32 conversion, stored next to them in the file
    for (const name of ['f16_many', 'bf16_many', 'f8_e4m3', 'f8_e5m2', 'f16', 'bf16']) {
      const got = f32Bits(r.load(name));
      const want = f32Bits(r.load(`expected.${name}`));
      for (let i = 0; i < want.length; i++) {
        const isNaN = (b: number): boolean => (b & 0x7fffffff) > 0x7f800000;
        if (name.startsWith('f8') && isNaN(want[i])) assert.ok(isNaN(got[i]), `${name}[${i}] should be NaN`);
        else assert.equal(got[i], want[i], `${name}[${i}]: 0x${got[i].toString(16)} vs torch 0x${want[i].toString(16)}`);
      }
    }
    // raw forms
    const raw = (name: string): Tensor => r.load(name, { as: 'raw' });
    assert.equal(raw('f16').dtype, 'float16');
    assert.equal(raw('bf16').dtype, 'bfloat16');
    assert.deepEqual(Array.from(raw('f16').data as Uint16Array), Array.from(new Uint16Array(r.readBytes('f16').buffer)));
    assert.deepEqual(Array.from(raw('bf16').data as Uint16Array), Array.from(new Uint16Array(r.readBytes('bf16').buffer)));
    assert.deepEqual(f32Bits(cast(raw('bf16'), 'float32')), expected.bf16.f32bits);
    const i64 = raw('i64');
    assert.equal(i64.dtype, 'int64');
    assert.deepEqual(Array.from(i64.data as BigInt64Array, String), expected.i64.ints);
    const u64 = raw('u64');
    assert.equal(u64.dtype, 'int64');
    assert.deepEqual(Array.from(u64.data as BigInt64Array, String), expected.u64.ints);
    const u32 = raw('u32');
    assert.equal(u32.dtype, 'int64');
    assert.deepEqual(Array.from(u32.data as BigInt64Array, String), expected.u32.ints);
    for (const name of ['i32', 'i16', 'i8', 'u16']) {
      assert.equal(raw(name).dtype, 'int32', name);
      assert.deepEqual(raw(name).toArray().map(String), expected[name].ints, name);
    }
    for (const name of ['u8', 'bool']) {
      assert.equal(raw(name).dtype, 'uint8', name);
      assert.deepEqual(raw(name).toArray().map(String), expected[name].ints!.map((s) => (s === 'True' ? '1' : s === 'False' ? '0' : s)), name);
    }
    const f64 = raw('f64');
    assert.equal(f64.dtype, 'float64');
    assert.deepEqual(f64.toArray(), expected.f64.f64!.map(Number));
    assert.deepEqual(r.load('empty').shape, [0, 4]);
    assert.deepEqual(r.load('scalar').shape, []);
    assert.equal(r.load('scalar').item(), 3.25);
    assert.throws(() => raw('f8_e4m3'), /F8_E4M3, which has no raw tensor form/);
    throwsNaming(() => r.load('nope'), 'ref_mixed.safetensors', /no tensor named 'nope'/);
  });
});

test('float32 load goes into the backend float storage (float64 on js64)', () => {
  with_(openSafetensors(path.join(fixtures, 'ref_mixed.safetensors')), (r) => {
    const a = r.load('f16', { on: jsBackend64 });
    assert.equal(a.dtype, 'float64');
    const b = r.load('bf16', { on: jsBackend64 });
    const expected = r.load('expected.bf16');
    assert.deepEqual(b.toArray(), expected.toArray());
    assert.deepEqual(r.load('f16', { on: jsBackend64 }).toArray().map(Math.fround), r.load('expected.f16').toArray());
  });
});

test('the writer reproduces the reference writer byte for byte (mixed dtypes, unicode names, empty, scalar)', () => {
  const ref = path.join(fixtures, 'ref_writer.safetensors');
  const tensors = with_(openSafetensors(ref), (r) => Object.fromEntries(r.tensors.map((x) => [x.name, r.load(x.name, { as: 'raw' })])));
  assert.deepEqual(
    Object.fromEntries(Object.entries(tensors).map(([k, v]) => [k, v.dtype])),
    { 'a.empty': 'float32', 'b.scalar': 'float32', double: 'float64', 'lm_head.weight': 'float16', mask: 'uint8', 'model.embed': 'bfloat16', 'model.layers.0.w': 'float32', pos: 'int64', 'unicodé.名前': 'float32', 'z.ids': 'int32' },
  );
  const out = tmp();
  const res = saveSafetensors(out, tensors, { metadata: { format: 'pt' } });
  const a = fs.readFileSync(out);
  const b = fs.readFileSync(ref);
  assert.equal(res.bytes, b.length);
  assert.ok(Buffer.compare(a, b) === 0, `differs from the reference writer:\n${a.subarray(8, 400).toString()}\n${b.subarray(8, 400).toString()}`);
});

test('dtype option rounds float32 to bfloat16 / float16 exactly as torch does', () => {
  const r = openSafetensors(path.join(fixtures, 'ref_f32_to_half.safetensors'));
  try {
    const src = r.load('src', { as: 'raw' });
    for (const [dtype, name] of [['bfloat16', 'bf16'], ['float16', 'f16']] as const) {
      const out = tmp();
      saveSafetensors(out, { x: src }, { dtype });
      with_(openSafetensors(out), (w) => {
        assert.equal(w.info('x').dtype, name === 'bf16' ? 'BF16' : 'F16');
        const got = Array.from(new Uint16Array(w.readBytes('x').buffer));
        const want = Array.from(new Uint16Array(r.readBytes(name).buffer));
        // NaN encodings differ between torch's scalar and vectorised paths (0x7fc0 / 0xffff): only NaN-ness counts
        const nan = (h: number): boolean => (name === 'bf16' ? (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0 : (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0);
        for (let i = 0; i < want.length; i++) {
          if (nan(want[i])) assert.ok(nan(got[i]), `${dtype} of element ${i} should be NaN`);
          else assert.equal(got[i], want[i], `${dtype} of element ${i}: 0x${got[i].toString(16)} vs torch 0x${want[i].toString(16)}`);
        }
      });
    }
  } finally {
    r.close();
  }
});

test('HF sharded checkpoint: unified view, values, and the sharded writer matches huggingface_hub', () => {
  const exp = JSON.parse(fs.readFileSync(path.join(fixtures, 'sharded.expected.json'), 'utf8')) as {
    order: string[]; max_shard_size: number; bits: Record<string, number[]>; shapes: Record<string, number[]>;
  };
  const dir = path.join(fixtures, 'sharded');
  const tensors: Record<string, Tensor> = {};
  with_(openSafetensors(dir), (r) => {
    assert.equal(path.basename(r.path), 'model.safetensors.index.json');
    assert.equal(r.files.length, 4);
    assert.equal(r.indexMetadata.total_size, 1328);
    assert.deepEqual({ ...r.metadata }, { format: 'pt' });
    assert.deepEqual(r.tensors.map((x) => x.name), [...exp.order].sort());
    assert.equal(path.basename(r.info('lm_head.weight').file), 'model-00004-of-00004.safetensors');
    for (const name of exp.order) {
      assert.deepEqual(r.info(name).shape, exp.shapes[name]);
      assert.deepEqual(f32Bits(r.load(name)), exp.bits[name], name);
      tensors[name] = r.load(name, { as: 'raw' });
    }
  });
  // Same tensors, same order, same limit: the same files.
  const ordered: Record<string, Tensor> = {};
  for (const name of exp.order) ordered[name] = tensors[name];
  const outDir = path.join(tmpRoot, 'sharded-out');
  const res = saveSafetensorsSharded(outDir, ordered, { maxShardBytes: exp.max_shard_size });
  assert.deepEqual(res.files.map((f) => path.basename(f)), fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).sort());
  assert.equal(res.totalBytes, 1328);
  for (const f of res.files) assert.ok(Buffer.compare(fs.readFileSync(f), fs.readFileSync(path.join(dir, path.basename(f)))) === 0, `${path.basename(f)} differs`);
  assert.deepEqual(JSON.parse(fs.readFileSync(res.index!, 'utf8')), JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8')));
  with_(openSafetensors(res.index!), (r) => assert.deepEqual(f32Bits(r.load('model.norm.weight')), exp.bits['model.norm.weight']));

  // Saving again into the same directory so that everything fits one file: a plain model.safetensors, and
  // the stale shards + index of the previous save are removed.
  const again = saveSafetensorsSharded(outDir, ordered, { maxShardBytes: 1 << 20 });
  assert.equal(again.index, null);
  assert.deepEqual(fs.readdirSync(outDir).sort(), ['model.safetensors']);
  with_(openSafetensors(outDir), (r) => assert.equal(r.tensors.length, 6));
});

test('sharded checkpoint errors: missing shard, tensor missing from its shard, bad index', () => {
  const src = path.join(fixtures, 'sharded');
  const copy = (): string => {
    const d = path.dirname(tmp());
    for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(d, f));
    return d;
  };
  let d = copy();
  fs.unlinkSync(path.join(d, 'model-00003-of-00004.safetensors'));
  throwsNaming(() => openSafetensors(d), 'model.safetensors.index.json', /shard file 'model-00003-of-00004.safetensors' \(holding '[\w.]+' and 2 more tensors\) not found/);

  d = copy();
  const idx = path.join(d, 'model.safetensors.index.json');
  const j = JSON.parse(fs.readFileSync(idx, 'utf8')) as { weight_map: Record<string, string> };
  j.weight_map['lm_head.weight'] = 'model-00001-of-00004.safetensors';
  fs.writeFileSync(idx, JSON.stringify(j));
  throwsNaming(() => openSafetensors(idx), idx, /tensor 'lm_head.weight' is mapped to shard 'model-00001-of-00004.safetensors', but that file does not contain it/);

  j.weight_map['lm_head.weight'] = '../evil.safetensors';
  fs.writeFileSync(idx, JSON.stringify(j));
  throwsNaming(() => openSafetensors(idx), idx, /not a file inside the checkpoint directory/);

  fs.writeFileSync(idx, '{"weight_map": {"a": "x.safetensors",}}');
  throwsNaming(() => openSafetensors(idx), idx, /index is not valid JSON/);
  fs.writeFileSync(idx, '{"metadata": {}}');
  throwsNaming(() => openSafetensors(idx), idx, /"weight_map" is missing/);
  throwsNaming(() => openSafetensors(path.join(d, 'nothere.index.json')), 'nothere.index.json', /file not found/);
  const empty = path.dirname(tmp());
  throwsNaming(() => openSafetensors(empty), empty, /neither model.safetensors.index.json nor model.safetensors/);
});

// ------------------------------------------------------------------------------------------- round trips
function randomBits16(n: number, seed: number): Uint16Array {
  const r = rng(seed);
  const a = new Uint16Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.floor(r() * 65536);
  return a;
}

test('round trip is bit-exact for F32, BF16, F16, I32, I64, U8 and F64', () => {
  const r = rng(7);
  const f = tensor(Array.from({ length: 37 * 3 }, () => (r() - 0.5) * 1e3), [37, 3]);
  const fd = f.data as Float32Array;
  new Uint32Array(fd.buffer, fd.byteOffset, fd.length).set([0x7fc00001, 0xff800000, 0x80000000, 0x00000001, 0x7f7fffff], 0); // NaN payload, -inf, -0, subnormal, max
  const bf = empty([5, 13], 'bfloat16');
  (bf.storage.data as Uint16Array).set(randomBits16(65, 1));
  const hf = empty([65], 'float16');
  (hf.storage.data as Uint16Array).set(randomBits16(65, 2));
  const i32 = intTensor([-2147483648, 2147483647, 0, -1, 42], [5]);
  const i64 = empty([2, 2], 'int64');
  (i64.storage.data as BigInt64Array).set([-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -7n]);
  const u8 = empty([3], 'uint8');
  (u8.storage.data as Uint8Array).set([0, 128, 255]);
  const f64 = empty([3], 'float64', jsBackend64);
  (f64.storage.data as Float64Array).set([Math.PI, -1e-310, 1e308]);
  const all: Record<string, Tensor> = { f, bf, hf, i32, i64, u8, f64 };
  const out = tmp();
  saveSafetensors(out, all, { metadata: { who: 'alignkit', 'ünï': 'çødé\n"q"' } });
  with_(openSafetensors(out), (rd) => {
    assert.deepEqual({ ...rd.metadata }, { format: 'pt', who: 'alignkit', 'ünï': 'çødé\n"q"' });
    assert.deepEqual(Object.fromEntries(rd.tensors.map((x) => [x.name, x.dtype])), { bf: 'BF16', f: 'F32', f64: 'F64', hf: 'F16', i32: 'I32', i64: 'I64', u8: 'U8' });
    for (const [name, t] of Object.entries(all)) {
      const back = rd.load(name, { as: 'raw' });
      assert.equal(back.dtype, t.dtype, name);
      assert.deepEqual(back.shape, t.shape, name);
      assert.ok(Buffer.compare(Buffer.from(new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength)), Buffer.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))) === 0, `${name} bits differ`);
    }
  });
  // header padded to a multiple of 8, data contiguous
  const buf = fs.readFileSync(out);
  const n = Number(buf.readBigUInt64LE(0));
  assert.equal(n % 8, 0);
  assert.match(buf.subarray(8, 8 + n).toString(), /^\{"__metadata__":\{"format":"pt","who":"alignkit","ünï":"çødé\\n\\"q\\""\},"i64":/);
  // null metadata: none written
  const bare = tmp();
  saveSafetensors(bare, { f }, { metadata: null });
  assert.ok(fs.readFileSync(bare).subarray(8).toString().startsWith('{"f":{"dtype":"F32","shape":[37,3],"data_offsets":[0,444]}}'));
  // loadSafetensors: every tensor
  const loaded = loadSafetensors(out, { as: 'raw' });
  assert.deepEqual(Object.keys(loaded).sort(), Object.keys(all).sort());
  assert.deepEqual(loaded.i32.toArray(), i32.toArray());
  assert.deepEqual(loadSafetensors(out).i32.toArray(), Array.from(i32.data as Int32Array, Math.fround)); // float32 by default
});

test('strided views are saved as their logical contents; dtype option converts floats only', () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const at = transpose(a, 0, 1);
  const out = tmp();
  saveSafetensors(out, { at, ids: intTensor([1, 2]) }, { dtype: 'bfloat16' });
  with_(openSafetensors(out), (r) => {
    assert.equal(r.info('at').dtype, 'BF16');
    assert.equal(r.info('ids').dtype, 'I32');
    assert.deepEqual(r.info('at').shape, [3, 2]);
    assert.deepEqual(r.load('at').toArray(), [1, 4, 2, 5, 3, 6]);
  });
  // bf16 <-> f16 re-encoding and widening of 16-bit tensors
  const h = cast(tensor([0.1, -2.5, 65504]), 'float16');
  const o2 = tmp();
  saveSafetensors(o2, { h }, { dtype: 'float32' });
  with_(openSafetensors(o2), (r) => assert.deepEqual(r.load('h').toArray(), cast(h, 'float32').toArray()));
  const o3 = tmp();
  saveSafetensors(o3, { h }, { dtype: 'bfloat16' });
  with_(openSafetensors(o3), (r) => assert.deepEqual(r.load('h').toArray(), cast(cast(cast(h, 'float32'), 'bfloat16'), 'float32').toArray()));
});

test('reads by offset beyond 2 GiB (sparse file)', (t) => {
  const file = tmp('big.safetensors');
  const pad = 2 ** 31 + 40;
  const header = { pad: { dtype: 'U8', shape: [pad], data_offsets: [0, pad] }, w: { dtype: 'F32', shape: [4], data_offsets: [pad, pad + 16] } };
  const h = Buffer.from(JSON.stringify(header));
  const total = 8 + h.length + pad + 16;
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    fs.writeSync(fd, len, 0, 8, 0);
    fs.writeSync(fd, h, 0, h.length, 8);
    fs.writeSync(fd, new Uint8Array(new Float32Array([1.5, -2, 3.25, 1e-3]).buffer), 0, 16, total - 16);
  } catch (e) {
    fs.closeSync(fd);
    t.skip(`cannot create a sparse 2 GiB file here: ${String(e)}`);
    return;
  }
  fs.closeSync(fd);
  try {
    with_(openSafetensors(file), (r) => {
      assert.equal(r.info('w').byteOffset, total - 16);
      assert.deepEqual(r.load('w').toArray(), [1.5, -2, 3.25, Math.fround(1e-3)]);
    });
  } finally {
    fs.unlinkSync(file);
  }
});

// ------------------------------------------------------------------------------------------- strictness
test('corrupt headers fail with one-line errors naming the file and the problem', () => {
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'I32', shape: [1], data_offsets: [8, 12] } };
  const okFile = rawFile(ok, 12);
  with_(openSafetensorsFile(okFile), (r) => assert.equal(r.tensors.length, 2));
  const closed = openSafetensors(okFile);
  closed.close();
  throwsNaming(() => closed.load('a'), okFile, /after close\(\)/);

  let f = tmp();
  fs.writeFileSync(f, Buffer.from([1, 2, 3]));
  throwsNaming(() => openSafetensors(f), f, /too short for the 8-byte header length/);

  f = tmp();
  const b = Buffer.alloc(64);
  b.writeBigUInt64LE(1000n);
  fs.writeFileSync(f, b);
  throwsNaming(() => openSafetensors(f), f, /header length 1000 is past the end of the file \(64 bytes\)/);

  f = tmp();
  b.writeBigUInt64LE(0xffffffffffffffffn);
  fs.writeFileSync(f, b);
  throwsNaming(() => openSafetensors(f), f, /header length 18446744073709551615 is past the end/);

  // absurd (> 100 MB) yet inside the (sparse) file
  f = tmp();
  const fd = fs.openSync(f, 'w');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(150_000_000n);
  fs.writeSync(fd, len, 0, 8, 0);
  fs.ftruncateSync(fd, 160_000_000);
  fs.closeSync(fd);
  throwsNaming(() => openSafetensors(f), f, /header length 150000000 is absurd/);
  fs.unlinkSync(f);

  f = rawFile('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', 8);
  throwsNaming(() => openSafetensors(f), f, /header is not valid JSON: .*end of input/);
  f = rawFile('[1, 2]', 0);
  throwsNaming(() => openSafetensors(f), f, /does not start with '\{'/);
  f = rawFile('{"a": 1} x', 0);
  throwsNaming(() => openSafetensors(f), f, /not valid JSON/);
  f = tmp();
  fs.writeFileSync(f, Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0xfe, 0x7d])]));
  throwsNaming(() => openSafetensors(f), f, /not valid UTF-8/);

  f = rawFile('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}', 16);
  throwsNaming(() => openSafetensors(f), f, /duplicate tensor name 'a' in header/);
  f = rawFile({ a: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /tensor 'a' has unknown dtype 'Q4'/);
  f = rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /tensor 'a' \(F32 \[3\]\) needs 12 bytes but data_offsets \[0,8\] hold 8/);
  f = rawFile({ a: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /tensor 'a' has invalid shape \[2,-1\]/);
  f = rawFile({ a: { dtype: 'F32', shape: [2.5], data_offsets: [0, 8] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /invalid shape/);
  f = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /invalid data_offsets \[8\]/);
  f = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, 8);
  throwsNaming(() => openSafetensors(f), f, /begin > end/);
  f = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, 12);
  throwsNaming(() => openSafetensors(f), f, /tensor 'b' data_offsets \[4,12\] overlap tensor 'a'/);
  f = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [12, 20] } }, 20);
  throwsNaming(() => openSafetensors(f), f, /data is not contiguous: 4 unused bytes before tensor 'b'/);
  f = rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, 12);
  throwsNaming(() => openSafetensors(f), f, /tensor 'b' data_offsets \[8,16\] are out of bounds: the data section has 12 bytes/);
  f = rawFile(ok, 20);
  throwsNaming(() => openSafetensors(f), f, /8 bytes after the last tensor are not described by the header/);
  f = rawFile({ __metadata__: { format: 1 }, ...ok }, 12);
  throwsNaming(() => openSafetensors(f), f, /"__metadata__" value for 'format' is a number, expected a string/);
  f = rawFile({ a: [1] }, 0);
  throwsNaming(() => openSafetensors(f), f, /tensor 'a' entry is an array, expected an object/);
  f = rawFile({ 'x\ny': { dtype: 'F32', shape: [0], data_offsets: [0, 0] }, z: { dtype: 'BAD', shape: [], data_offsets: [0, 0] } }, 0);
  throwsNaming(() => openSafetensors(f), f, /unknown dtype 'BAD'/);
  throwsNaming(() => openSafetensors(path.join(tmpRoot, 'missing.safetensors')), 'missing.safetensors', /file not found/);
});

test('the writer is atomic: a failed save leaves the old file and no temporary file', () => {
  const out = tmp('model.safetensors');
  const dir = path.dirname(out);
  fs.writeFileSync(out, 'OLD');
  const a = tensor([1, 2, 3]);
  // fails after the temporary file was created (the metadata value is checked while writing the header)
  throwsNaming(() => saveSafetensors(out, { a }, { metadata: { k: 5 as unknown as string } }), out, /metadata value for 'k' is number/);
  assert.equal(fs.readFileSync(out, 'utf8'), 'OLD');
  assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
  const gone = tensor([1]);
  gone.dispose();
  throwsNaming(() => saveSafetensors(out, { a, gone }), out, /tensor 'gone' \[1\] was disposed/);
  throwsNaming(() => saveSafetensors(out, { __metadata__: a }), out, /cannot be a tensor name/);
  throwsNaming(() => saveSafetensors(path.join(dir, 'no', 'such', 'dir.safetensors'), { a }), 'dir.safetensors', /cannot create temporary file/);
  assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
  saveSafetensors(out, { a });
  with_(openSafetensors(out), (r) => assert.deepEqual(r.load('a').toArray(), [1, 2, 3]));
  assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
  // sharded: a failure leaves nothing behind
  const sdir = path.dirname(tmp());
  const big = tensor(new Float32Array(100));
  assert.throws(() => saveSafetensorsSharded(sdir, { big, a, gone }, { maxShardBytes: 100 }), /was disposed/);
  assert.deepEqual(fs.readdirSync(sdir), []);
  assert.throws(() => saveSafetensorsSharded(sdir, { big, a }, { maxShardBytes: 100, metadata: { k: 1 as unknown as string } }), /metadata value/);
  assert.deepEqual(fs.readdirSync(sdir), []);
  const ok = saveSafetensorsSharded(sdir, { big, a }, { maxShardBytes: 100 });
  assert.deepEqual(ok.files.map((x) => path.basename(x)), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']);
  assert.deepEqual(fs.readdirSync(sdir).sort(), ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
});
