// LoRA (Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", 2021), in the layout of Hugging Face
// PEFT so adapters move between alignkit and PEFT unchanged.
//
// A frozen projection y = x Wᵀ + b (W [out, in]) gets a trainable low-rank update:
//   y = x Wᵀ + b + scaling · B(A(dropout(x)))        A [r, in], B [out, r]
//   scaling = lora_alpha / r   (or lora_alpha / sqrt(r) with use_rslora, Kalajdzievski 2023)
// PEFT's default init: A ~ kaiming_uniform(a = sqrt(5)) = U(±1/sqrt(in)), B = 0, so an adapted model starts out
// equal to its base model. merge() folds the update into W (W += scaling · B A) for adapter-free inference.
//
// The hook: every model projection calls project(x, W, b) instead of linear(x, W, b). Adapters are kept in a
// module-level WeakMap keyed by the weight tensor, so attaching one changes no model code and a projection
// without an adapter runs exactly linear() (same numbers, no extra work). All adapters of one handle share a
// runtime: the training flag (dropout only while training) and a seeded dropout Generator (deterministic runs).
//
// Module names are the Hugging Face ones without the '.weight' suffix ('model.layers.0.self_attn.q_proj',
// 'transformer.h.0.attn.c_attn'); PEFT's target_modules matching applies to them (see resolveTargetModules).

import {
  AlignkitError, Generator, ShapeError, addInto, copyTensor, dropout, fmtShape, fromOp, full, linear, matmul, mul, noGrad, rand, randn, tidy,
  uninitialized, untracked, type Tensor,
} from '../tensor/index.ts';
import type { FloatArray } from '../backend/index.ts';
import type { PretrainedLM } from '../models/base.ts';

// ============================================================================================== the hook
/** Shared by every adapter of one handle. */
export interface LoraRuntime {
  /** Dropout is applied only while training. */
  training: boolean;
  /** The stream the dropout masks are drawn from (checkpoint it with getState / setState). */
  readonly generator: Generator;
}

/** One attached low-rank update of a projection weight W [out, in]. */
export interface LoraAdapter {
  readonly A: Tensor; // [r, in]
  readonly B: Tensor; // [out, r]
  readonly scaling: number;
  /** Dropout probability on the adapter's input (0 = none). */
  readonly dropout: number;
  readonly runtime: LoraRuntime;
}

const attached = new WeakMap<Tensor, LoraAdapter>();

/** Attaches an adapter to a projection weight; project() picks it up from then on. */
export function attachAdapter(weight: Tensor, adapter: LoraAdapter): void {
  const what = weight.name ?? `tensor #${weight.id}`;
  if (attached.has(weight)) throw new AlignkitError(`LoRA: ${what} already has an adapter attached (detach or merge the other one first)`);
  if (weight.rank !== 2) throw new ShapeError(`LoRA: ${what} must be a projection weight [out, in], got ${fmtShape(weight.shape)}`);
  const [out, inp] = weight.shape;
  const { A, B } = adapter;
  if (A.rank !== 2 || B.rank !== 2 || A.shape[1] !== inp || B.shape[0] !== out || B.shape[1] !== A.shape[0])
    throw new ShapeError(`LoRA: ${what} ${fmtShape(weight.shape)} needs A [r,${inp}] and B [${out},r], got A ${fmtShape(A.shape)} and B ${fmtShape(B.shape)}`);
  if (!Number.isFinite(adapter.scaling)) throw new RangeError(`LoRA: ${what}: scaling must be finite, got ${adapter.scaling}`);
  if (!(adapter.dropout >= 0 && adapter.dropout < 1)) throw new RangeError(`LoRA: ${what}: dropout must be in [0, 1), got ${adapter.dropout}`);
  attached.set(weight, adapter);
}

/** Removes the adapter of a weight (if any) and returns it. */
export function detachAdapter(weight: Tensor): LoraAdapter | null {
  const a = attached.get(weight) ?? null;
  attached.delete(weight);
  return a;
}

export function adapterOf(weight: Tensor): LoraAdapter | null {
  return attached.get(weight) ?? null;
}

