// LoRA adapters in Hugging Face PEFT's folder layout, so an adapter trained here loads with
// PeftModel.from_pretrained and one trained with PEFT loads here:
//
//   <dir>/adapter_config.json        LoraConfig fields (peft_type "LORA", task_type, r, lora_alpha, target_modules, ...)
//   <dir>/adapter_model.safetensors  base_model.model.<module>.lora_A.weight  [r, in]
//                                    base_model.model.<module>.lora_B.weight  [out, r]
//                                    base_model.model.<param>                  (modules_to_save, full tensors)
//
// Module and parameter names are the model's Hugging Face names ('model.layers.0.self_attn.q_proj',
// 'transformer.h.0.attn.c_attn', 'lm_head.weight'); the adapter-name infix PEFT uses in memory ('.default.')
// is not part of the saved keys. GPT-2's Conv1D projections get fan_in_fan_out = true, as PEFT sets it; the
// tensors have the same shapes either way (PEFT transposes B·A, not A or B).
//
// Loading is strict: every config field alignkit does not implement must be at its default, and the file must
// hold exactly the tensors the config implies, each with its shape. All problems are reported together, in one
// line naming the file (and, for config fields, the line of the field).

import fs from 'node:fs';
import path from 'node:path';
import { CheckpointError, openSafetensorsFile, saveSafetensors } from '../io/index.ts';
import { parseJson, isObject, JsonSyntaxError, type Json } from '../io/json.ts';
import { AlignkitError, fmtShape, noGrad, untracked, type Tensor } from '../tensor/index.ts';
import {
  ALL_LINEAR, LoraHandle, peftLoraKey, peftSavedKey, resolveLoraConfig, resolveSavedModules, resolveTargetModules, type LoraConfig,
} from '../nn/lora.ts';
import type { PretrainedLM } from './base.ts';
import { saveModel, type SavedModel, type SaveModelOptions } from './load.ts';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
const CONFIG_FORMAT = 'PEFT adapter config';
const FOLDER_FORMAT = 'PEFT adapter folder';

// ============================================================================================== saving
/** The task PEFT records: CAUSAL_LM, or SEQ_CLS for a sequence-classification (reward) model. */
function taskType(model: PretrainedLM): 'CAUSAL_LM' | 'SEQ_CLS' {
  return model.config.architecture === 'sequence-classification' ? 'SEQ_CLS' : 'CAUSAL_LM';
}

/**
 * adapter_config.json for a handle. The fields are the ones every PEFT release since 0.7 reads (older
 * releases refuse unknown fields, newer ones fill what is missing with defaults); keys are sorted, as PEFT
 * writes them. 'all-linear' is written as the list of modules it selected, as PEFT does.
 */
