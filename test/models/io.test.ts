// Loading and saving model folders: bit-exact round trips (F32, BF16, Conv1D transposes, sharding, prefix-less
// GPT-2 names), config / generation config / tokenizer files, and one-line errors naming the file for bad
// configs and checkpoints that do not match them. A failed save leaves the destination untouched.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import * as T from '../../src/tensor/index.ts';
import { CheckpointError, loadSafetensors, openSafetensors, saveSafetensors } from '../../src/io/index.ts';
import { loadModel, saveModel, readModelConfig } from '../../src/models/index.ts';
import { loadTokenizer } from '../../src/tokenizer/index.ts';
import { CAUSAL_CASES, fixtureDir, maxDelta, readRef, tokenLogprobs } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-models-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(tmp, `case${n++}`);

/** Asserts two checkpoints hold the same tensor names, dtypes, shapes and bytes. */
function assertSameTensors(a: string, b: string): void {
  const ra = openSafetensors(a);
  const rb = openSafetensors(b);
  try {
    assert.deepEqual(rb.tensors.map((t) => t.name), ra.tensors.map((t) => t.name));
    for (const t of ra.tensors) {
      const u = rb.info(t.name);
      assert.equal(u.dtype, t.dtype, `${t.name} dtype`);
      assert.deepEqual(u.shape, t.shape, `${t.name} shape`);
      assert.ok(Buffer.from(ra.readBytes(t.name)).equals(Buffer.from(rb.readBytes(t.name))), `${t.name}: bytes differ`);
    }
  } finally {
    ra.close();
    rb.close();
  }
}

/** Copies a fixture folder to a fresh temporary one. */
function copyFixture(name: string): string {
  const d = fresh();
  mkdirSync(d);
  for (const f of readdirSync(fixtureDir(name))) copyFileSync(join(fixtureDir(name), f), join(d, f));
  return d;
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error);
    return e;
  }
  assert.fail('expected an error');
}

for (const name of [...CAUSAL_CASES, 'llama_reward']) {
  test(`round trip ${name}: load -> save -> load is bit-exact`, () => {
    const model = loadModel(fixtureDir(name));
    const out = fresh();
    try {
      const saved = saveModel(model, out);
      assert.ok(saved.files.includes('config.json') && saved.files.includes('model.safetensors'));
      assertSameTensors(fixtureDir(name), out);
      // config.json keeps every field; dtype follows the stored tensors
      const src = JSON.parse(readFileSync(join(fixtureDir(name), 'config.json'), 'utf8')) as Record<string, unknown>;
      const dst = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(dst, src);
      assert.equal(existsSync(join(out, 'generation_config.json')), existsSync(join(fixtureDir(name), 'generation_config.json')));
      const again = loadModel(out);
      try {
        assert.deepEqual([...again.namedParameters().keys()].sort(), [...model.namedParameters().keys()].sort());
        // saving the reloaded model gives the same bytes again
        const out2 = fresh();
        saveModel(again, out2);
        assertSameTensors(out, out2);
      } finally {
        again.dispose();
      }
    } finally {
      model.dispose();
    }
  });
}

test('tokenizer files are copied, and the saved folder loads with loadTokenizer', () => {
  const model = loadModel(fixtureDir('llama'));
  const out = fresh();
  try {
    const saved = saveModel(model, out);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      assert.ok(saved.files.includes(f), f);
      assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(fixtureDir('llama'), f))));
    }
    const tok = loadTokenizer(out);
    const ids = tok.encode('the quick brown fox');
    assert.deepEqual(ids, loadTokenizer(fixtureDir('llama')).encode('the quick brown fox'));
    assert.ok(ids.length > 0 && ids.every((i) => i < model.config.vocabSize));
    const none = fresh();
    assert.ok(!saveModel(model, none, { tokenizerDir: null }).files.includes('tokenizer.json'));
  } finally {
    model.dispose();
  }
});

