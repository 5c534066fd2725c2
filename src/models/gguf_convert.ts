// Hugging Face model folder <-> GGUF (llama.cpp / ollama) for the Llama family.
//
// Export (exportGguf) writes a GGUF v3 file the way llama.cpp's convert_hf_to_gguf.py does:
//   llama, mistral  -> general.architecture 'llama'; q/k rows permuted (permuteQkForGguf) so llama.cpp's
//                      adjacent-pair rotary embedding reproduces HF's half-split one
//   qwen2           -> 'qwen2' (NEOX rope in llama.cpp: no permutation), q/k/v biases
//   qwen3           -> 'qwen3' (no permutation), attn_q_norm / attn_k_norm
// Norm weights and biases are always F32 (as llama.cpp writes them); matrices in the requested type. The LM head
// (output.weight) is omitted when tied. Tokenizer metadata is taken from tokenizer.json (+ tokenizer_config.json).
//
// Import (importGguf) reads such a file back into a model: metadata -> config.json fields, q/k un-permuted,
// F16 / BF16 / Q8_0 / Q4_0 / ... dequantised to float32. ggufToHfFolder also writes the Hugging Face folder,
// with a tokenizer.json rebuilt from the GGUF vocabulary (SentencePiece-style 'llama' and byte-level 'gpt2').
//
// mistral's sliding_window is not carried (llama.cpp's 'llama' architecture has none, as with its own converter):
// identical results up to the window length. A value head attached to a causal LM is not exported.
//
// Not converted (clear errors): GPT-2 and other architectures, llama3 / yarn rope scaling (llama.cpp stores
// llama3 scaling as a rope_freqs tensor that cannot be mapped back to config fields), score / value heads,
// K-quants and other ggml types GGUF_DEQUANTIZABLE does not list.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CheckpointError, GGUF_DEQUANTIZABLE, openGguf, permuteQkForGguf, saveGguf, unpermuteQkFromGguf } from '../io/index.ts';
import type { GgufFile, GgufTensorInput, GgufValueInput } from '../io/index.ts';
import { noGrad, untracked, type Tensor } from '../tensor/index.ts';
import { loadTokenizer } from '../tokenizer/index.ts';
import type { PretrainedLM, StoredDType } from './base.ts';
import { parseModelConfig, type HfModelConfig } from './config.ts';
import { createModel, modelSpecs, saveModel } from './load.ts';

// llama.cpp token types (llama_token_type / gguf-py TokenType).
export const GGUF_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface ExportGgufOptions {
  /** Matrix storage type (default 'F16'); norms and biases are F32 regardless. */
  type?: 'F32' | 'F16';
  /** general.name (default: config _name_or_path, else the model type). */
  name?: string;
  /** tokenizer.ggml.pre for byte-level ('gpt2') vocabularies (default 'default'). */
  pre?: string;
}

export interface ExportedGguf {
  path: string;
  bytes: number;
  architecture: string;
  tensors: { name: string; type: 'F32' | 'F16'; shape: number[] }[];
  /** tokenizer.ggml.model written ('llama', 'gpt2', or 'no_vocab' without a tokenizer). */
  tokenizerModel: string;
}

type Meta = Map<string, GgufValueInput>;
const u32 = (value: number): GgufValueInput => ({ type: 'uint32', value });
const f32 = (value: number): GgufValueInput => ({ type: 'float32', value });
const str = (value: string): GgufValueInput => ({ type: 'string', value });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The GGUF architecture name for a config, or an error naming `where`. */
function ggufArch(c: HfModelConfig, fail: (m: string) => CheckpointError): 'llama' | 'qwen2' | 'qwen3' {
  if (c.family !== 'llama') throw fail(`not written: model_type '${c.modelType}' is not supported by the GGUF converter (llama, mistral, qwen2, qwen3)`);
  if (c.architecture !== 'causal-lm') throw fail(`not written: ${c.architectures.join(', ') || c.architecture} is not a causal LM (GGUF export covers *ForCausalLM)`);
  if (c.rope && c.rope.type === 'llama3') throw fail(`not written: llama3 rope scaling is not supported by this converter`);
  if (c.modelType === 'qwen2') {
    if (c.outBias || c.mlpBias) throw fail('not written: qwen2 with o_proj / mlp biases has no llama.cpp tensors');
    return 'qwen2';
  }
  if (c.modelType === 'qwen3') {
    if (c.qkvBias || c.outBias || c.mlpBias) throw fail('not written: qwen3 with attention_bias has no llama.cpp tensors');
    return 'qwen3';
  }
  return 'llama';
}