/**
 * Whether the weight's adapter has a trainable tensor. The models ask this to decide whether a forward records
 * an autograd graph: with LoRA the base weights are frozen but the graph is still needed for A and B.
 */
export function adapterTrainable(weight: Tensor): boolean {
  const a = attached.get(weight);
  return a !== undefined && (a.A.requiresGrad || a.B.requiresGrad);
}

/**
 * A model projection: linear(x, weight, bias) [..., out], plus scaling · B(A(dropout(x))) when an adapter is
 * attached to `weight` (x [..., in]).
 */
/** While > 0, project() ignores every adapter: the base model, without a second copy (DPO's LoRA reference). */
let adaptersDisabled = 0;

/** Runs fn with every LoRA adapter switched off (the base model's function), e.g. for reference log-probs. */
export function withAdaptersDisabled<T>(fn: () => T): T {
  adaptersDisabled++;
  try {
    return fn();
  } finally {
    adaptersDisabled--;
  }
}

export function project(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const adapter = adaptersDisabled > 0 ? undefined : attached.get(weight);
  if (!adapter) return linear(x, weight, bias);
  const dropped = adapter.runtime.training && adapter.dropout > 0 ? dropout(x, adapter.dropout, true, adapter.runtime.generator) : null;
  const low = linear(dropped ?? x, adapter.A); // [..., r]
  const out = lowRankProjection(x, weight, bias, low, adapter.B, adapter.scaling);
  // Without an autograd graph nothing refers to the intermediates any more: free them now rather than at the
  // end of the enclosing scope (a forward without grad runs many projections per scope).
  if (!out.gradNode) for (const t of [dropped, low]) t?.dispose();
  return out;
}

// out = x Wᵀ + b + s · low Bᵀ     x [N, I], W [O, I], b [O], low [N, r] (= dropout(x) Aᵀ), B [O, r]
// dx = g W;  dW = gᵀ x;  db = Σ_rows g;  dlow = s · g B;  dB = s · gᵀ low          (g = dout [N, O])
// One output buffer: the base product and the scaled update are accumulated into it by two GEMMs (beta = 1,
// alpha = s), instead of materialising x Wᵀ, low Bᵀ and s · low Bᵀ as three more [N, O] activations that
// training keeps alive until backward (≈ 7 MB per adapted projection at 1024 tokens × 576).
function lowRankProjection(x: Tensor, weight: Tensor, bias: Tensor | null, low: Tensor, B: Tensor, s: number): Tensor {
  const [O, I] = weight.shape;
  const r = B.shape[1];
  if (x.shape[x.rank - 1] !== I || B.shape[0] !== O || low.shape[low.rank - 1] !== r) {
    throw new ShapeError(`LoRA projection: x ${fmtShape(x.shape)}, W ${fmtShape(weight.shape)}, low ${fmtShape(low.shape)}, B ${fmtShape(B.shape)} do not fit`);
  }
  const N = x.size / I;
  const be = x.backend;
  const out = uninitialized([...x.shape.slice(0, -1), O], be);
  const od = out.storage.data as FloatArray;
  if (bias) {
    const bd = bias.data as FloatArray;
    for (let row = 0; row < N; row++) od.set(bd, row * O);
  }
  const gemm = (transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, a: FloatArray, b: FloatArray, beta: number, c: FloatArray): void =>
    be.sgemm({ transA, transB, m, n, k, alpha, a, lda: transA ? m : k, strideA: 0, b, ldb: transB ? k : n, strideB: 0, beta, c, ldc: n, strideC: 0, batch: 1 });
  gemm(false, true, N, O, I, 1, x.data as FloatArray, weight.data as FloatArray, bias ? 1 : 0, od);
  gemm(false, true, N, O, r, s, low.data as FloatArray, B.data as FloatArray, 1, od);
  return fromOp(out, 'loraProjection', [x, weight, bias, low, B], (g) => {
    const gd = g.data as FloatArray;
    const grad = (want: boolean, shape: readonly number[], fill: (c: FloatArray) => void): Tensor | null => {
      if (!want) return null;
      const t = uninitialized(shape, be);
      fill(t.storage.data as FloatArray);
      return t;
    };
    const dx = grad(x.requiresGrad, x.shape, (c) => gemm(false, false, N, I, O, 1, gd, weight.data as FloatArray, 0, c));
    const dw = grad(weight.requiresGrad, [O, I], (c) => gemm(true, false, O, I, N, 1, gd, x.data as FloatArray, 0, c));
    const db = grad(bias?.requiresGrad ?? false, [O], (c) => {
      const acc = new Float64Array(O);
      for (let row = 0; row < N; row++) for (let j = 0; j < O; j++) acc[j] += gd[row * O + j];
      c.set(acc);
    });
    const dlow = grad(low.requiresGrad, low.shape, (c) => gemm(false, false, N, r, O, s, gd, B.data as FloatArray, 0, c));
    const dB = grad(B.requiresGrad, [O, r], (c) => gemm(true, false, O, r, N, s, gd, low.data as FloatArray, 0, c));
    return [dx, dw, db, dlow, dB];
  });
}

