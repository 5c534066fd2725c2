// Loading and saving Hugging Face model folders (config.json + safetensors, single or sharded).
//
// Loading is strict: every tensor the architecture declares must be present with the right shape, and every
// tensor in the file must be used. All problems are reported together, in one line naming the file:
//   safetensors /m/model.safetensors: 1 missing tensor: model.norm.weight; 1 wrong shape: lm_head.weight [10,8] (expected [128,8])
// The only tensors skipped silently are ones transformers itself ignores: GPT-2's attention mask buffers
// (attn.bias / attn.masked_bias), rotary inv_freq buffers, and lm_head.weight in a tied checkpoint.
//
// Weights are computed in float32; each tensor's stored dtype (F32 / BF16 / F16) is remembered so a save writes
// it back in that dtype, which makes HF -> alignkit -> HF bit-exact (bfloat16/float16 -> float32 is exact, and
// rounding back to the same format returns the same bits). GPT-2's Conv1D weights are stored [in, out]: they are
// transposed to [out, in] on load and back on save.
//
// Saving is all-or-nothing: everything is written into a temporary folder next to the destination, then moved
// into place; a failure before that leaves the destination untouched.

import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError, openSafetensors, saveSafetensorsSharded, type SafetensorsReader, type SafetensorsTensorInfo } from '../io/index.ts';
import { cast, contiguous, fmtShape, noGrad, tidy, transpose, untracked, type Tensor } from '../tensor/index.ts';
import { diskShape, type ParamSpec } from '../nn/params.ts';
import { PretrainedLM, type CheckpointInfo, type StoredDType } from './base.ts';
import { readModelConfig, type HfModelConfig } from './config.ts';
import { Gpt2Model, gpt2ParamSpecs } from './gpt2.ts';
import { SCORE_HEAD_WEIGHT, ScoreHead, VALUE_HEAD_BIAS, VALUE_HEAD_WEIGHT, ValueHead } from './heads.ts';
import { LlamaModel, llamaParamSpecs } from './llama.ts';

/** The tensors an architecture declares (body + LM head), and its base-model name prefix. */
export function modelSpecs(config: HfModelConfig, std = 0.02): { specs: ParamSpec[]; basePrefix: string } {
  return config.family === 'gpt2' ? { specs: gpt2ParamSpecs(config, std), basePrefix: 'transformer.' } : { specs: llamaParamSpecs(config, std), basePrefix: 'model.' };
}

/** Builds the model object for a config from parameters keyed by HF name. */
export function createModel(config: HfModelConfig, params: Map<string, Tensor>, checkpoint: CheckpointInfo): PretrainedLM {
  return config.family === 'gpt2' ? new Gpt2Model(config, params, checkpoint) : new LlamaModel(config, params, checkpoint);
}

export interface LoadModelOptions {
  /** Parameters require grad (default true, like a freshly loaded PyTorch model); false freezes them. */
  trainable?: boolean;
}

const STORED: Partial<Record<SafetensorsTensorInfo['dtype'], StoredDType>> = { F32: 'float32', BF16: 'bfloat16', F16: 'float16', F64: 'float32' };

function listed(what: string, items: string[]): string {
  const shown = items.slice(0, 8).join(', ');
  return `${items.length} ${what}${items.length === 1 ? '' : 's'}: ${shown}${items.length > 8 ? `, ... (${items.length - 8} more)` : ''}`;
}

/** Loads a Hugging Face model folder: config.json (+ generation_config.json) and model.safetensors(.index.json). */
export function loadModel(dir: string, opts: LoadModelOptions = {}): PretrainedLM {
  const config = readModelConfig(dir);
  const reader = openSafetensors(dir);
  try {
    return loadFrom(config, reader, dir, opts.trainable ?? true);
  } finally {
    reader.close();
  }
}

