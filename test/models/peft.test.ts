// LoRA on the fixture models, checked against Hugging Face PEFT (fixtures/lora/, written by
// fixtures/make_lora_fixtures.py): PEFT-trained adapters load here and give PEFT's log-probs, merged log-probs
// and gradients; adapters saved here have PEFT's file names, keys, shapes and config fields. Plus the
// invariants: B = 0 is a no-op, base + adapter = base with W + scaling·B·A, merge / detach, a training step
// touches only the adapter, dropout determinism, target matching and the loader's error messages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensorsFile } from '../../src/io/index.ts';
import {
  ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, adapterConfigJson, loadLoraAdapter, loadModel, mergeAndSave, saveLoraAdapter, type PretrainedLM,
} from '../../src/models/index.ts';
import { adapterOf, applyLora, projectionModules, type LoraHandle } from '../../src/nn/lora.ts';
import { AdamW } from '../../src/optim/index.ts';
import * as T from '../../src/tensor/index.ts';
import { assertClose, randArray } from '../util.ts';
import { fixtureDir, ids2d, maxDelta, tokenLogprobs } from './helpers.ts';

const LORA_FIXTURES = path.join(path.dirname(fixtureDir('x')), '..', 'lora');
const loraDir = (name: string): string => path.join(LORA_FIXTURES, name);

interface LoraRef {
  peft_version: string;
  case: string;
  base: string;
  ids: number[][];
  logprobs: number[][];
  base_logprobs: number[][];
  merged_logprobs: number[][];
  loss: number;
  grads: Record<string, number[]>;
  default_config?: Record<string, unknown>;
}
const readLoraRef = (name: string): LoraRef => JSON.parse(fs.readFileSync(path.join(LORA_FIXTURES, `${name}.json`), 'utf8')) as LoraRef;
const CASES = ['llama_qv', 'llama_all_rslora', 'gpt2_attn_proj'];
/** The golden model tests' tolerance against HF (float32, different summation orders). */
const TOL = 1e-4;

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-lora-'));
after(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));
let tmpCount = 0;
const tmpDir = (): string => path.join(tmpRoot, `d${tmpCount++}`);

/** Final hidden states [B, T, C] as a flat array. */
function hidden(model: PretrainedLM, ids: number[][]): number[] {
  return T.noGrad(() => T.tidy(() => model.forward(ids2d(ids)).toArray()));
}

/** Every parameter's values, by name (copies). */
function snapshot(model: PretrainedLM): Map<string, Float32Array> {
  return new Map([...model.namedParameters()].map(([n, t]) => [n, Float32Array.from(t.data as Float32Array)]));
}

/** Fills every B with U(±scale) values so the adapter does something. */
function randomizeB(h: LoraHandle, seed: number, scale = 0.2): void {
  let s = seed;
  for (const { B } of h.adapters.values()) (B.data as Float32Array).set(randArray(B.size, s++, scale));
}

/** Mean next-token cross-entropy over all rows (HF's labels=ids loss), fused with the LM head. */
function lmLoss(model: PretrainedLM, ids: number[][]): T.Tensor {
  const B = ids.length;
  const L = ids[0].length;
  const h = model.forward(ids2d(ids));
  const targets = ids.flatMap((row) => row.map((_, t) => (t + 1 < L ? row[t + 1] : -100)));
  return T.fusedCrossEntropy(T.reshape(h, [B * L, model.config.hiddenSize]), model.lmHeadWeight(), T.intTensor(targets), { bias: model.lmHeadBias() });
}

const IDS = [
  [5, 17, 99, 3, 64, 23, 8, 110],
  [12, 90, 4, 4, 58, 101, 6, 33],
];