// ============================================================================================== configuration
/** The LoRA fields of PEFT's LoraConfig that alignkit implements (PEFT's names and defaults). */
export interface LoraConfig {
  /** Rank of the update (PEFT default 8). */
  r: number;
  /** scaling = lora_alpha / r (PEFT default 8). */
  lora_alpha: number;
  /** Dropout probability on the adapter input while training (PEFT default 0). */
  lora_dropout: number;
  /**
   * Which projections get an adapter: a list of names, each matching a module whose name equals it or ends
   * with '.' + it; 'all-linear' for every projection except the LM head; any other string is a regular
   * expression that must match a whole module name (PEFT's re.fullmatch). Default: PEFT's per-architecture
   * default (q_proj and v_proj for the Llama family, c_attn for GPT-2).
   */
  target_modules: string[] | string;
  /** Names (same matching) or a full-match regex of projections to leave alone. */
  exclude_modules?: string[] | string | null;
  /** Only adapt projections of these layer indices (PEFT's layers_to_transform). */
  layers_to_transform?: number[] | number | null;
  /** The module-list names the layer index follows ('layers', 'h'); null = the first numbered segment. */
  layers_pattern?: string[] | string | null;
  /** scaling = lora_alpha / sqrt(r) instead of lora_alpha / r. */
  use_rslora?: boolean;
  /**
   * Whole modules trained in full next to the adapters and saved with them (e.g. 'lm_head', 'score'):
   * same name matching, against a parameter's module and every enclosing module.
   */
  modules_to_save?: string[] | null;
  /** Only 'none' (no bias training) is implemented. */
  bias?: 'none';
  /** true: PEFT's default (A kaiming-uniform, B = 0); 'gaussian': A ~ N(0, std 1/r), B = 0; false: B random too. */
  init_lora_weights?: boolean | 'gaussian';
}

/** PEFT's defaults (target_modules excepted: it depends on the architecture). */
export const LORA_DEFAULTS = { r: 8, lora_alpha: 8, lora_dropout: 0, use_rslora: false, bias: 'none', init_lora_weights: true } as const;

/** A LoraConfig with every field present (null where PEFT writes null). */
export interface ResolvedLoraConfig {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string;
  exclude_modules: string[] | string | null;
  layers_to_transform: number[] | number | null;
  layers_pattern: string[] | string | null;
  use_rslora: boolean;
  modules_to_save: string[] | null;
  bias: 'none';
  init_lora_weights: boolean | 'gaussian';
}