export function adapterConfigJson(handle: LoraHandle, baseModelNameOrPath: string): Record<string, unknown> {
  const c = handle.config;
  const targets = c.target_modules === ALL_LINEAR ? handle.targetModules : c.target_modules;
  const fields: Record<string, unknown> = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: baseModelNameOrPath,
    bias: c.bias,
    fan_in_fan_out: handle.fanInFanOut,
    inference_mode: true,
    init_lora_weights: c.init_lora_weights,
    layers_pattern: c.layers_pattern,
    layers_to_transform: c.layers_to_transform,
    loftq_config: {},
    lora_alpha: c.lora_alpha,
    lora_dropout: c.lora_dropout,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: c.modules_to_save,
    peft_type: 'LORA',
    r: c.r,
    rank_pattern: {},
    revision: null,
    target_modules: Array.isArray(targets) ? [...new Set(targets)].sort() : targets,
    task_type: taskType(handle.model),
    use_rslora: c.use_rslora,
  };
  // Written only when used: PEFT releases before 0.14 do not know the field.
  if (c.exclude_modules !== null) fields.exclude_modules = c.exclude_modules;
  return Object.fromEntries(Object.entries(fields).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface SaveLoraAdapterOptions {
  /** Recorded as base_model_name_or_path: the Hub id or folder of the base model the adapter belongs to. */
  baseModelNameOrPath: string;
}

export interface SavedAdapter {
  dir: string;
  /** The files written (names inside dir). */
  files: string[];
}

/**
 * Writes adapter_config.json and adapter_model.safetensors (float32) into `dir`. Both are written into a
 * temporary folder next to `dir` first and moved into place only when complete: a failure leaves `dir` as it was.
 */
export function saveLoraAdapter(dir: string, handle: LoraHandle, opts: SaveLoraAdapterOptions): SavedAdapter {
  const target = path.resolve(dir);
  const fail = (problem: string): CheckpointError => new CheckpointError(FOLDER_FORMAT, target, problem);
  if (handle.state === 'disposed') throw fail('not written: the LoRA handle was disposed');
  if (typeof opts.baseModelNameOrPath !== 'string' || opts.baseModelNameOrPath === '') throw fail('not written: baseModelNameOrPath must be a non-empty string');
  if (fs.existsSync(target) && !fs.statSync(target).isDirectory()) throw fail('not written: exists and is not a directory');
  const tensors: Record<string, Tensor> = Object.fromEntries(handle.trainableParameters());
  const configText = `${JSON.stringify(adapterConfigJson(handle, opts.baseModelNameOrPath), null, 2)}\n`;

  const parent = path.dirname(target);
  fs.mkdirSync(parent, { recursive: true });
  const stage = fs.mkdtempSync(path.join(parent, `.${path.basename(target)}.saving-`));
  const files = [ADAPTER_WEIGHTS_FILE, ADAPTER_CONFIG_FILE];
  try {
    saveSafetensors(path.join(stage, ADAPTER_WEIGHTS_FILE), tensors, { dtype: 'float32', metadata: { format: 'pt' } });
    fs.writeFileSync(path.join(stage, ADAPTER_CONFIG_FILE), configText);
  } catch (e) {
    fs.rmSync(stage, { recursive: true, force: true });
    if (e instanceof CheckpointError) throw e;
    throw fail(`not written: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!fs.existsSync(target)) {
    fs.chmodSync(stage, 0o755);
    fs.renameSync(stage, target);
  } else {
    // The weights first: a reader never sees a new config next to old weights.
    for (const f of files) fs.renameSync(path.join(stage, f), path.join(target, f));
    fs.rmdirSync(stage);
  }
  return { dir: target, files: [...files].sort() };
}

/** Folds the adapters into the base weights (handle.merge()) and saves the model as a plain HF checkpoint. */
export function mergeAndSave(model: PretrainedLM, handle: LoraHandle, outDir: string, opts: SaveModelOptions = {}): SavedModel {
  if (handle.model !== model) throw new AlignkitError('mergeAndSave: the LoRA handle belongs to another model');
  handle.merge();
  return saveModel(model, outDir, opts);
}

// ============================================================================================== loading
function plain(v: Json): unknown {
  if (isObject(v)) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

/** The line a top-level field is written on (PEFT writes one field per line), or null. */
function fieldLine(text: string, field: string): number | null {
  const m = new RegExp(`^[ \\t]*${JSON.stringify(field).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[ \\t]*:`, 'm').exec(text);
  return m ? lineAt(text, m.index) : null;
}

/** Fields that change what the adapter computes, in features alignkit does not implement: they must be at their defaults. */
const UNSUPPORTED: Record<string, string> = {
  use_dora: 'DoRA',
  lora_bias: 'LoRA bias terms',
  rank_pattern: 'per-module ranks',
  alpha_pattern: 'per-module alphas',
  layer_replication: 'layer replication',
  target_parameters: 'LoRA on nn.Parameter targets',
  trainable_token_indices: 'trainable token embeddings',
  alora_invocation_tokens: 'activated LoRA',
  use_qalora: 'QA-LoRA',
  use_bdlora: 'block-diagonal LoRA',
};

function isDefault(v: unknown): boolean {
  return v === undefined || v === null || v === false || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0);
}

/** Reads and checks adapter_config.json; errors name the file, the line and the field. */
export function readAdapterConfig(dir: string): { config: Partial<LoraConfig>; raw: Record<string, unknown>; file: string } {
  const file = path.join(path.resolve(dir), ADAPTER_CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = e instanceof Error && 'code' in e ? e.code : undefined;
    throw new CheckpointError(CONFIG_FORMAT, file, code === 'ENOENT' ? 'file not found (is this a PEFT adapter folder?)' : e instanceof Error ? e.message : String(e));
  }
  let json: Json;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError) throw new CheckpointError(CONFIG_FORMAT, file, `line ${lineAt(text, e.at)}: invalid JSON: ${e.message}`);
    throw e;
  }
  if (!isObject(json)) throw new CheckpointError(CONFIG_FORMAT, file, 'line 1: expected a JSON object');
  const raw = plain(json) as Record<string, unknown>;
  const fail = (field: string, problem: string): CheckpointError => {
    const line = fieldLine(text, field);
    return new CheckpointError(CONFIG_FORMAT, file, `${line === null ? '' : `line ${line}, `}field '${field}': ${problem}`);
  };
  const show = (v: unknown): string => (v === undefined ? 'missing' : JSON.stringify(v));

  if (raw.peft_type !== 'LORA') throw fail('peft_type', `expected "LORA", got ${show(raw.peft_type)}`);
  if (!(raw.task_type === undefined || raw.task_type === null || raw.task_type === 'CAUSAL_LM' || raw.task_type === 'SEQ_CLS'))
    throw fail('task_type', `expected "CAUSAL_LM" or "SEQ_CLS" (alignkit's models), got ${show(raw.task_type)}`);
  for (const [field, what] of Object.entries(UNSUPPORTED))
    if (!isDefault(raw[field])) throw fail(field, `${what} is not implemented (got ${show(raw[field])})`);
  if (raw.r === undefined) throw fail('r', 'missing');
  const expect = (field: string, ok: (v: unknown) => boolean, what: string): void => {
    if (raw[field] !== undefined && !ok(raw[field])) throw fail(field, `expected ${what}, got ${show(raw[field])}`);
  };
  const isNum = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  const isNames = (v: unknown): boolean => Array.isArray(v) && v.every((s) => typeof s === 'string');
  expect('r', (v) => Number.isSafeInteger(v) && (v as number) > 0, 'a positive integer');
  expect('lora_alpha', isNum, 'a number');
  expect('lora_dropout', (v) => isNum(v) && (v as number) >= 0 && (v as number) < 1, 'a number in [0, 1)');
  expect('target_modules', (v) => v === null || typeof v === 'string' || (isNames(v) && (v as string[]).length > 0), 'a non-empty list of module names or a regular expression');
  expect('exclude_modules', (v) => v === null || typeof v === 'string' || isNames(v), 'a list of module names or a regular expression');
  expect('modules_to_save', (v) => v === null || isNames(v), 'null or a list of module names');
  expect('layers_to_transform', (v) => v === null || Number.isSafeInteger(v) || (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))), 'null, a layer index or a list of them');
  expect('layers_pattern', (v) => v === null || typeof v === 'string' || isNames(v), 'null, a name or a list of names');
  expect('use_rslora', (v) => typeof v === 'boolean', 'a boolean');
  expect('fan_in_fan_out', (v) => typeof v === 'boolean', 'a boolean');
  expect('bias', (v) => v === 'none', '"none" (bias training is not implemented)');
  // pissa / olora / corda / loftq / eva rewrite the base weights at init: the adapter alone does not reproduce them.
  expect('init_lora_weights', (v) => v === true || v === false || v === 'gaussian', 'true, false or "gaussian" (initialisations that modify the base weights are not implemented)');

  const config: Partial<LoraConfig> = {
    r: raw.r as number,
    lora_alpha: raw.lora_alpha as number | undefined,
    lora_dropout: raw.lora_dropout as number | undefined,
    use_rslora: raw.use_rslora as boolean | undefined,
    bias: 'none',
    init_lora_weights: raw.init_lora_weights as boolean | 'gaussian' | undefined,
    modules_to_save: (raw.modules_to_save as string[] | null | undefined) ?? null,
    exclude_modules: (raw.exclude_modules as string[] | string | null | undefined) ?? null,
    layers_to_transform: (raw.layers_to_transform as number[] | number | null | undefined) ?? null,
    layers_pattern: (raw.layers_pattern as string[] | string | null | undefined) ?? null,
  };
  if (raw.target_modules !== undefined && raw.target_modules !== null) config.target_modules = raw.target_modules as string[] | string;
  return { config, raw, file };
}

export interface LoadLoraAdapterOptions {
  /** A and B (and modules_to_save) require grad, and the handle starts in training mode (default false, as PEFT's is_trainable). */
  trainable?: boolean;
  /** Seed of the dropout masks (default 0). */
  dropoutSeed?: number;
}

/**
 * Loads a PEFT LoRA adapter folder onto `model` and attaches it. The config and every tensor are checked
 * against the model first; nothing is attached when anything is wrong.
 */
export function loadLoraAdapter(model: PretrainedLM, dir: string, opts: LoadLoraAdapterOptions = {}): LoraHandle {
  if (model.isDisposed) throw new AlignkitError('loadLoraAdapter: the model was disposed');
  const { config: partial, file: configFile } = readAdapterConfig(dir);
  let config;
  let modules: string[];
  let saved: string[];
  try {
    config = resolveLoraConfig(partial, model);
    modules = resolveTargetModules(model, config, false);
    saved = resolveSavedModules(model, config, false);
  } catch (e) {
    if (e instanceof AlignkitError && !(e instanceof CheckpointError)) {
      const field = /^LoraConfig\.(\w+)/.exec(e.message)?.[1];
      throw new CheckpointError(CONFIG_FORMAT, configFile, `${field ? `field '${field}': ` : ''}${e.message.replace(/^LoraConfig\.\w+: /, '')}`);
    }
    throw e;
  }

  const weightsFile = path.join(path.resolve(dir), ADAPTER_WEIGHTS_FILE);
  if (!fs.existsSync(weightsFile) && fs.existsSync(path.join(path.resolve(dir), 'adapter_model.bin')))
    throw new CheckpointError('safetensors', weightsFile, 'file not found; the folder has adapter_model.bin (PyTorch pickle), which alignkit does not read: re-save it with safetensors');
  const reader = openSafetensorsFile(weightsFile);
  try {
    const params = model.namedParameters();
    const expected = new Map<string, readonly number[]>();
    for (const m of modules) {
      const [out, inp] = (params.get(`${m}.weight`) as Tensor).shape;
      expected.set(peftLoraKey(m, 'A'), [config.r, inp]);
      expected.set(peftLoraKey(m, 'B'), [out, config.r]);
    }
    for (const n of saved) expected.set(peftSavedKey(n), (params.get(n) as Tensor).shape);
    const missing: string[] = [];
    const wrongShape: string[] = [];
    const wrongDtype: string[] = [];
    for (const [key, shape] of expected) {
      if (!reader.has(key)) {
        missing.push(key);
        continue;
      }
      const info = reader.info(key);
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) wrongShape.push(`${key} ${fmtShape(info.shape)} (expected ${fmtShape(shape)})`);
      else if (!['F32', 'F16', 'BF16', 'F64'].includes(info.dtype)) wrongDtype.push(`${key} ${info.dtype}`);
    }
    const unexpected = reader.tensors.map((t) => t.name).filter((n) => !expected.has(n));
    const problems: string[] = [];
    const listed = (what: string, items: string[]): string =>
      `${items.length} ${what}${items.length === 1 ? '' : 's'}: ${items.slice(0, 8).join(', ')}${items.length > 8 ? `, ... (${items.length - 8} more)` : ''}`;
    if (missing.length) problems.push(listed('missing tensor', missing));
    if (unexpected.length) problems.push(listed('unexpected tensor', unexpected));
    if (wrongShape.length) problems.push(listed('wrong shape', wrongShape));
    if (wrongDtype.length) problems.push(listed('non-float tensor', wrongDtype));
    if (problems.length)
      throw new CheckpointError('safetensors', weightsFile, `does not match ${ADAPTER_CONFIG_FILE} (r ${config.r}, ${modules.length} target modules) on this ${model.config.modelType} model: ${problems.join('; ')}`);

    const adapters = new Map<string, { A: Tensor; B: Tensor }>();
    const savedValues = new Map<string, Tensor>();
    const owned: Tensor[] = [];
    try {
      untracked(() =>
        noGrad(() => {
          for (const m of modules) {
            const A = reader.load(peftLoraKey(m, 'A'));
            owned.push(A);
            const B = reader.load(peftLoraKey(m, 'B'));
            owned.push(B);
            adapters.set(m, { A, B });
          }
          for (const n of saved) {
            const t = reader.load(peftSavedKey(n));
            owned.push(t);
            savedValues.set(n, t);
          }
        }),
      );
      const trainable = opts.trainable ?? false;
      const handle = new LoraHandle(model, config, { adapters, savedValues, trainable, training: trainable, dropoutSeed: opts.dropoutSeed ?? 0 });
      for (const t of savedValues.values()) t.dispose();
      return handle;
    } catch (e) {
      for (const t of owned) t.dispose();
      throw e;
    }
  } finally {
    reader.close();
  }
}