test('save with another dtype, sharded save, and overwriting an earlier save', () => {
  const model = loadModel(fixtureDir('qwen2'));
  try {
    const bf = fresh();
    saveModel(model, bf, { dtype: 'bfloat16' });
    const r = openSafetensors(bf);
    assert.ok(r.tensors.every((t) => t.dtype === 'BF16'));
    r.close();
    assert.equal((JSON.parse(readFileSync(join(bf, 'config.json'), 'utf8')) as { dtype: string }).dtype, 'bfloat16');
    const back = loadModel(bf);
    const ref = readRef('qwen2');
    const seq = ref.sequences?.[0];
    assert.ok(seq);
    const d = maxDelta(tokenLogprobs(back, [seq.ids])[0], seq.logprobs);
    assert.ok(d > 0 && d < 0.5, `bfloat16 rounding changes log-probs a little (${d})`);
    back.dispose();

    const sh = fresh();
    const saved = saveModel(model, sh, { maxShardBytes: 20_000 });
    assert.ok(saved.files.includes('model.safetensors.index.json'), saved.files.join(','));
    assert.ok(saved.files.filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f)).length > 1);
    assertSameTensors(fixtureDir('qwen2'), sh);
    // overwrite the sharded folder with a single-file save: stale shards and the index are removed
    saveModel(model, sh);
    assert.deepEqual(readdirSync(sh).filter((f) => f.includes('safetensors')), ['model.safetensors']);
    assertSameTensors(fixtureDir('qwen2'), sh);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.saving-')), [], 'no staging folders left');
  } finally {
    model.dispose();
  }
});

test('GPT-2 checkpoints without the transformer. prefix and with attention-mask buffers load; saves keep the names', () => {
  const src = loadSafetensors(join(fixtureDir('gpt2'), 'model.safetensors'));
  const d = fresh();
  mkdirSync(d);
  copyFileSync(join(fixtureDir('gpt2'), 'config.json'), join(d, 'config.json'));
  const stripped: Record<string, T.Tensor> = {};
  for (const [k, v] of Object.entries(src)) stripped[k.replace(/^transformer\./, '')] = v;
  const mask = T.ones([1, 1, 64, 64]);
  stripped['h.0.attn.bias'] = mask; // the causal-mask buffer old GPT-2 files carry
  saveSafetensors(join(d, 'model.safetensors'), stripped);
  const model = loadModel(d);
  try {
    assert.ok(model.checkpoint.unprefixed);
    const ref = readRef('gpt2');
    const seq = ref.sequences?.[0];
    assert.ok(seq);
    assert.ok(maxDelta(tokenLogprobs(model, [seq.ids])[0], seq.logprobs) <= 1e-4);
    const out = fresh();
    saveModel(model, out);
    const r = openSafetensors(out);
    assert.ok(r.has('wte.weight') && r.has('h.1.mlp.c_fc.weight') && !r.has('transformer.wte.weight'));
    assert.deepEqual(r.info('h.0.attn.c_attn.weight').shape, [32, 96], 'Conv1D weights stored [in, out]');
    r.close();
  } finally {
    model.dispose();
    for (const t of Object.values(src)) t.dispose();
    mask.dispose();
  }
});

test('loading GPT-2 holds no tensor memory beyond its parameters (the Conv1D transposes release their source)', () => {
  // The storage counter covers every backend (native or TypeScript); Conv1D weights are loaded [in, out] and
  // transposed, and the stored copy and its view must both be gone afterwards.
  const before = T.memoryInfo().liveStorageBytes;
  const model = loadModel(fixtureDir('gpt2'));
  try {
    let paramBytes = 0;
    for (const t of model.namedParameters().values()) paramBytes += t.size * 4;
    assert.equal(T.memoryInfo().liveStorageBytes - before, paramBytes);
  } finally {
    model.dispose();
  }
});