/** PEFT's default target_modules per model_type (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
export function defaultTargetModules(model: PretrainedLM): string[] {
  return model.config.family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

export const ALL_LINEAR = 'all-linear';

function checkNames(field: string, v: unknown, allowString: boolean): string[] | string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') {
    if (!allowString) throw new AlignkitError(`LoraConfig.${field}: expected a list of module names, got a string`);
    if (v !== ALL_LINEAR) regexOf(field, v);
    return v;
  }
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s === ''))
    throw new AlignkitError(`LoraConfig.${field}: expected a list of non-empty module names${allowString ? ' or a string' : ''}, got ${JSON.stringify(v)}`);
  return [...(v as string[])];
}

/** Fills PEFT's defaults and checks every field; errors name the field. */
export function resolveLoraConfig(cfg: Partial<LoraConfig>, model: PretrainedLM): ResolvedLoraConfig {
  const r = cfg.r ?? LORA_DEFAULTS.r;
  if (!Number.isSafeInteger(r) || r < 1) throw new AlignkitError(`LoraConfig.r: must be a positive integer, got ${r}`);
  const alpha = cfg.lora_alpha ?? LORA_DEFAULTS.lora_alpha;
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new AlignkitError(`LoraConfig.lora_alpha: must be a finite number, got ${String(alpha)}`);
  const p = cfg.lora_dropout ?? LORA_DEFAULTS.lora_dropout;
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) throw new AlignkitError(`LoraConfig.lora_dropout: must be in [0, 1), got ${String(p)}`);
  const target = checkNames('target_modules', cfg.target_modules ?? defaultTargetModules(model), true) as string[] | string;
  if (Array.isArray(target) && target.length === 0) throw new AlignkitError('LoraConfig.target_modules: the list is empty');
  const exclude = checkNames('exclude_modules', cfg.exclude_modules, true);
  const save = checkNames('modules_to_save', cfg.modules_to_save, false) as string[] | null;
  const layers = cfg.layers_to_transform ?? null;
  if (layers !== null && !(Number.isSafeInteger(layers) || (Array.isArray(layers) && layers.every((l) => Number.isSafeInteger(l)))))
    throw new AlignkitError(`LoraConfig.layers_to_transform: expected a layer index or a list of them, got ${JSON.stringify(layers)}`);
  const pattern = checkNames('layers_pattern', cfg.layers_pattern, true);
  const bias = cfg.bias ?? LORA_DEFAULTS.bias;
  if (bias !== 'none') throw new AlignkitError(`LoraConfig.bias: only 'none' is implemented, got ${JSON.stringify(bias)}`);
  const init = cfg.init_lora_weights ?? LORA_DEFAULTS.init_lora_weights;
  if (init !== true && init !== false && init !== 'gaussian')
    throw new AlignkitError(`LoraConfig.init_lora_weights: true, false or 'gaussian' are implemented, got ${JSON.stringify(init)}`);
  const rslora = cfg.use_rslora ?? LORA_DEFAULTS.use_rslora;
  if (typeof rslora !== 'boolean') throw new AlignkitError(`LoraConfig.use_rslora: expected a boolean, got ${JSON.stringify(rslora)}`);
  return {
    r, lora_alpha: alpha, lora_dropout: p, target_modules: target, exclude_modules: exclude, layers_to_transform: layers,
    layers_pattern: pattern, use_rslora: rslora, modules_to_save: save && save.length ? save : null, bias, init_lora_weights: init,
  };
}

/** lora_alpha / r, or lora_alpha / sqrt(r) (rank-stabilised LoRA). */
export function loraScaling(r: number, loraAlpha: number, useRslora = false): number {
  return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
}

// ============================================================================================== module names
/** The projections project() serves, per block, by family. The LM head is not one of them. */
const PROJECTIONS: Record<'llama' | 'gpt2', { block: (i: number) => string; names: string[] }> = {
  llama: {
    block: (i) => `model.layers.${i}.`,
    names: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'],
  },
  gpt2: { block: (i) => `transformer.h.${i}.`, names: ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] },
};

/** Every projection module of the model that LoRA can adapt, in layer order. */
export function projectionModules(model: PretrainedLM): string[] {
  const p = PROJECTIONS[model.config.family];
  const out: string[] = [];
  for (let i = 0; i < model.config.numLayers; i++) for (const n of p.names) out.push(p.block(i) + n);
  return out;
}