describe('PEFT adapters (fixtures/lora, written by PEFT)', () => {
  for (const name of CASES)
    it(`${name}: log-probs with the adapter, without it and merged match PEFT`, () => {
      const ref = readLoraRef(name);
      const model = loadModel(fixtureDir(ref.base));
      try {
        assert.ok(maxDelta(tokenLogprobs(model, ref.ids).flat(), ref.base_logprobs.flat()) < TOL, 'base model');
        const h = loadLoraAdapter(model, loraDir(name));
        assert.equal(h.training, false, 'loaded adapters start in eval mode, as PEFT inference');
        const adapted = tokenLogprobs(model, ref.ids).flat();
        const d = maxDelta(adapted, ref.logprobs.flat());
        assert.ok(d < TOL, `adapted log-probs differ from PEFT by ${d}`);
        assert.ok(maxDelta(adapted, ref.base_logprobs.flat()) > 0.05, 'the adapter changes the model');
        h.merge();
        const dm = maxDelta(tokenLogprobs(model, ref.ids).flat(), ref.merged_logprobs.flat());
        assert.ok(dm < TOL, `merged log-probs differ from PEFT by ${dm}`);
        h.dispose();
      } finally {
        model.dispose();
      }
    });

  for (const name of CASES)
    it(`${name}: gradients of the loss w.r.t. every trainable tensor match PEFT's`, () => {
      const ref = readLoraRef(name);
      const model = loadModel(fixtureDir(ref.base));
      try {
        const h = loadLoraAdapter(model, loraDir(name), { trainable: true });
        h.eval(); // PEFT's gradients were taken in eval mode (no dropout)
        const params = h.trainableParameters();
        assert.deepEqual([...params.keys()].sort(), Object.keys(ref.grads).sort(), 'trainable tensors = PEFT trainable parameters');
        T.tidy(() => {
          const loss = lmLoss(model, ref.ids);
          assert.ok(Math.abs(loss.item() - ref.loss) < TOL, `loss ${loss.item()} vs PEFT ${ref.loss}`);
          loss.backward();
        });
        for (const [key, t] of params) {
          assert.ok(t.grad, `${key} has a gradient`);
          assertClose(t.grad.toArray(), ref.grads[key], 2e-5, 2e-3, `grad ${key}`);
        }
        for (const [n, p] of model.namedParameters()) if (!h.savedModules.has(n)) assert.equal(p.grad, null, `frozen ${n} gets no gradient`);
        h.dispose();
      } finally {
        model.dispose();
      }
    });

  it('re-saving a PEFT adapter writes the same keys, shapes, values and config fields', () => {
    for (const name of CASES) {
      const ref = readLoraRef(name);
      const model = loadModel(fixtureDir(ref.base));
      try {
        const h = loadLoraAdapter(model, loraDir(name));
        const out = tmpDir();
        const saved = saveLoraAdapter(out, h, { baseModelNameOrPath: `fixtures/models/${ref.base}` });
        assert.deepEqual(saved.files, [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
        assert.deepEqual(fs.readdirSync(out).sort(), [ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE]);
        const theirs = openSafetensorsFile(path.join(loraDir(name), ADAPTER_WEIGHTS_FILE));
        const ours = openSafetensorsFile(path.join(out, ADAPTER_WEIGHTS_FILE));
        try {
          assert.deepEqual(ours.tensors.map((t) => t.name), theirs.tensors.map((t) => t.name), `${name}: key names`);
          for (const t of theirs.tensors) {
            assert.deepEqual(ours.info(t.name).shape, t.shape, `${name}: ${t.name} shape`);
            assert.equal(ours.info(t.name).dtype, t.dtype);
            assert.deepEqual(ours.readBytes(t.name), theirs.readBytes(t.name), `${name}: ${t.name} bytes`);
          }
          assert.deepEqual(ours.metadata, theirs.metadata);
        } finally {
          theirs.close();
          ours.close();
        }
        const peftConfig = JSON.parse(fs.readFileSync(path.join(loraDir(name), ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
        const ourConfig = JSON.parse(fs.readFileSync(path.join(out, ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
        for (const [k, v] of Object.entries(ourConfig)) assert.deepEqual(v, peftConfig[k], `${name}: adapter_config.json field ${k}`);
        h.dispose();
      } finally {
        model.dispose();
      }
    }
  });

  it("a fresh adapter's adapter_config.json agrees with PEFT's for the same LoraConfig", () => {
    const ref = readLoraRef('llama_qv');
    const peft = ref.default_config as Record<string, unknown>;
    const model = loadModel(fixtureDir('llama'));
    try {
      const h = applyLora(model, { target_modules: ['q_proj', 'v_proj'] }, 0); // every other field at PEFT's default
      const ours = adapterConfigJson(h, 'fixtures/models/llama');
      const keys = Object.keys(ours);
      assert.deepEqual(keys, [...keys].sort(), 'sorted keys, as PEFT writes them');
      for (const [k, v] of Object.entries(ours)) assert.deepEqual(v, peft[k], `field ${k}`);
      for (const k of ['peft_type', 'task_type', 'r', 'lora_alpha', 'lora_dropout', 'target_modules', 'bias', 'fan_in_fan_out', 'base_model_name_or_path', 'inference_mode', 'use_rslora', 'modules_to_save', 'init_lora_weights'])
        assert.ok(k in ours, `writes ${k}`);
      h.dispose();
    } finally {
      model.dispose();
    }
  });
});

describe('applyLora on the fixture models', () => {
  for (const base of ['llama', 'gpt2'])
    it(`${base}: PEFT's init (A ~ U(±1/sqrt(in)), B = 0) leaves the forward bit-identical; seeded`, () => {
      const model = loadModel(fixtureDir(base));
      try {
        const before = hidden(model, IDS);
        const h = applyLora(model, { r: 4, lora_alpha: 16, target_modules: 'all-linear' }, 11);
        assert.equal(h.adapters.size, projectionModules(model).length);
        for (const [m, { A, B }] of h.adapters) {
          const bound = 1 / Math.sqrt(A.shape[1]);
          const a = A.toArray();
          assert.ok(a.every((v) => Math.abs(v) <= bound), `${m}: A within ±1/sqrt(in)`);
          assert.ok(Math.max(...a.map(Math.abs)) > 0.8 * bound, `${m}: A spread over the range`);
          assert.ok(B.toArray().every((v) => v === 0), `${m}: B = 0`);
        }
        assert.deepEqual(hidden(model, IDS), before, 'B = 0: the adapted model is the base model');
        const again = applyLoraTwice(model, 11, h);
        assert.ok(again.same, 'same seed, same A');
        assert.ok(!applyLoraTwice(model, 12, h).same, 'another seed, another A');
        h.dispose();
      } finally {
        model.dispose();
      }
    });

  /** Whether a second application (on a second copy of the model) with `seed` draws the same A as `h`. */
  function applyLoraTwice(model: PretrainedLM, seed: number, h: LoraHandle): { same: boolean } {
    const other = loadModel(model.checkpoint.dir as string);
    try {
      const h2 = applyLora(other, { r: 4, lora_alpha: 16, target_modules: 'all-linear' }, seed);
      const same = [...h.adapters].every(([m, { A }]) => T.tidy(() => JSON.stringify(A.toArray()) === JSON.stringify((h2.adapters.get(m) as { A: T.Tensor }).A.toArray())));
      h2.dispose();
      return { same };
    } finally {
      other.dispose();
    }
  }

  for (const base of ['llama', 'gpt2'])
    it(`${base}: base + adapter = base with W + scaling·B·A merged by hand (1e-5); merge() agrees and removes the adapter`, () => {
      const model = loadModel(fixtureDir(base));
      const manual = loadModel(fixtureDir(base));
      try {
        const h = applyLora(model, { r: 3, lora_alpha: 6, target_modules: base === 'gpt2' ? ['c_attn', 'mlp.c_proj'] : ['q_proj', 'o_proj', 'down_proj'] }, 5);
        randomizeB(h, 100);
        // W' = W + s·B·A in float64, written into the second copy.
        const mp = manual.namedParameters();
        for (const [m, { A, B }] of h.adapters) {
          const W = mp.get(`${m}.weight`) as T.Tensor;
          const [O, I] = W.shape;
          const R = A.shape[0];
          const w = W.data as Float32Array;
          const a = A.data as Float32Array;
          const b = B.data as Float32Array;
          for (let o = 0; o < O; o++)
            for (let i = 0; i < I; i++) {
              let ba = 0;
              for (let k = 0; k < R; k++) ba += b[o * R + k] * a[k * I + i];
              w[o * I + i] += h.scaling * ba;
            }
        }
        const adapted = hidden(model, IDS);
        const reference = hidden(manual, IDS);
        assertClose(adapted, reference, 1e-5, 0, 'adapted vs hand-merged forward');
        const lpAdapted = tokenLogprobs(model, IDS).flat();

        const weight = model.namedParameters().get(`${h.targetModules[0]}.weight`) as T.Tensor;
        assert.ok(adapterOf(weight), 'attached');
        h.merge();
        assert.equal(h.state, 'merged');
        assert.equal(adapterOf(weight), null, 'merge detaches the adapter');
        assertClose(hidden(model, IDS), adapted, 1e-5, 0, 'merged vs adapted forward');
        assertClose(tokenLogprobs(model, IDS).flat(), lpAdapted, 1e-5, 0, 'merged vs adapted log-probs');
        for (const t of model.namedParameters().values()) assert.equal(t.requiresGrad, true, 'requiresGrad flags restored');
        assert.throws(() => h.merge(), /merged, not attached/);
        h.dispose();
      } finally {
        model.dispose();
        manual.dispose();
      }
    });

  it('detach() restores the base model bit for bit (modules_to_save included) and keeps the trained values', () => {
    const model = loadModel(fixtureDir('llama'));
    try {
      const before = snapshot(model);
      const baseOut = hidden(model, IDS);
      const h = applyLora(model, { r: 2, target_modules: ['v_proj'], modules_to_save: ['lm_head'] }, 3);
      randomizeB(h, 7);
      const head = h.savedModules.get('lm_head.weight') as T.Tensor;
      assert.equal(head, model.namedParameters().get('lm_head.weight'), 'trained in place while attached');
      (head.data as Float32Array)[0] += 1;
      const trainedValue = (head.data as Float32Array)[0];
      assert.notDeepEqual(hidden(model, IDS), baseOut);
      h.detach();
      assert.equal(h.state, 'detached');
      assert.deepEqual(hidden(model, IDS), baseOut);
      for (const [n, t] of model.namedParameters()) assert.deepEqual(t.data, before.get(n), `${n} restored`);
      const trained = h.trainableParameters().get('base_model.model.lm_head.weight') as T.Tensor;
      assert.equal(trained.toArray()[0], trainedValue, 'the trained head moved into the handle');
      assert.notEqual(trained, head);
      h.dispose();
    } finally {
      model.dispose();
    }
  });

  it('one AdamW step on trainableParameters() changes A and B only: every base weight is bit-identical', () => {
    const model = loadModel(fixtureDir('llama'));
    try {
      const before = snapshot(model);
      const h = applyLora(model, { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: 'all-linear' }, 1);
      for (const t of model.namedParameters().values()) assert.equal(t.requiresGrad, false, 'base frozen');
      const params = h.trainableParameters();
      assert.equal(params.size, 2 * 14);
      for (const t of params.values()) assert.equal(t.requiresGrad, true);
      const A0 = new Map([...params].map(([k, t]) => [k, t.toArray()]));
      const opt = new AdamW([...params.values()], { lr: 1e-2 });
      T.tidy(() => lmLoss(model, IDS).backward());
      for (const [k, t] of params) {
        assert.ok(t.grad, `${k} has a gradient`);
        // B = 0 at init: dL/dA = scaling · Bᵀ (...) is exactly 0, only B gets a signal.
        if (k.includes('lora_A')) assert.ok(t.grad.toArray().every((v) => v === 0), `${k}: zero gradient while B = 0`);
      }
      opt.step();
      opt.zeroGrad();
      for (const [n, t] of model.namedParameters()) {
        assert.equal(t.grad, null, `${n} gets no gradient`);
        assert.deepEqual(t.data, before.get(n), `${n} bit-identical`);
      }
      let changedB = 0;
      for (const [k, t] of params) if (k.includes('lora_B') && t.toArray().some((v, i) => v !== (A0.get(k) as number[])[i])) changedB++;
      assert.equal(changedB, 14, 'every B moved');
      // A second step: now A moves too.
      T.tidy(() => lmLoss(model, IDS).backward());
      opt.step();
      for (const [k, t] of params) if (k.includes('lora_A')) assert.ok(t.toArray().some((v, i) => v !== (A0.get(k) as number[])[i]), `${k} moved`);
      for (const [n, t] of model.namedParameters()) assert.deepEqual(t.data, before.get(n), `${n} still bit-identical`);
      h.dispose();
    } finally {
      model.dispose();
    }
  });

  it('dropout: active only in training mode and deterministic for a seed', () => {
    const model = loadModel(fixtureDir('gpt2'));
    try {
      const run = (seed: number, training: boolean): number[] => {
        const h = applyLora(model, { r: 4, lora_dropout: 0.5, target_modules: ['c_attn', 'c_fc'] }, 0, { dropoutSeed: seed, training });
        randomizeB(h, 3);
        const out = hidden(model, IDS);
        h.dispose();
        return out;
      };
      const eval0 = run(1, false);
      const train1 = run(1, true);
      assert.notDeepEqual(train1, eval0, 'dropout changes the training forward');
      assert.deepEqual(run(1, true), train1, 'same seed, same masks');
      assert.notDeepEqual(run(2, true), train1, 'another seed, other masks');
      assert.deepEqual(run(2, false), eval0, 'eval mode ignores the seed: no dropout');
      // The same handle: train() / eval() switch it.
      const h = applyLora(model, { r: 4, lora_dropout: 0.5, target_modules: ['c_attn', 'c_fc'] }, 0, { dropoutSeed: 1 });
      randomizeB(h, 3);
      assert.equal(h.training, true, 'applyLora starts in training mode');
      assert.deepEqual(hidden(model, IDS), train1);
      h.eval();
      assert.deepEqual(hidden(model, IDS), eval0);
      h.dispose();
    } finally {
      model.dispose();
    }
  });

  it('rslora: scaling = lora_alpha / sqrt(r), and the forward uses it', () => {
    const model = loadModel(fixtureDir('llama'));
    const plain = loadModel(fixtureDir('llama'));
    try {
      const h = applyLora(model, { r: 4, lora_alpha: 4, use_rslora: true, target_modules: ['q_proj'] }, 9);
      assert.equal(h.scaling, 2);
      // The same A / B with plain LoRA and lora_alpha 8 (scaling 8/4 = 2) must compute the same function.
      const h2 = applyLora(plain, { r: 4, lora_alpha: 8, target_modules: ['q_proj'] }, 9);
      assert.equal(h2.scaling, 2);
      randomizeB(h, 4);
      randomizeB(h2, 4);
      assert.deepEqual(hidden(model, IDS), hidden(plain, IDS));
      assert.equal(adapterConfigJson(h, 'x').use_rslora, true);
      h.dispose();
      h2.dispose();
    } finally {
      model.dispose();
      plain.dispose();
    }
  });
});

describe('target_modules and modules_to_save matching', () => {
  const llama = loadModel(fixtureDir('llama'));
  const gpt2 = loadModel(fixtureDir('gpt2'));
  after(() => {
    llama.dispose();
    gpt2.dispose();
  });
  const targets = (model: PretrainedLM, cfg: Parameters<typeof applyLora>[1]): string[] => {
    const h = applyLora(model, cfg, 0);
    const t = h.targetModules;
    h.dispose();
    return t;
  };

  it('lists: a name matches a module equal to it or ending in .name (PEFT)', () => {
    assert.deepEqual(targets(llama, { target_modules: ['q_proj', 'v_proj'] }), [
      'model.layers.0.self_attn.q_proj', 'model.layers.0.self_attn.v_proj', 'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.v_proj',
    ]);
    assert.deepEqual(targets(gpt2, { target_modules: ['c_proj'] }), [
      'transformer.h.0.attn.c_proj', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.attn.c_proj', 'transformer.h.1.mlp.c_proj',
    ]);
    assert.deepEqual(targets(gpt2, { target_modules: ['mlp.c_proj', 'transformer.h.0.attn.c_attn'] }), ['transformer.h.0.attn.c_attn', 'transformer.h.0.mlp.c_proj', 'transformer.h.1.mlp.c_proj']);
    // 'proj' is no name's dotted suffix: PEFT matches whole name components only.
    assert.throws(() => targets(llama, { target_modules: ['proj'] }), /'proj' matches no projection/);
  });

  it("'all-linear' is every projection but the LM head; a regex must match whole names; defaults as PEFT", () => {
    const all = targets(llama, { target_modules: 'all-linear' });
    assert.equal(all.length, 14);
    assert.ok(!all.some((m) => m.includes('lm_head')));
    assert.deepEqual(targets(gpt2, { target_modules: 'all-linear' }).length, 8);
    assert.deepEqual(targets(llama, { target_modules: String.raw`.*\.1\.mlp\.(up|down)_proj` }), ['model.layers.1.mlp.up_proj', 'model.layers.1.mlp.down_proj']);
    assert.deepEqual(targets(llama, {}).map((m) => m.split('.').pop()), ['q_proj', 'v_proj', 'q_proj', 'v_proj']);
    assert.deepEqual(targets(gpt2, {}), ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
  });

  it('exclude_modules and layers_to_transform narrow the selection', () => {
    assert.deepEqual(targets(llama, { target_modules: 'all-linear', exclude_modules: ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj', 'o_proj'], layers_to_transform: [1] }), [
      'model.layers.1.self_attn.q_proj', 'model.layers.1.self_attn.k_proj', 'model.layers.1.self_attn.v_proj',
    ]);
    assert.deepEqual(targets(gpt2, { target_modules: ['c_fc'], layers_to_transform: 0, layers_pattern: 'h' }), ['transformer.h.0.mlp.c_fc']);
  });

  it('a name that matches nothing is an error listing the available names', () => {
    assert.throws(
      () => applyLora(llama, { target_modules: ['q_proj', 'qproj'] }, 0),
      (e: Error) =>
        /target_modules: 'qproj' matches no projection of this llama model; available: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, self_attn\.q_proj/.test(e.message) &&
        /model\.layers\.0\.self_attn\.q_proj/.test(e.message),
    );
    assert.throws(() => applyLora(gpt2, { target_modules: ['q_proj'] }, 0), /available: c_attn, c_proj, c_fc, attn\.c_attn/);
    assert.throws(() => applyLora(llama, { target_modules: ['lm_head'] }, 0), /'lm_head' is not a projection LoRA adapts here .*modules_to_save/);
    assert.throws(() => applyLora(llama, { target_modules: ['q_proj'], modules_to_save: ['score'] }, 0), /modules_to_save: 'score' matches no module .*modules: model\.embed_tokens, model\.layers\.<i>\.input_layernorm/);
    assert.throws(() => applyLora(gpt2, { target_modules: ['c_attn'], modules_to_save: ['lm_head'] }, 0), /tied to the input embedding transformer\.wte/);
    // Nothing was left attached by the failures.
    for (const t of llama.namedParameters().values()) assert.equal(adapterOf(t), null);
  });

  it('config values are checked', () => {
    assert.throws(() => applyLora(llama, { r: 0 }, 0), /LoraConfig\.r: must be a positive integer, got 0/);
    assert.throws(() => applyLora(llama, { lora_dropout: 1 }, 0), /LoraConfig\.lora_dropout: must be in \[0, 1\)/);
    assert.throws(() => applyLora(llama, { bias: 'all' as 'none' }, 0), /LoraConfig\.bias: only 'none'/);
    assert.throws(() => applyLora(llama, { init_lora_weights: 'pissa' as 'gaussian' }, 0), /init_lora_weights/);
    assert.throws(() => applyLora(llama, { target_modules: [] }, 0), /target_modules: the list is empty/);
    assert.throws(() => applyLora(llama, { target_modules: '(' }, 0), /not a valid regular expression/);
  });

  it('two handles cannot adapt the same weight; a disposed handle frees the weight again', () => {
    const h = applyLora(llama, { target_modules: ['q_proj'] }, 0);
    assert.throws(() => applyLora(llama, { target_modules: ['q_proj'] }, 0), /already has an adapter attached/);
    h.dispose();
    applyLora(llama, { target_modules: ['q_proj'] }, 0).dispose();
  });
});

describe('saveLoraAdapter / loadLoraAdapter / mergeAndSave', () => {
  it('save -> load round trip is bit-exact, with PEFT key names', () => {
    const model = loadModel(fixtureDir('gpt2'));
    const model2 = loadModel(fixtureDir('gpt2'));
    try {
      const h = applyLora(model, { r: 3, lora_alpha: 7, lora_dropout: 0.05, target_modules: ['c_attn', 'c_proj'], modules_to_save: ['ln_f'] }, 21);
      randomizeB(h, 8);
      ((h.savedModules.get('transformer.ln_f.weight') as T.Tensor).data as Float32Array)[0] = 1.25;
      const dir = tmpDir();
      saveLoraAdapter(dir, h, { baseModelNameOrPath: 'openai-community/gpt2' });
      const cfg = JSON.parse(fs.readFileSync(path.join(dir, ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
      assert.equal(cfg.peft_type, 'LORA');
      assert.equal(cfg.task_type, 'CAUSAL_LM');
      assert.equal(cfg.fan_in_fan_out, true, 'GPT-2 Conv1D');
      assert.equal(cfg.base_model_name_or_path, 'openai-community/gpt2');
      assert.deepEqual(cfg.target_modules, ['c_attn', 'c_proj']);
      assert.deepEqual(cfg.modules_to_save, ['ln_f']);
      const r = openSafetensorsFile(path.join(dir, ADAPTER_WEIGHTS_FILE));
      const keys = r.tensors.map((t) => t.name);
      r.close();
      assert.ok(keys.includes('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'));
      assert.ok(keys.includes('base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight'));
      assert.ok(keys.includes('base_model.model.transformer.ln_f.weight') && keys.includes('base_model.model.transformer.ln_f.bias'));
      assert.equal(keys.length, 2 * 6 + 2);
      assert.ok(!keys.some((k) => k.includes('.default.')), 'no adapter-name infix');

      const h2 = loadLoraAdapter(model2, dir);
      h.eval(); // loaded adapters start in eval mode; compare without dropout
      assert.deepEqual(h2.config, h.config);
      for (const [k, t] of h.trainableParameters()) assert.deepEqual((h2.trainableParameters().get(k) as T.Tensor).data, t.data, `${k} bit-exact`);
      assert.deepEqual(hidden(model2, IDS), hidden(model, IDS));
      h.dispose();
      h2.dispose();
    } finally {
      model.dispose();
      model2.dispose();
    }
  });

  it('mergeAndSave writes a plain checkpoint computing the adapted model', () => {
    const model = loadModel(fixtureDir('llama'));
    try {
      const h = loadLoraAdapter(model, loraDir('llama_qv'));
      const adapted = tokenLogprobs(model, IDS).flat();
      const dir = tmpDir();
      mergeAndSave(model, h, dir);
      assert.equal(h.state, 'merged');
      const merged = loadModel(dir);
      try {
        assertClose(tokenLogprobs(merged, IDS).flat(), adapted, 1e-5, 0, 'merged checkpoint');
        assert.ok(![...merged.namedParameters().keys()].some((k) => k.includes('lora')));
      } finally {
        merged.dispose();
      }
      h.dispose();
    } finally {
      model.dispose();
    }
  });

  describe('loader errors name the file and the problem', () => {
    const model = loadModel(fixtureDir('llama'));
    after(() => model.dispose());
    /** A copy of a fixture adapter with its config edited. */
    const edited = (edit: (cfg: Record<string, unknown>) => void, name = 'llama_qv'): string => {
      const dir = tmpDir();
      fs.mkdirSync(dir);
      fs.copyFileSync(path.join(loraDir(name), ADAPTER_WEIGHTS_FILE), path.join(dir, ADAPTER_WEIGHTS_FILE));
      const cfg = JSON.parse(fs.readFileSync(path.join(loraDir(name), ADAPTER_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
      edit(cfg);
      fs.writeFileSync(path.join(dir, ADAPTER_CONFIG_FILE), JSON.stringify(cfg, null, 2));
      return dir;
    };
    const nothingAttached = (): void => {
      for (const t of model.namedParameters().values()) assert.equal(adapterOf(t), null);
    };

    it('tensor shapes and key sets are checked against the config and the model', () => {
      const r8 = edited((c) => (c.r = 8));
      assert.throws(
        () => loadLoraAdapter(model, r8),
        (e: Error) => e.message.startsWith(`safetensors ${path.join(r8, ADAPTER_WEIGHTS_FILE)}: `) && /wrong shapes: base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight \[4,32\] \(expected \[8,32\]\)/.test(e.message),
      );
      const more = edited((c) => (c.target_modules = ['q_proj', 'v_proj', 'k_proj']));
      assert.throws(() => loadLoraAdapter(model, more), /4 missing tensors: base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight/);
      const fewer = edited((c) => (c.target_modules = ['q_proj']));
      assert.throws(() => loadLoraAdapter(model, fewer), /4 unexpected tensors: base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight/);
      nothingAttached();
    });

    it('config fields: errors give the line and the field', () => {
      const dora = edited((c) => (c.use_dora = true));
      const line = fs.readFileSync(path.join(dora, ADAPTER_CONFIG_FILE), 'utf8').split('\n').findIndex((l) => l.includes('"use_dora"')) + 1;
      assert.ok(line > 1);
      assert.throws(
        () => loadLoraAdapter(model, dora),
        (e: Error) => e.message === `PEFT adapter config ${path.join(dora, ADAPTER_CONFIG_FILE)}: line ${line}, field 'use_dora': DoRA is not implemented (got true)`,
      );
      assert.throws(() => loadLoraAdapter(model, edited((c) => (c.peft_type = 'IA3'))), /line \d+, field 'peft_type': expected "LORA", got "IA3"/);
      assert.throws(() => loadLoraAdapter(model, edited((c) => (c.r = -1))), /field 'r': expected a positive integer, got -1/);
      assert.throws(() => loadLoraAdapter(model, edited((c) => (c.init_lora_weights = 'pissa'))), /field 'init_lora_weights'/);
      assert.throws(() => loadLoraAdapter(model, edited((c) => (c.rank_pattern = { q_proj: 8 }))), /field 'rank_pattern': per-module ranks is not implemented/);
      assert.throws(() => loadLoraAdapter(model, edited((c) => (c.target_modules = ['nothing_here']))), /adapter_config\.json: field 'target_modules': \["nothing_here"\] selects no projection/);
      const broken = tmpDir();
      fs.mkdirSync(broken);
      fs.writeFileSync(path.join(broken, ADAPTER_CONFIG_FILE), '{\n  "peft_type": "LORA",\n  "r": 4,\n  "lora_alpha": 8\n  "target_modules": ["q_proj"]\n}\n');
      assert.throws(() => loadLoraAdapter(model, broken), /adapter_config\.json: line 5: invalid JSON/);
      assert.throws(() => loadLoraAdapter(model, path.join(tmpRoot, 'missing')), /adapter_config\.json: file not found/);
      nothingAttached();
    });

    it('PEFT adapters a model cannot take are refused (llama adapter on GPT-2)', () => {
      const g = loadModel(fixtureDir('gpt2'));
      try {
        assert.throws(() => loadLoraAdapter(g, loraDir('llama_qv')), /field 'target_modules': \["q_proj","v_proj"\] selects no projection of this gpt2 model/);
      } finally {
        g.dispose();
      }
    });
  });
});

describe('handle lifecycle', () => {
  it('saving works detached; a disposed handle refuses; dispose is idempotent', () => {
    const model = loadModel(fixtureDir('llama'));
    try {
      const h = applyLora(model, { target_modules: ['q_proj'] }, 0);
      h.detach();
      const dir = tmpDir();
      saveLoraAdapter(dir, h, { baseModelNameOrPath: 'x' });
      assert.ok(fs.existsSync(path.join(dir, ADAPTER_WEIGHTS_FILE)));
      h.dispose();
      h.dispose();
      assert.throws(() => saveLoraAdapter(tmpDir(), h, { baseModelNameOrPath: 'x' }), /the LoRA handle was disposed/);
      assert.throws(() => h.trainableParameters(), /disposed/);
    } finally {
      model.dispose();
    }
  });
});