test('bad config.json: unknown model_type, bad fields, unsupported rope -> one line naming the file and field', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ model_type: 'bert' }, /field 'model_type' = 'bert' is not supported \(supported: gpt2, llama, mistral, qwen2, qwen3\)/],
    [{ hidden_size: -1 }, /field 'hidden_size' must be an integer >= 1, got -1/],
    [{ num_key_value_heads: 3 }, /field 'num_key_value_heads' \(3\) must divide num_attention_heads \(4\)/],
    [{ rope_parameters: { rope_type: 'yarn', rope_theta: 10000, factor: 4 } }, /field 'rope_parameters.rope_type' = 'yarn' is not supported/],
    [{ rope_parameters: { rope_type: 'llama3', rope_theta: 10000, factor: 8 } }, /field 'rope_parameters.low_freq_factor' is missing/],
    [{ hidden_act: 'mish' }, /field 'hidden_act' = 'mish' is not a supported activation/],
    [{ eos_token_id: 'x' }, /field 'eos_token_id' must be a token id or a list of token ids/],
  ];
  for (const [patch, re] of cases) {
    const d = copyFixture('llama');
    const file = join(d, 'config.json');
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify({ ...cfg, ...patch }));
    const e = errorOf(() => loadModel(d));
    assert.ok(e instanceof CheckpointError, e.message);
    assert.match(e.message, re);
    assert.ok(e.message.startsWith(`config ${file}: `), e.message);
    assert.ok(!e.message.includes('\n'));
  }
  const legacy = copyFixture('llama3_rope');
  const file = join(legacy, 'config.json');
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const { rope_parameters: rp, ...rest } = cfg as { rope_parameters: Record<string, unknown> };
  const { rope_theta: theta, ...scaling } = rp;
  writeFileSync(file, JSON.stringify({ ...rest, rope_theta: theta, rope_scaling: scaling }));
  assert.deepEqual(readModelConfig(legacy).rope, readModelConfig(fixtureDir('llama3_rope')).rope, 'transformers-4 rope_theta + rope_scaling');
  assert.match(errorOf(() => loadModel(fresh())).message, /config\.json not found/);
});

test('checkpoint not matching the config: missing, unexpected and mis-shaped tensors reported together', () => {
  const d = copyFixture('llama');
  const file = join(d, 'model.safetensors');
  const src = loadSafetensors(file);
  const bad: Record<string, T.Tensor> = { ...src };
  delete bad['model.norm.weight'];
  bad['model.layers.0.self_attn.rotary_emb.inv_freq'] = T.zeros([4]); // ignored, as transformers does
  bad['model.layers.9.extra.weight'] = T.zeros([2]);
  bad['lm_head.weight'] = T.zeros([10, 32]);
  saveSafetensors(file, bad);
  const e = errorOf(() => loadModel(d));
  assert.ok(e instanceof CheckpointError);
  assert.ok(e.message.startsWith(`safetensors ${file}: `), e.message);
  assert.ok(!e.message.includes('\n'));
  assert.match(e.message, /1 missing tensor: model\.norm\.weight/);
  assert.match(e.message, /1 unexpected tensor: model\.layers\.9\.extra\.weight/);
  assert.match(e.message, /1 wrong shape: lm_head\.weight \[10,32\] \(expected \[128,32\]\)/);
  assert.doesNotMatch(e.message, /inv_freq/);
  for (const t of Object.values(bad)) t.dispose();
  rmSync(file);
  assert.match(errorOf(() => loadModel(d)).message, /neither model\.safetensors\.index\.json nor model\.safetensors/);
});

test('a failed save writes nothing', () => {
  const model = loadModel(fixtureDir('llama'));
  try {
    // 1. an invalid model: nothing is created
    const target = fresh();
    const p = model.namedParameters().get('model.norm.weight');
    assert.ok(p);
    const m2 = loadModel(fixtureDir('llama'));
    (m2.namedParameters().get('model.norm.weight') as T.Tensor).dispose();
    assert.match(errorOf(() => saveModel(m2, target)).message, /^model folder .*: not written: parameter 'model\.norm\.weight' \[32\] was disposed$/);
    assert.ok(!existsSync(target));
    m2.dispose();
    // 2. a failure half way (a tokenizer file that cannot be copied): the earlier save stays as it was
    const existing = fresh();
    saveModel(model, existing, { tokenizerDir: null });
    const before = readdirSync(existing).map((f) => [f, readFileSync(join(existing, f))] as const);
    const tokDir = fresh();
    mkdirSync(join(tokDir, 'tokenizer.json'), { recursive: true }); // a directory where a file is expected
    const e = errorOf(() => saveModel(model, existing, { tokenizerDir: tokDir, dtype: 'bfloat16' }));
    assert.match(e.message, /not written/);
    assert.deepEqual(readdirSync(existing).sort(), before.map(([f]) => f).sort());
    for (const [f, bytes] of before) assert.ok(readFileSync(join(existing, f)).equals(bytes), `${f} changed`);
    assert.deepEqual(readdirSync(tmp).filter((f) => f.includes('.saving-')), []);
    // 3. the destination is a file
    const asFile = fresh();
    writeFileSync(asFile, 'x');
    assert.match(errorOf(() => saveModel(model, asFile)).message, /exists and is not a directory/);
    assert.equal(readFileSync(asFile, 'utf8'), 'x');
  } finally {
    model.dispose();
  }
});