/** PEFT's name rule: the entry is the whole name or its dotted suffix. */
export function nameMatches(name: string, entry: string): boolean {
  return name === entry || name.endsWith(`.${entry}`);
}

function regexOf(field: string, source: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (e) {
    throw new AlignkitError(`LoraConfig.${field}: ${JSON.stringify(source)} is not a valid regular expression (${e instanceof Error ? e.message : String(e)})`);
  }
}

function selects(field: string, spec: string[] | string, name: string): boolean {
  return typeof spec === 'string' ? regexOf(field, spec).test(name) : spec.some((e) => nameMatches(name, e));
}

/** The layer index PEFT reads from a module name: the first '<list>.<digits>.' segment (or after layers_pattern). */
function layerIndex(name: string, pattern: string[] | string | null): number | null {
  const pats = pattern === null ? [] : typeof pattern === 'string' ? [pattern] : pattern;
  if (pats.length === 0) {
    const m = /^.*?\.[^.]*\.(\d+)\./.exec(name);
    return m ? Number(m[1]) : null;
  }
  for (const p of pats) {
    const m = new RegExp(`^(?:|.*?\\.)${p}\\.(\\d+)\\.`).exec(name);
    if (m) return Number(m[1]);
  }
  return null;
}

/** Whether a module lies inside a modules_to_save module (PEFT never adapts those). */
function insideSavedModule(name: string, save: string[] | null): boolean {
  if (!save) return false;
  const parts = name.split('.');
  for (let k = parts.length; k > 0; k--) if (save.some((e) => nameMatches(parts.slice(0, k).join('.'), e))) return true;
  return false;
}

/** Every module that holds parameters (heads included), by HF name. */
function moduleNames(model: PretrainedLM): string[] {
  return [...new Set([...model.namedParameters().keys()].map((n) => n.slice(0, n.lastIndexOf('.'))))];
}

/** Short forms a user can write in target_modules ('q_proj', 'self_attn.q_proj', ...), for messages. */
function shortForms(model: PretrainedLM): string[] {
  const names = PROJECTIONS[model.config.family].names;
  return [...new Set(names.map((n) => n.split('.').pop() as string)), ...names];
}

/**
 * The projections a config adapts, in layer order. strict (applyLora): every list entry of target_modules must
 * match a projection, so a typo fails loudly; otherwise (loading a PEFT adapter) PEFT's rule applies: at least
 * one projection must match.
 */
export function resolveTargetModules(model: PretrainedLM, cfg: ResolvedLoraConfig, strict: boolean): string[] {
  const all = projectionModules(model);
  const t = cfg.target_modules;
  if (strict && Array.isArray(t))
    for (const e of t) {
      if (all.some((n) => nameMatches(n, e))) continue;
      if (moduleNames(model).some((n) => nameMatches(n, e)))
        throw new AlignkitError(
          `LoraConfig.target_modules: '${e}' is not a projection LoRA adapts here (${shortForms(model).join(', ')}); list it in modules_to_save to train it in full`,
        );
      throw new AlignkitError(
        `LoraConfig.target_modules: '${e}' matches no projection of this ${model.config.modelType} model; available: ${shortForms(model).join(', ')} ` +
          `(or full names such as ${all[0]})`,
      );
    }
  const chosen = all.filter((n) => {
    if (t !== ALL_LINEAR && !selects('target_modules', t, n)) return false;
    if (cfg.exclude_modules !== null && selects('exclude_modules', cfg.exclude_modules, n)) return false;
    if (insideSavedModule(n, cfg.modules_to_save)) return false;
    // As PEFT: layers_to_transform narrows name lists ('all-linear' is expanded to one), not a regex.
    if (cfg.layers_to_transform !== null && (Array.isArray(t) || t === ALL_LINEAR)) {
      const idx = layerIndex(n, cfg.layers_pattern);
      const want = cfg.layers_to_transform;
      if (idx === null || !(Array.isArray(want) ? want.includes(idx) : want === idx)) return false;
    }
    return true;
  });
  if (chosen.length === 0)
    throw new AlignkitError(
      `LoraConfig.target_modules: ${JSON.stringify(t)} selects no projection of this ${model.config.modelType} model` +
        `${cfg.exclude_modules !== null || cfg.layers_to_transform !== null ? ' (after exclude_modules / layers_to_transform)' : ''}; available: ${shortForms(model).join(', ')}`,
    );
  return chosen;
}