function loadFrom(config: HfModelConfig, reader: SafetensorsReader, dir: string, trainable: boolean): PretrainedLM {
  const { specs, basePrefix } = modelSpecs(config);
  const infos = new Map(reader.tensors.map((t) => [t.name, t]));
  // Checkpoints saved from the base model (GPT2Model, e.g. the original 'gpt2' repo) lack the prefix.
  const unprefixed = !infos.has(specs[0].name) && infos.has(specs[0].name.slice(basePrefix.length));
  const diskName = (name: string): string => (unprefixed && name.startsWith(basePrefix) ? name.slice(basePrefix.length) : name);

  // Heads: a score head for *ForSequenceClassification (or whenever score.weight is present), a value head when
  // v_head.* is present.
  const C = config.hiddenSize;
  const all = [...specs];
  const scoreInfo = infos.get(SCORE_HEAD_WEIGHT);
  if (config.architecture === 'sequence-classification' || scoreInfo) {
    const labels = config.numLabels ?? (scoreInfo && scoreInfo.shape.length === 2 ? scoreInfo.shape[0] : 1);
    all.push({ name: SCORE_HEAD_WEIGHT, shape: [labels, C], init: { kind: 'normal', std: 0.02 } });
  }
  if (infos.has(VALUE_HEAD_WEIGHT) || infos.has(VALUE_HEAD_BIAS))
    all.push({ name: VALUE_HEAD_WEIGHT, shape: [1, C], init: { kind: 'zeros' } }, { name: VALUE_HEAD_BIAS, shape: [1], init: { kind: 'zeros' } });

  const missing: string[] = [];
  const wrongShape: string[] = [];
  const wrongDtype: string[] = [];
  const used = new Set<string>();
  for (const s of all) {
    const dn = diskName(s.name);
    const info = infos.get(dn);
    if (!info) {
      missing.push(dn);
      continue;
    }
    used.add(dn);
    const want = diskShape(s);
    if (info.shape.length !== want.length || info.shape.some((d, i) => d !== want[i])) wrongShape.push(`${dn} ${fmtShape(info.shape)} (expected ${fmtShape(want)})`);
    else if (!STORED[info.dtype]) wrongDtype.push(`${dn} ${info.dtype}`);
  }
  const ignorable = (name: string): boolean =>
    (config.family === 'gpt2' && /(^|\.)h\.\d+\.attn\.(bias|masked_bias)$/.test(name)) ||
    /(^|\.)rotary_emb\.inv_freq$/.test(name) ||
    (name === 'lm_head.weight' && config.tieWordEmbeddings);
  const unexpected = reader.tensors.map((t) => t.name).filter((n) => !used.has(n) && !ignorable(n));
  const problems: string[] = [];
  if (missing.length) problems.push(listed('missing tensor', missing));
  if (unexpected.length) problems.push(listed('unexpected tensor', unexpected));
  if (wrongShape.length) problems.push(listed('wrong shape', wrongShape));
  if (wrongDtype.length) problems.push(listed('non-float tensor', wrongDtype));
  if (problems.length)
    throw new CheckpointError('safetensors', reader.path, `does not match ${config.modelType} config.json (${config.architectures.join(', ') || config.architecture}): ${problems.join('; ')}`);

  const params = new Map<string, Tensor>();
  const dtypes = new Map<string, StoredDType>();
  try {
    untracked(() =>
      noGrad(() => {
        for (const s of all) {
          const dn = diskName(s.name);
          let t = reader.load(dn);
          if (s.conv1d) {
            // Nothing scopes these (untracked): the view must be disposed too, or it keeps the stored buffer
            // alive until Node's GC (GPT-2 124M: 324 MiB held through training).
            const stored = t;
            const view = transpose(stored, 0, 1);
            t = contiguous(view);
            view.dispose();
            stored.dispose();
          }
          t.name = s.name;
          t.requireGrad(trainable);
          params.set(s.name, t);
          dtypes.set(s.name, STORED[reader.info(dn).dtype] as StoredDType);
        }
      }),
    );
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  const take = (name: string): Tensor | null => {
    const t = params.get(name) ?? null;
    params.delete(name);
    return t;
  };
  const score = take(SCORE_HEAD_WEIGHT);
  const vw = take(VALUE_HEAD_WEIGHT);
  const vb = take(VALUE_HEAD_BIAS);
  const model = createModel(config, params, { dir: path.resolve(dir), dtypes, unprefixed });
  if (score) model.scoreHead = new ScoreHead(score);
  if (vw && vb) model.valueHead = new ValueHead(vw, vb);
  return model;
}

// ============================================================================================== saving
export interface SaveModelOptions {
  /** 'original' (default): every tensor in the dtype it was loaded with (float32 when new); or one dtype for all. */
  dtype?: 'original' | StoredDType;
  /** Shard size limit in bytes (default 5 GB, as transformers). */
  maxShardBytes?: number;
  /** Copy tokenizer files from this folder (default: the folder the model was loaded from); null copies none. */
  tokenizerDir?: string | null;
}

export interface SavedModel {
  dir: string;
  /** The files written (names inside dir). */
  files: string[];
}

/** Tokenizer files copied alongside a saved model when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'vocab.json', 'merges.txt',
  'tokenizer.model', 'spiece.model', 'vocab.txt', 'chat_template.jinja', 'chat_template.json',
];

/** config.json as it should be written for this model (the original fields, with the dtype updated). */
function configJson(model: PretrainedLM, mainDtype: StoredDType): Record<string, unknown> {
  const raw: Record<string, unknown> = { ...model.config.raw };
  if ('torch_dtype' in raw && !('dtype' in raw)) raw.torch_dtype = mainDtype;
  else raw.dtype = mainDtype;
  return raw;
}

function generationConfigJson(model: PretrainedLM): Record<string, unknown> | null {
  const c = model.config;
  if (c.generationConfig) return c.generationConfig;
  if (c.architecture !== 'causal-lm') return null;
  const g: Record<string, unknown> = { _from_model_config: true };
  if (c.bosTokenId !== null) g.bos_token_id = c.bosTokenId;
  if (c.eosTokenIds.length) g.eos_token_id = c.eosTokenIds.length === 1 ? c.eosTokenIds[0] : c.eosTokenIds;
  if (c.padTokenId !== null) g.pad_token_id = c.padTokenId;
  if (typeof c.raw.transformers_version === 'string') g.transformers_version = c.raw.transformers_version;
  return g;
}

function jsonText(v: unknown): string {
  return `${JSON.stringify(v, null, 2)}\n`;
}

/**
 * Writes `model` as a Hugging Face folder: config.json, model.safetensors (sharded beyond maxShardBytes, with
 * model.safetensors.index.json), generation_config.json, and the tokenizer files of the source folder.
 */
export function saveModel(model: PretrainedLM, dir: string, opts: SaveModelOptions = {}): SavedModel {
  const target = path.resolve(dir);
  const fail = (problem: string): CheckpointError => new CheckpointError('model folder', target, problem);
  if (model.isDisposed) throw fail('not written: the model was disposed');
  const want = opts.dtype ?? 'original';
  if (!['original', 'float32', 'bfloat16', 'float16'].includes(want)) throw fail(`not written: dtype '${String(want)}' is not original, float32, bfloat16 or float16`);
  const maxShardBytes = opts.maxShardBytes ?? 5_000_000_000;
  const tokenizerDir = opts.tokenizerDir === undefined ? model.checkpoint.dir : opts.tokenizerDir;
  const specs = new Map(modelSpecs(model.config).specs.map((s) => [s.name, s]));
  const named = model.namedParameters();
  for (const [name, t] of named) if (t.disposed) throw fail(`not written: parameter '${name}' ${fmtShape(t.shape)} was disposed`);
  if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) throw fail('not written: exists and is not a directory');
  const tokenizerFiles = tokenizerDir ? TOKENIZER_FILES.filter((f) => fs.existsSync(path.join(tokenizerDir, f))) : [];

  const counts = new Map<StoredDType, number>();
  return tidy(() =>
    noGrad(() => {
      // Every tensor in its on-disk form (name prefix, Conv1D layout, dtype) before anything touches the disk.
      const tensors: Record<string, Tensor> = {};
      for (const [name, p] of named) {
        const dtype: StoredDType = want === 'original' ? (model.checkpoint.dtypes.get(name) ?? 'float32') : want;
        counts.set(dtype, (counts.get(dtype) ?? 0) + p.size);
        let t = specs.get(name)?.conv1d ? contiguous(transpose(p, 0, 1)) : p;
        if (dtype !== 'float32' || t.dtype !== 'float32') t = cast(t, dtype);
        const unprefixed = model.checkpoint.unprefixed && name.startsWith(model.basePrefix);
        tensors[unprefixed ? name.slice(model.basePrefix.length) : name] = t;
      }
      let mainDtype: StoredDType = 'float32';
      for (const [d, n] of counts) if (n > (counts.get(mainDtype) ?? 0)) mainDtype = d;
      const texts: [string, string][] = [['config.json', jsonText(configJson(model, mainDtype))]];
      const gen = generationConfigJson(model);
      if (gen) texts.push(['generation_config.json', jsonText(gen)]);

      const parent = path.dirname(target);
      fs.mkdirSync(parent, { recursive: true });
      const stage = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.saving-`));
      let files: string[];
      try {
        const saved = saveSafetensorsSharded(stage, tensors, { maxShardBytes, metadata: { format: 'pt' } });
        for (const [name, text] of texts) fs.writeFileSync(path.join(stage, name), text);
        for (const f of tokenizerFiles) fs.copyFileSync(path.join(tokenizerDir as string, f), path.join(stage, f));
        files = fs.readdirSync(stage).sort();
        for (const f of [...saved.files, ...(saved.index ? [saved.index] : [])]) if (!files.includes(path.basename(f))) throw new Error(`${f} missing after write`);
      } catch (e) {
        fs.rmSync(stage, { recursive: true, force: true });
        if (e instanceof CheckpointError) throw e;
        throw fail(`not written: ${e instanceof Error ? e.message : String(e)}`);
      }
      publish(stage, target, files);
      return { dir: target, files };
    }),
  );
}

/** Moves the staged files into place: a rename of the whole folder when new, else file by file. */
function publish(stage: string, target: string, files: string[]): void {
  if (!fs.existsSync(target)) {
    fs.chmodSync(stage, 0o755);
    fs.renameSync(stage, target);
    return;
  }
  for (const f of files) fs.renameSync(path.join(stage, f), path.join(target, f));
  fs.rmdirSync(stage);
  // Shards of an earlier, differently split save would otherwise shadow or confuse the new checkpoint.
  const ours = new Set(files);
  for (const f of fs.readdirSync(target))
    if (/^model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?$/.test(f) && !ours.has(f)) fs.rmSync(path.join(target, f), { force: true });
}