// ----------------------------------------------------------------------------------------------- tokenizer → GGUF
interface VocabMeta {
  model: string;
  entries: [string, GgufValueInput][];
}

function readJsonFile(file: string): unknown {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
}

/** tokenizer.ggml.* from a tokenizer.json folder, padded to the model's vocabulary size. */
function tokenizerMeta(dir: string, c: HfModelConfig, pre: string, fail: (m: string) => CheckpointError): VocabMeta {
  const tokPath = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(tokPath)) throw fail(`not written: no tokenizer.json in ${dir}`);
  const json = readJsonFile(tokPath);
  if (!isObject(json) || !isObject(json.model)) throw fail(`not written: ${tokPath} has no model object`);
  const m = json.model;
  if (m.type !== 'BPE') throw fail(`not written: ${tokPath} is a ${String(m.type)} tokenizer; only BPE tokenizers are converted`);
  const cfgPath = path.join(dir, 'tokenizer_config.json');
  const cfg = fs.existsSync(cfgPath) ? readJsonFile(cfgPath) : {};
  const tcfg = isObject(cfg) ? cfg : {};
  const vocab = isObject(m.vocab) ? m.vocab : {};
  const text = JSON.stringify([json.pre_tokenizer, json.decoder, json.normalizer]);
  const byteLevel = text.includes('"ByteLevel"');
  const spm = !byteLevel && (m.byte_fallback === true || text.includes('\u2581') || text.includes('Metaspace'));
  if (!byteLevel && !spm) throw fail(`not written: ${tokPath} is neither byte-level nor SentencePiece-style BPE`);

  const V = c.vocabSize;
  const tokens: (string | null)[] = new Array<string | null>(V).fill(null);
  const types = new Int32Array(V).fill(GGUF_TOKEN_TYPE.NORMAL);
  const put = (tok: string, id: number): void => {
    if (id >= V) throw fail(`not written: tokenizer token ${JSON.stringify(tok)} has id ${id} >= the model's vocab_size ${V}`);
    tokens[id] = tok;
  };
  for (const [tok, id] of Object.entries(vocab)) if (typeof id === 'number') put(tok, id);
  const added = Array.isArray(json.added_tokens) ? json.added_tokens.filter(isObject) : [];
  for (const a of added) {
    if (typeof a.content !== 'string' || typeof a.id !== 'number') continue;
    put(a.content, a.id);
    types[a.id] = a.special === true ? GGUF_TOKEN_TYPE.CONTROL : GGUF_TOKEN_TYPE.USER_DEFINED;
  }
  for (let i = 0; i < V; i++)
    if (tokens[i] === null) {
      tokens[i] = `[PAD${i}]`;
      types[i] = GGUF_TOKEN_TYPE.UNUSED;
    }
  const toks = tokens as string[];
  const tk = loadTokenizer(dir, { requireConfig: false });
  if (tk.unkId !== null && tk.unkId < V) types[tk.unkId] = GGUF_TOKEN_TYPE.UNKNOWN;
  if (spm) for (let i = 0; i < V; i++) if (types[i] === GGUF_TOKEN_TYPE.NORMAL && /^<0x[0-9A-F]{2}>$/.test(toks[i])) types[i] = GGUF_TOKEN_TYPE.BYTE;

  // Merges as "a b" strings; tokenizers stores them as strings or [a, b] pairs.
  const merges: string[] = [];
  if (Array.isArray(m.merges))
    for (const x of m.merges) {
      if (typeof x === 'string') merges.push(x);
      else if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') merges.push(`${x[0]} ${x[1]}`);
    }

  const entries: [string, GgufValueInput][] = [['tokenizer.ggml.model', str(spm ? 'llama' : 'gpt2')]];
  if (!spm) entries.push(['tokenizer.ggml.pre', str(pre)]);
  entries.push(['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: toks }]);
  if (spm) {
    // llama.cpp's SentencePiece tokenizer merges the adjacent pair whose concatenation has the highest score:
    // giving each merge result -rank reproduces the BPE merge priority of tokenizer.json.
    const scores = new Float32Array(V);
    const rank = new Map<string, number>();
    merges.forEach((mm, r) => {
      const sp = mm.indexOf(' ');
      const joined = mm.slice(0, sp) + mm.slice(sp + 1);
      if (!rank.has(joined)) rank.set(joined, r);
    });
    for (let i = 0; i < V; i++) {
      if (types[i] !== GGUF_TOKEN_TYPE.NORMAL) continue;
      const r = rank.get(toks[i]);
      scores[i] = r !== undefined ? -r : -(merges.length + i);
    }
    entries.push(['tokenizer.ggml.scores', { type: 'array', itemType: 'float32', value: scores }]);
  }
  entries.push(['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: types }]);
  if (!spm) entries.push(['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }]);
  const bos = tk.bosId ?? c.bosTokenId;
  const eos = tk.eosId ?? c.eosTokenIds[0] ?? null;
  if (bos !== null) entries.push(['tokenizer.ggml.bos_token_id', u32(bos)]);
  if (eos !== null) entries.push(['tokenizer.ggml.eos_token_id', u32(eos)]);
  if (tk.unkId !== null) entries.push(['tokenizer.ggml.unknown_token_id', u32(tk.unkId)]);
  const pad = tk.padId ?? c.padTokenId;
  if (pad !== null) entries.push(['tokenizer.ggml.padding_token_id', u32(pad)]);
  // add_bos_token: tokenizer_config.json when it says, else whether encoding '' adds BOS (the post-processor).
  let addBos: boolean;
  if (typeof tcfg.add_bos_token === 'boolean') addBos = tcfg.add_bos_token;
  else addBos = bos !== null && tk.encode('a', { addSpecialTokens: true })[0] === bos;
  entries.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: addBos }]);
  entries.push(['tokenizer.ggml.add_eos_token', { type: 'bool', value: typeof tcfg.add_eos_token === 'boolean' ? tcfg.add_eos_token : false }]);
  if (typeof tcfg.chat_template === 'string') entries.push(['tokenizer.chat_template', str(tcfg.chat_template)]);
  return { model: spm ? 'llama' : 'gpt2', entries };
}

// ----------------------------------------------------------------------------------------------- export
/** Writes `model` (llama / mistral / qwen2 / qwen3) as a llama.cpp GGUF v3 file, atomically. */
export function exportGguf(model: PretrainedLM, tokenizerDir: string | null, outPath: string, opts: ExportGgufOptions = {}): ExportedGguf {
  const fail = (m: string): CheckpointError => new CheckpointError('gguf', outPath, m);
  const type = opts.type ?? 'F16';
  if (type !== 'F32' && type !== 'F16') throw fail(`not written: type '${String(type)}' is not F32 or F16`);
  if (model.isDisposed) throw fail('not written: the model was disposed');
  const c = model.config;
  const arch = ggufArch(c, fail);
  const meta: Meta = new Map();
  const nameOf = typeof c.raw._name_or_path === 'string' ? c.raw._name_or_path : typeof c.raw._model_name_or_path === 'string' ? c.raw._model_name_or_path : c.modelType;
  meta.set('general.architecture', str(arch));
  meta.set('general.name', str(opts.name ?? nameOf));
  meta.set(`${arch}.context_length`, u32(c.maxPositions));
  meta.set(`${arch}.embedding_length`, u32(c.hiddenSize));
  meta.set(`${arch}.block_count`, u32(c.numLayers));
  meta.set(`${arch}.feed_forward_length`, u32(c.intermediateSize));
  meta.set(`${arch}.attention.head_count`, u32(c.numHeads));
  meta.set(`${arch}.attention.head_count_kv`, u32(c.numKvHeads));
  meta.set(`${arch}.rope.freq_base`, f32(c.rope?.theta ?? 10000));
  meta.set(`${arch}.attention.layer_norm_rms_epsilon`, f32(c.normEps));
  meta.set(`${arch}.rope.dimension_count`, u32(c.headDim));
  if (c.headDim * c.numHeads !== c.hiddenSize) {
    meta.set(`${arch}.attention.key_length`, u32(c.headDim));
    meta.set(`${arch}.attention.value_length`, u32(c.headDim));
  }
  if (c.rope && c.rope.type === 'linear') {
    meta.set(`${arch}.rope.scaling.type`, str('linear'));
    meta.set(`${arch}.rope.scaling.factor`, f32(c.rope.factor));
  }
  meta.set(`${arch}.vocab_size`, u32(c.vocabSize));
  meta.set('general.file_type', u32(type === 'F32' ? 0 : 1));
  let tokenizerModel = 'no_vocab';
  if (tokenizerDir !== null) {
    const tm = tokenizerMeta(tokenizerDir, c, opts.pre ?? 'default', fail);
    tokenizerModel = tm.model;
    for (const [k, v] of tm.entries) meta.set(k, v);
  } else {
    meta.set('tokenizer.ggml.model', str('no_vocab'));
    if (c.bosTokenId !== null) meta.set('tokenizer.ggml.bos_token_id', u32(c.bosTokenId));
    if (c.eosTokenIds.length) meta.set('tokenizer.ggml.eos_token_id', u32(c.eosTokenIds[0]));
    if (c.padTokenId !== null) meta.set('tokenizer.ggml.padding_token_id', u32(c.padTokenId));
  }

  const params = model.namedParameters();
  const owned: Tensor[] = [];
  const tensors: GgufTensorInput[] = [];
  const get = (name: string): Tensor => {
    const t = params.get(name);
    if (!t) throw fail(`not written: the model has no parameter '${name}'`);
    if (t.disposed) throw fail(`not written: parameter '${name}' was disposed`);
    return t;
  };
  const add = (name: string, t: Tensor, isMatrix: boolean): void => {
    tensors.push({ name, tensor: t, type: isMatrix ? type : 'F32' });
  };
  const permute = arch === 'llama';
  try {
    untracked(() =>
      noGrad(() => {
        add('token_embd.weight', get('model.embed_tokens.weight'), true);
        for (let i = 0; i < c.numLayers; i++) {
          const p = `model.layers.${i}.`;
          const b = `blk.${i}.`;
          add(`${b}attn_norm.weight`, get(`${p}input_layernorm.weight`), false);
          for (const [hf, gg, heads] of [['q', 'attn_q', c.numHeads], ['k', 'attn_k', c.numKvHeads], ['v', 'attn_v', 0]] as const) {
            for (const suffix of ['weight', 'bias'] as const) {
              const name = `${p}self_attn.${hf}_proj.${suffix}`;
              if (suffix === 'bias' && !params.has(name)) continue;
              let t = get(name);
              if (permute && heads > 0) {
                t = permuteQkForGguf(t, heads);
                owned.push(t);
              }
              add(`${b}${gg}.${suffix}`, t, suffix === 'weight');
            }
          }
          add(`${b}attn_output.weight`, get(`${p}self_attn.o_proj.weight`), true);
          if (c.outBias) add(`${b}attn_output.bias`, get(`${p}self_attn.o_proj.bias`), false);
          if (c.qkNorm) {
            add(`${b}attn_q_norm.weight`, get(`${p}self_attn.q_norm.weight`), false);
            add(`${b}attn_k_norm.weight`, get(`${p}self_attn.k_norm.weight`), false);
          }
          add(`${b}ffn_norm.weight`, get(`${p}post_attention_layernorm.weight`), false);
          for (const n of ['gate', 'up', 'down'] as const) {
            add(`${b}ffn_${n}.weight`, get(`${p}mlp.${n}_proj.weight`), true);
            if (c.mlpBias) add(`${b}ffn_${n}.bias`, get(`${p}mlp.${n}_proj.bias`), false);
          }
        }
        add('output_norm.weight', get('model.norm.weight'), false);
        if (!c.tieWordEmbeddings) add('output.weight', get('lm_head.weight'), true);
      }),
    );
    const saved = saveGguf(outPath, { metadata: meta, tensors });
    return {
      path: saved.path, bytes: saved.bytes, architecture: arch, tokenizerModel,
      tensors: tensors.map((t) => ({ name: t.name, type: t.type === 'F32' ? 'F32' : 'F16', shape: [...t.tensor.shape] })),
    };
  } finally {
    for (const t of owned) t.dispose();
  }
}

// ----------------------------------------------------------------------------------------------- import
function num(g: GgufFile, key: string, dflt?: number): number {
  if (!g.has(key)) {
    if (dflt === undefined) throw new CheckpointError('gguf', g.path, `metadata '${key}' is missing`);
    return dflt;
  }
  return g.getNumber(key);
}

/** config.json (transformers 5 spelling) for a llama / qwen2 / qwen3 GGUF. */
export function ggufConfigJson(g: GgufFile): Record<string, unknown> {
  const fail = (m: string): CheckpointError => new CheckpointError('gguf', g.path, m);
  if (!g.has('general.architecture')) throw fail("metadata 'general.architecture' is missing");
  const arch = g.getString('general.architecture');
  if (arch !== 'llama' && arch !== 'qwen2' && arch !== 'qwen3') throw fail(`architecture '${arch}' is not supported (llama, qwen2, qwen3)`);
  for (const bad of ['rope_freqs.weight'])
    if (g.hasTensor(bad)) throw fail(`tensor '${bad}' (llama3-style rope scaling) is not supported`);
  const scaling = g.has(`${arch}.rope.scaling.type`) ? g.getString(`${arch}.rope.scaling.type`) : 'none';
  if (scaling !== 'none' && scaling !== 'linear') throw fail(`rope scaling '${scaling}' is not supported (none, linear)`);
  const hidden = num(g, `${arch}.embedding_length`);
  const heads = num(g, `${arch}.attention.head_count`);
  const kvHeads = num(g, `${arch}.attention.head_count_kv`, heads);
  const headDim = num(g, `${arch}.attention.key_length`, hidden / heads);
  if (g.has(`${arch}.attention.value_length`) && num(g, `${arch}.attention.value_length`) !== headDim) throw fail('attention.value_length differs from key_length (not supported)');
  const ropeDim = num(g, `${arch}.rope.dimension_count`, headDim);
  if (ropeDim !== headDim) throw fail(`rope.dimension_count ${ropeDim} != head size ${headDim} (partial rotary embeddings are not supported)`);
  if (!g.hasTensor('token_embd.weight')) throw fail("tensor 'token_embd.weight' is missing");
  const vocab = g.tensorInfo('token_embd.weight').shape[0];
  const has = (n: string): boolean => g.hasTensor(n);
  const rope: Record<string, unknown> = { rope_type: 'default', rope_theta: num(g, `${arch}.rope.freq_base`, 10000) /* llama.cpp's default when the key is absent */ };
  if (scaling === 'linear') Object.assign(rope, { rope_type: 'linear', factor: num(g, `${arch}.rope.scaling.factor`) });
  const tok = (k: string): number | null => (g.has(`tokenizer.ggml.${k}`) ? g.getNumber(`tokenizer.ggml.${k}`) : null);
  const cls = { llama: 'LlamaForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' }[arch];
  const raw: Record<string, unknown> = {
    architectures: [cls], model_type: arch, hidden_act: 'silu', hidden_size: hidden,
    num_hidden_layers: num(g, `${arch}.block_count`), num_attention_heads: heads, num_key_value_heads: kvHeads, head_dim: headDim,
    intermediate_size: num(g, `${arch}.feed_forward_length`), max_position_embeddings: num(g, `${arch}.context_length`, 2048),
    vocab_size: vocab, rms_norm_eps: num(g, `${arch}.attention.layer_norm_rms_epsilon`, 1e-6), tie_word_embeddings: !has('output.weight'),
    rope_parameters: rope, bos_token_id: tok('bos_token_id'), eos_token_id: tok('eos_token_id'), pad_token_id: tok('padding_token_id'),
    dtype: 'float32',
  };
  if (g.has('general.name')) raw._name_or_path = g.getString('general.name');
  if (arch === 'llama') Object.assign(raw, { attention_bias: has('blk.0.attn_q.bias'), mlp_bias: has('blk.0.ffn_gate.bias'), pretraining_tp: 1 });
  if (arch === 'qwen3') raw.attention_bias = false;
  if (arch !== 'llama') Object.assign(raw, { use_sliding_window: false, sliding_window: null, max_window_layers: raw.num_hidden_layers });
  return raw;
}

/** HF parameter name -> GGUF tensor name (and the q/k heads to un-permute, 0 for none). */
function ggufNameOf(hf: string, c: HfModelConfig): { name: string; heads: number } | null {
  const permute = c.modelType === 'llama';
  if (hf === 'model.embed_tokens.weight') return { name: 'token_embd.weight', heads: 0 };
  if (hf === 'model.norm.weight') return { name: 'output_norm.weight', heads: 0 };
  if (hf === 'lm_head.weight') return { name: 'output.weight', heads: 0 };
  const m = /^model\.layers\.(\d+)\.(.+)\.(weight|bias)$/.exec(hf);
  if (!m) return null;
  const map: Record<string, string> = {
    input_layernorm: 'attn_norm', post_attention_layernorm: 'ffn_norm', 'self_attn.q_proj': 'attn_q', 'self_attn.k_proj': 'attn_k',
    'self_attn.v_proj': 'attn_v', 'self_attn.o_proj': 'attn_output', 'self_attn.q_norm': 'attn_q_norm', 'self_attn.k_norm': 'attn_k_norm',
    'mlp.gate_proj': 'ffn_gate', 'mlp.up_proj': 'ffn_up', 'mlp.down_proj': 'ffn_down',
  };
  const g = map[m[2]];
  if (!g) return null;
  const heads = !permute ? 0 : m[2] === 'self_attn.q_proj' ? c.numHeads : m[2] === 'self_attn.k_proj' ? c.numKvHeads : 0;
  return { name: `blk.${m[1]}.${g}.${m[3]}`, heads };
}

export interface ImportGgufOptions {
  /** Parameters require grad (default true, like loadModel). */
  trainable?: boolean;
}

const STORED: Record<string, StoredDType> = { F16: 'float16', BF16: 'bfloat16' };

/** Loads a llama / qwen2 / qwen3 GGUF as a model (weights dequantised to float32). */
export function importGguf(file: string, opts: ImportGgufOptions = {}): PretrainedLM {
  const g = openGguf(file);
  try {
    return importFrom(g, opts.trainable ?? true);
  } finally {
    g.close();
  }
}

function importFrom(g: GgufFile, trainable: boolean): PretrainedLM {
  const fail = (m: string): CheckpointError => new CheckpointError('gguf', g.path, m);
  const config = parseModelConfig(ggufConfigJson(g), g.path);
  const { specs } = modelSpecs(config);
  const missing: string[] = [];
  const wrong: string[] = [];
  const unsupported: string[] = [];
  const used = new Set<string>();
  const plan: { spec: (typeof specs)[number]; name: string; heads: number }[] = [];
  for (const s of specs) {
    const n = ggufNameOf(s.name, config);
    if (!n) throw fail(`internal: no GGUF name for '${s.name}'`);
    if (!g.hasTensor(n.name)) {
      missing.push(n.name);
      continue;
    }
    used.add(n.name);
    const info = g.tensorInfo(n.name);
    if (info.shape.length !== s.shape.length || info.shape.some((d, i) => d !== s.shape[i])) wrong.push(`${n.name} [${info.shape.join(',')}] (expected [${s.shape.join(',')}])`);
    else if (!GGUF_DEQUANTIZABLE.includes(info.type)) unsupported.push(`${n.name} ${info.type}`);
    else plan.push({ spec: s, ...n });
  }
  const unexpected = g.tensors.map((t) => t.name).filter((n) => !used.has(n));
  const problems: string[] = [];
  const list = (what: string, xs: string[]): string => `${xs.length} ${what}: ${xs.slice(0, 6).join(', ')}${xs.length > 6 ? ', ...' : ''}`;
  if (unsupported.length) problems.push(`${list('tensor(s) of an unsupported type', unsupported)} (dequantisable: ${GGUF_DEQUANTIZABLE.join(', ')})`);
  if (missing.length) problems.push(list('missing tensor(s)', missing));
  if (unexpected.length) problems.push(list('unexpected tensor(s)', unexpected));
  if (wrong.length) problems.push(list('wrong shape(s)', wrong));
  if (problems.length) throw fail(`does not match its ${config.modelType} metadata: ${problems.join('; ')}`);

  const params = new Map<string, Tensor>();
  const dtypes = new Map<string, StoredDType>();
  try {
    untracked(() =>
      noGrad(() => {
        for (const p of plan) {
          let t = g.load(p.name);
          if (p.heads > 0) {
            const stored = t;
            t = unpermuteQkFromGguf(stored, p.heads);
            stored.dispose();
          }
          t.name = p.spec.name;
          t.requireGrad(trainable);
          params.set(p.spec.name, t);
          dtypes.set(p.spec.name, STORED[g.tensorInfo(p.name).type] ?? 'float32');
        }
      }),
    );
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  return createModel(config, params, { dir: null, dtypes, unprefixed: false });
}

// ----------------------------------------------------------------------------------------------- GGUF vocab → tokenizer.json
/** tokenizer.json + tokenizer_config.json rebuilt from tokenizer.ggml.*, or null when the file has no vocabulary. */
export function ggufTokenizerJson(g: GgufFile): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } | null {
  const fail = (m: string): CheckpointError => new CheckpointError('gguf', g.path, m);
  if (!g.has('tokenizer.ggml.model') || !g.has('tokenizer.ggml.tokens')) return null;
  const kind = g.getString('tokenizer.ggml.model');
  if (kind === 'no_vocab' || kind === 'none') return null;
  if (kind !== 'llama' && kind !== 'gpt2') throw fail(`tokenizer.ggml.model '${kind}' cannot be converted to tokenizer.json (llama, gpt2)`);
  const tokens = g.getStringArray('tokenizer.ggml.tokens');
  const tt = g.get('tokenizer.ggml.token_type');
  const types = tt instanceof Int32Array || tt instanceof Uint32Array ? tt : new Int32Array(tokens.length).fill(GGUF_TOKEN_TYPE.NORMAL);
  const id = (k: string): number | null => (g.has(`tokenizer.ggml.${k}`) ? g.getNumber(`tokenizer.ggml.${k}`) : null);
  const bos = id('bos_token_id');
  const eos = id('eos_token_id');
  const unk = id('unknown_token_id');
  const pad = id('padding_token_id');
  const addBosV = g.get('tokenizer.ggml.add_bos_token');
  const addBos = typeof addBosV === 'boolean' ? addBosV : kind === 'llama';
  const vocabMap = new Map<string, number>();
  const added: Record<string, unknown>[] = [];
  tokens.forEach((t, i) => {
    const ty = types[i];
    if (ty === GGUF_TOKEN_TYPE.CONTROL || ty === GGUF_TOKEN_TYPE.USER_DEFINED || (ty === GGUF_TOKEN_TYPE.UNKNOWN && kind === 'gpt2'))
      added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: ty === GGUF_TOKEN_TYPE.USER_DEFINED && kind === 'gpt2', special: ty !== GGUF_TOKEN_TYPE.USER_DEFINED });
    else if (ty === GGUF_TOKEN_TYPE.UNKNOWN) added.push({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    if (!vocabMap.has(t)) vocabMap.set(t, i);
  });
  // A Map, not an object literal: tokens such as 'toString' or '__proto__' must not meet Object.prototype.
  const vocab: Record<string, number> = Object.fromEntries(vocabMap);
  let merges: string[];
  if (g.has('tokenizer.ggml.merges')) merges = g.getStringArray('tokenizer.ggml.merges');
  else if (kind === 'llama') merges = spmMerges(tokens, types, g.get('tokenizer.ggml.scores'));
  else throw fail('gpt2 vocabulary without tokenizer.ggml.merges');
  const bosTok = bos !== null ? tokens[bos] : null;
  const post = addBos && bosTok !== null
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: bosTok, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [{ SpecialToken: { id: bosTok, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bosTok, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
        special_tokens: { [bosTok]: { id: bosTok, ids: [bos], tokens: [bosTok] } },
      }
    : null;
  const model = {
    type: 'BPE', dropout: null, unk_token: unk !== null ? tokens[unk] : null, continuing_subword_prefix: null, end_of_word_suffix: null,
    fuse_unk: kind === 'llama', byte_fallback: kind === 'llama', ignore_merges: false, vocab, merges,
  };
  const tokenizer: Record<string, unknown> =
    kind === 'llama'
      ? {
          version: '1.0', truncation: null, padding: null, added_tokens: added,
          normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
          pre_tokenizer: null, post_processor: post,
          decoder: {
            type: 'Sequence',
            decoders: [{ type: 'Replace', pattern: { String: '\u2581' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
          },
          model,
        }
      : {
          version: '1.0', truncation: null, padding: null, added_tokens: added, normalizer: null,
          pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
          post_processor: post ?? { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
          decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
          model,
        };
  const config: Record<string, unknown> = {
    tokenizer_class: kind === 'llama' ? 'LlamaTokenizerFast' : 'PreTrainedTokenizerFast',
    add_bos_token: addBos, add_eos_token: false, clean_up_tokenization_spaces: false, legacy: true,
    bos_token: bosTok, eos_token: eos !== null ? tokens[eos] : null, unk_token: unk !== null ? tokens[unk] : null, pad_token: pad !== null ? tokens[pad] : null,
  };
  if (g.has('tokenizer.chat_template')) config.chat_template = g.getString('tokenizer.chat_template');
  return { tokenizer, config };
}

/**
 * BPE merges for a SentencePiece vocabulary (as transformers' SentencePieceExtractor): every split of a normal
 * token into two tokens of the vocabulary, ordered by the merged token's score (highest first), then its id,
 * then the left part's id.
 */
function spmMerges(tokens: readonly string[], types: ArrayLike<number>, scoresV: unknown): string[] {
  const scores = scoresV instanceof Float32Array ? scoresV : new Float32Array(tokens.length);
  const ids = new Map<string, number>();
  tokens.forEach((t, i) => {
    if (types[i] === GGUF_TOKEN_TYPE.NORMAL && !ids.has(t)) ids.set(t, i);
  });
  const found: { l: number; r: number; m: number }[] = [];
  for (const [t, m] of ids) {
    const cps = Array.from(t);
    for (let k = 1; k < cps.length; k++) {
      const l = ids.get(cps.slice(0, k).join(''));
      const r = ids.get(cps.slice(k).join(''));
      if (l !== undefined && r !== undefined) found.push({ l, r, m });
    }
  }
  found.sort((a, b) => scores[b.m] - scores[a.m] || a.m - b.m || a.l - b.l);
  return found.map((f) => `${tokens[f.l]} ${tokens[f.r]}`);
}

export interface GgufToHfResult {
  dir: string;
  files: string[];
  /** True when tokenizer.json / tokenizer_config.json were rebuilt from the GGUF vocabulary. */
  tokenizer: boolean;
}

/** Converts a GGUF file into a Hugging Face folder: config.json, model.safetensors, generation_config.json and,
 *  when the file has a vocabulary, tokenizer.json + tokenizer_config.json. Float16 / bfloat16 tensors stay in
 *  that dtype (exact); quantised ones are written as float32. */
export function ggufToHfFolder(file: string, outDir: string): GgufToHfResult {
  const g = openGguf(file);
  let model: PretrainedLM | null = null;
  let stage: string | null = null;
  try {
    const tok = ggufTokenizerJson(g);
    model = importFrom(g, false);
    if (tok) {
      stage = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-gguf-tok-'));
      fs.writeFileSync(path.join(stage, 'tokenizer.json'), `${JSON.stringify(tok.tokenizer, null, 2)}\n`);
      fs.writeFileSync(path.join(stage, 'tokenizer_config.json'), `${JSON.stringify(tok.config, null, 2)}\n`);
    }
    const saved = saveModel(model, outDir, { tokenizerDir: stage });
    return { dir: saved.dir, files: saved.files, tokenizer: tok !== null };
  } finally {
    model?.dispose();
    g.close();
    if (stage) fs.rmSync(stage, { recursive: true, force: true });
  }
}