/** The parameters (by HF name) that modules_to_save trains in full. strict: every entry must match something. */
export function resolveSavedModules(model: PretrainedLM, cfg: ResolvedLoraConfig, strict: boolean): string[] {
  const save = cfg.modules_to_save;
  if (!save) return [];
  const names = [...model.namedParameters().keys()];
  const owned = (param: string, e: string): boolean => insideSavedModule(param.slice(0, param.lastIndexOf('.')), [e]);
  if (strict)
    for (const e of save) {
      if (names.some((n) => owned(n, e))) continue;
      const tied = e === 'lm_head' && model.config.tieWordEmbeddings;
      const listed = [...new Set(moduleNames(model).map((n) => n.replace(/\.\d+\./, '.<i>.')))];
      throw new AlignkitError(
        `LoraConfig.modules_to_save: '${e}' matches no module of this ${model.config.modelType} model` +
          (tied ? ` (its LM head is tied to the input embedding ${model.basePrefix}${model.config.family === 'gpt2' ? 'wte' : 'embed_tokens'}; name that to train both)` : '') +
          `; modules: ${listed.join(', ')}`,
      );
    }
  return names.filter((n) => save.some((e) => owned(n, e)));
}

// ============================================================================================== the handle
export type LoraState = 'attached' | 'detached' | 'merged' | 'disposed';

/** The key PEFT saves an adapter tensor under. */
export function peftLoraKey(module: string, which: 'A' | 'B'): string {
  return `base_model.model.${module}.lora_${which}.weight`;
}

/** The key PEFT saves a modules_to_save parameter under. */
export function peftSavedKey(param: string): string {
  return `base_model.model.${param}`;
}

export interface LoraHandleParts {
  /** Adapter tensors by module name (owned by the handle from now on). */
  adapters: Map<string, { A: Tensor; B: Tensor }>;
  /** New values for the modules_to_save parameters (copied in; null: keep the base values). */
  savedValues: Map<string, Tensor> | null;
  /** Whether A, B and the modules_to_save parameters require grad. */
  trainable: boolean;
  training: boolean;
  dropoutSeed: number;
}

/**
 * LoRA adapters attached to a model. Training updates A and B (and the modules_to_save parameters) while every
 * base weight stays frozen; merge() folds the update into the base weights; detach() restores the base model.
 */
export class LoraHandle {
  readonly adapters: Map<string, { A: Tensor; B: Tensor }>;
  /** Modules_to_save parameters by HF name: the model's own tensors while attached or merged, copies once detached. */
  readonly savedModules: Map<string, Tensor>;
  readonly scaling: number;
  /** GPT-2's Conv1D projections: PEFT records fan_in_fan_out = true (the tensors have the same shapes either way). */
  readonly fanInFanOut: boolean;
  private readonly runtime: LoraRuntime;
  /** Base values of the modules_to_save parameters while attached (restored by detach). */
  private readonly originals = new Map<string, Tensor>();
  /** requiresGrad of every model parameter before the adapters were applied. */
  private readonly previousFlags = new Map<Tensor, boolean>();
  private _state: LoraState = 'attached';

  constructor(
    readonly model: PretrainedLM,
    readonly config: Readonly<ResolvedLoraConfig>,
    parts: LoraHandleParts,
  ) {
    if (model.isDisposed) throw new AlignkitError('LoRA: the model was disposed');
    this.adapters = parts.adapters;
    this.scaling = loraScaling(config.r, config.lora_alpha, config.use_rslora);
    this.fanInFanOut = model.config.family === 'gpt2';
    this.runtime = { training: parts.training, generator: new Generator(parts.dropoutSeed) };
    const params = model.namedParameters();
    const savedNames = resolveSavedModules(model, config, false);
    this.savedModules = new Map(savedNames.map((n) => [n, params.get(n) as Tensor]));
    // Trained in place (their values are swapped back on detach), which needs one flat buffer each.
    for (const [n, t] of this.savedModules) if (!t.isContiguous) throw new AlignkitError(`LoRA: modules_to_save parameter '${n}' is not contiguous`);
    const attachedWeights: Tensor[] = [];
    try {
      for (const [module, { A, B }] of this.adapters) {
        const w = params.get(`${module}.weight`);
        if (!w) throw new AlignkitError(`LoRA: the model has no projection '${module}'`);
        A.name ??= peftLoraKey(module, 'A');
        B.name ??= peftLoraKey(module, 'B');
        attachAdapter(w, { A, B, scaling: this.scaling, dropout: config.lora_dropout, runtime: this.runtime });
        attachedWeights.push(w);
      }
    } catch (e) {
      for (const w of attachedWeights) detachAdapter(w);
      throw e;
    }
    for (const t of params.values()) {
      this.previousFlags.set(t, t.requiresGrad);
      t.requireGrad(false);
    }
    untracked(() =>
      noGrad(() => {
        for (const [name, p] of this.savedModules) {
          this.originals.set(name, copyTensor(p));
          const v = parts.savedValues?.get(name);
          if (v) (p.data as FloatArray).set(v.data as FloatArray);
        }
      }),
    );
    for (const t of this.trainableParameters().values()) t.requireGrad(parts.trainable);
  }

  get state(): LoraState {
    return this._state;
  }

  /** Dropout is active only in training mode. */
  get training(): boolean {
    return this.runtime.training;
  }

  train(flag = true): this {
    this.runtime.training = flag;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** The dropout mask stream (its getState / setState checkpoint a run exactly). */
  get dropoutGenerator(): Generator {
    return this.runtime.generator;
  }

  /** Target module names, in layer order. */
  get targetModules(): string[] {
    return [...this.adapters.keys()];
  }

  /** Every trainable tensor under its PEFT file key: each module's lora_A / lora_B, then the modules_to_save parameters. */
  trainableParameters(): Map<string, Tensor> {
    this.live('trainableParameters');
    const out = new Map<string, Tensor>();
    for (const [m, { A, B }] of this.adapters) {
      out.set(peftLoraKey(m, 'A'), A);
      out.set(peftLoraKey(m, 'B'), B);
    }
    for (const [n, t] of this.savedModules) out.set(peftSavedKey(n), t);
    return out;
  }

  /** Number of trainable scalars. */
  numTrainable(): number {
    let n = 0;
    for (const t of this.trainableParameters().values()) n += t.size;
    return n;
  }

  /**
   * Folds every update into its base weight in place (W += scaling · B A), keeps the trained modules_to_save
   * values in the model, detaches the adapters and restores the parameters' requiresGrad flags. The model then
   * computes what base + adapters computed, with no adapter; A and B stay readable until dispose().
   */
  merge(): void {
    this.expect('merge', 'attached');
    const params = this.model.namedParameters();
    noGrad(() =>
      tidy(() => {
        for (const [module, { A, B }] of this.adapters) {
          const w = params.get(`${module}.weight`) as Tensor;
          if (!w.isContiguous) throw new AlignkitError(`LoRA merge: ${module}.weight is not contiguous`);
          const delta = mul(matmul(B, A), this.scaling); // [out, in]
          addInto(w, delta);
          detachAdapter(w);
        }
      }),
    );
    for (const t of this.originals.values()) t.dispose();
    this.originals.clear();
    this.restoreFlags();
    this._state = 'merged';
  }

  /**
   * Removes the adapters: the model computes its base function again and its parameters get their
   * requiresGrad flags back. The modules_to_save parameters get their base values back; the trained values move
   * into savedModules (so the adapter can still be saved).
   */
  detach(): void {
    this.expect('detach', 'attached');
    const params = this.model.namedParameters();
    for (const module of this.adapters.keys()) detachAdapter(params.get(`${module}.weight`) as Tensor);
    untracked(() =>
      noGrad(() => {
        for (const [name, p] of this.savedModules) {
          const trained = copyTensor(p);
          trained.name = p.name;
          trained.requireGrad(p.requiresGrad);
          const orig = this.originals.get(name) as Tensor;
          (p.data as FloatArray).set(orig.data as FloatArray);
          orig.dispose();
          this.savedModules.set(name, trained);
        }
      }),
    );
    this.originals.clear();
    this.restoreFlags();
    this._state = 'detached';
  }

  /** Detaches (when attached) and frees A, B and every copy the handle owns. Idempotent. */
  dispose(): void {
    if (this._state === 'disposed') return;
    if (this._state === 'attached') this.detach();
    for (const { A, B } of this.adapters.values()) {
      A.dispose();
      B.dispose();
    }
    // Once detached the saved-module tensors are the handle's copies; when merged they belong to the model.
    if (this._state === 'detached') for (const t of this.savedModules.values()) t.dispose();
    this._state = 'disposed';
  }

  private restoreFlags(): void {
    for (const [t, flag] of this.previousFlags) if (!t.disposed) t.requireGrad(flag);
    this.previousFlags.clear();
  }

  private expect(op: string, state: LoraState): void {
    if (this._state !== state) throw new AlignkitError(`LoRA ${op}: the adapters are ${this._state}, not ${state}`);
  }

  private live(op: string): void {
    if (this._state === 'disposed') throw new AlignkitError(`LoRA ${op}: the handle was disposed`);
  }
}

/** A 32-bit mix of a seed (splitmix32-style finaliser), so the dropout stream is independent of the init stream. */
function mixSeed(seed: number): number {
  let h = (seed >>> 0) ^ Math.floor(seed / 4294967296);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface ApplyLoraOptions {
  /** Seed of the dropout masks (default: derived from `seed`). */
  dropoutSeed?: number;
  /** Start in training mode (default true: dropout active when lora_dropout > 0). */
  training?: boolean;
}

/**
 * Attaches fresh LoRA adapters to `model`: every base parameter is frozen, A / B (and the modules_to_save
 * parameters) are trainable. A and B are drawn from Generator(seed) in module order: A ~ U(±1/sqrt(in)) (PEFT's
 * kaiming_uniform(a = sqrt(5))) or N(0, (1/r)²) with init_lora_weights 'gaussian'; B = 0, or U(±1/sqrt(r)) (an
 * untouched nn.Linear) with init_lora_weights false.
 */
export function applyLora(model: PretrainedLM, cfg: Partial<LoraConfig>, seed = 0, opts: ApplyLoraOptions = {}): LoraHandle {
  if (model.isDisposed) throw new AlignkitError('applyLora: the model was disposed');
  const config = resolveLoraConfig(cfg, model);
  const modules = resolveTargetModules(model, config, true);
  resolveSavedModules(model, config, true);
  const params = model.namedParameters();
  const gen = new Generator(seed);
  const adapters = new Map<string, { A: Tensor; B: Tensor }>();
  untracked(() => {
    for (const m of modules) {
      const [out, inp] = (params.get(`${m}.weight`) as Tensor).shape;
      const r = config.r;
      const A =
        config.init_lora_weights === 'gaussian'
          ? randn([r, inp], { std: 1 / r, generator: gen })
          : rand([r, inp], { low: -1 / Math.sqrt(inp), high: 1 / Math.sqrt(inp), generator: gen });
      const B = config.init_lora_weights === false ? rand([out, r], { low: -1 / Math.sqrt(r), high: 1 / Math.sqrt(r), generator: gen }) : full([out, r], 0);
      adapters.set(m, { A, B });
    }
  });
  try {
    return new LoraHandle(model, config, {
      adapters, savedValues: null, trainable: true, training: opts.training ?? true, dropoutSeed: opts.dropoutSeed ?? mixSeed(seed),
    });
  } catch (e) {
    for (const { A, B } of adapters.values()) {
      A.dispose();
      B.dispose();
    }
    throw e;
  }
}
