// BERT-family encoders (BERT, RoBERTa, XLM-RoBERTa, CamemBERT, ...) for inference: hidden states of any layer,
// which is what BERTScore and embedding evaluations need. Loaded from a Hugging Face folder (config.json +
// model.safetensors; BertModel / RobertaModel names, with or without the `bert.` / `roberta.` prefix of the task
// models; heads and the pooler are ignored).
//
//   embeddings: LayerNorm(word[ids] + position[pos] + token_type[0])
//     BERT positions are 0..T-1; RoBERTa's are counted from padding_idx + 1 over non-padding ids (HF's
//     create_position_ids_from_input_ids), padding positions get padding_idx.
//   each layer (post-LN):  a = LayerNorm(x + W_o · MHA(x; key padding mask));  x = LayerNorm(a + W_2 · act(W_1 a))
//     act = GELU with erf for hidden_act "gelu".
// Layer 0 is the embeddings' output, layer L the output of encoder layer L (HF's output_hidden_states[L]).
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { embedding, intTensor, layerNorm, linear, noGrad, scaledDotProductAttention, tidy, type Tensor } from '../tensor/index.ts';
import { mergeHeads, splitHeads } from '../nn/attention.ts';
import { residualAdd } from '../nn/fused.ts';
import { activate, type ActivationName } from '../nn/mlp.ts';
import { loadSafetensors } from '../io/safetensors.ts';
import { AlignkitError } from '../tensor/errors.ts';

export interface BertConfig {
  modelType: string;
  /** RoBERTa-style positions (offset by padding_idx + 1). */
  robertaPositions: boolean;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  typeVocabSize: number;
  layerNormEps: number;
  padTokenId: number;
  activation: ActivationName;
}

const ROBERTA_TYPES = new Set(['roberta', 'xlm-roberta', 'camembert']);
const BERT_TYPES = new Set(['bert', ...ROBERTA_TYPES]);

export class BertConfigError extends AlignkitError {}

function field(cfg: Record<string, unknown>, file: string, name: string, fallback?: number): number {
  const v = cfg[name] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new BertConfigError(`${file}: field '${name}' must be a number${v === undefined ? ' (missing)' : `, got ${JSON.stringify(v)}`}`);
  return v;
}

export function parseBertConfig(raw: unknown, file = 'config.json'): BertConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new BertConfigError(`${file}: expected a JSON object`);
  const cfg = raw as Record<string, unknown>;
  const modelType = String(cfg.model_type ?? '');
  if (!BERT_TYPES.has(modelType)) throw new BertConfigError(`${file}: model_type '${modelType}' is not a BERT-family encoder (bert, roberta, xlm-roberta, camembert)`);
  if (cfg.position_embedding_type !== undefined && cfg.position_embedding_type !== 'absolute') throw new BertConfigError(`${file}: position_embedding_type '${String(cfg.position_embedding_type)}' is not supported (only absolute)`);
  const act = String(cfg.hidden_act ?? 'gelu');
  const activation: ActivationName | null = act === 'gelu' ? 'gelu_erf' : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_tanh' : act === 'relu' ? 'relu' : null;
  if (activation === null) throw new BertConfigError(`${file}: hidden_act '${act}' is not supported (gelu, gelu_new, relu)`);
  const c: BertConfig = {
    modelType,
    robertaPositions: ROBERTA_TYPES.has(modelType),
    vocabSize: field(cfg, file, 'vocab_size'),
    hiddenSize: field(cfg, file, 'hidden_size'),
    numLayers: field(cfg, file, 'num_hidden_layers'),
    numHeads: field(cfg, file, 'num_attention_heads'),
    intermediateSize: field(cfg, file, 'intermediate_size'),
    maxPositions: field(cfg, file, 'max_position_embeddings'),
    typeVocabSize: field(cfg, file, 'type_vocab_size', 2),
    layerNormEps: field(cfg, file, 'layer_norm_eps', 1e-12),
    padTokenId: field(cfg, file, 'pad_token_id', modelType === 'bert' ? 0 : 1),
    activation,
  };
  if (c.hiddenSize % c.numHeads !== 0) throw new BertConfigError(`${file}: hidden_size ${c.hiddenSize} is not a multiple of num_attention_heads ${c.numHeads}`);
  return c;
}

interface EncoderLayer {
  q: [Tensor, Tensor];
  k: [Tensor, Tensor];
  v: [Tensor, Tensor];
  o: [Tensor, Tensor];
  ln1: [Tensor, Tensor];
  fc: [Tensor, Tensor];
  proj: [Tensor, Tensor];
  ln2: [Tensor, Tensor];
}

export class BertEncoder {
  private readonly word: Tensor;
  private readonly position: Tensor;
  private readonly tokenType: Tensor | null;
  private readonly embLn: [Tensor, Tensor];
  private readonly layers: EncoderLayer[] = [];
  private readonly owned: Tensor[];

  constructor(
    readonly config: BertConfig,
    params: Record<string, Tensor>,
    source = 'model.safetensors',
  ) {
    // Task models (BertForMaskedLM, RobertaForSequenceClassification, ...) keep the encoder under a prefix.
    const prefix = ['', 'bert.', 'roberta.', 'model.'].find((p) => `${p}embeddings.word_embeddings.weight` in params);
    if (prefix === undefined) throw new BertConfigError(`${source}: no tensor 'embeddings.word_embeddings.weight' (is this a BERT-family checkpoint?)`);
    const C = config.hiddenSize;
    const get = (name: string, shape: readonly number[]): Tensor => {
      const t = params[prefix + name];
      if (!t) throw new BertConfigError(`${source}: tensor '${prefix}${name}' is missing`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) throw new BertConfigError(`${source}: tensor '${prefix}${name}' has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
      return t;
    };
    this.word = get('embeddings.word_embeddings.weight', [config.vocabSize, C]);
    this.position = get('embeddings.position_embeddings.weight', [config.maxPositions, C]);
    this.tokenType = params[`${prefix}embeddings.token_type_embeddings.weight`] ? get('embeddings.token_type_embeddings.weight', [config.typeVocabSize, C]) : null;
    this.embLn = [get('embeddings.LayerNorm.weight', [C]), get('embeddings.LayerNorm.bias', [C])];
    const I = config.intermediateSize;
    for (let i = 0; i < config.numLayers; i++) {
      const l = `encoder.layer.${i}.`;
      const lin = (n: string, o: number, inp: number): [Tensor, Tensor] => [get(`${l}${n}.weight`, [o, inp]), get(`${l}${n}.bias`, [o])];
      this.layers.push({
        q: lin('attention.self.query', C, C),
        k: lin('attention.self.key', C, C),
        v: lin('attention.self.value', C, C),
        o: lin('attention.output.dense', C, C),
        ln1: [get(`${l}attention.output.LayerNorm.weight`, [C]), get(`${l}attention.output.LayerNorm.bias`, [C])],
        fc: lin('intermediate.dense', I, C),
        proj: lin('output.dense', C, I),
        ln2: [get(`${l}output.LayerNorm.weight`, [C]), get(`${l}output.LayerNorm.bias`, [C])],
      });
    }
    this.owned = Object.values(params);
  }

  /** Loads config.json + model.safetensors from a Hugging Face folder. */
  static load(dir: string): BertEncoder {
    const cfgPath = join(dir, 'config.json');
    if (!existsSync(cfgPath)) throw new BertConfigError(`${dir}: no config.json (expected a Hugging Face model folder)`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(cfgPath, 'utf8'));
    } catch (e) {
      throw new BertConfigError(`${cfgPath}: invalid JSON (${(e as Error).message})`);
    }
    const config = parseBertConfig(raw, cfgPath);
    const weights = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    const path = existsSync(weights) ? weights : existsSync(index) ? index : null;
    if (path === null) throw new BertConfigError(`${dir}: no model.safetensors (or model.safetensors.index.json)`);
    const params = loadSafetensors(path);
    try {
      return new BertEncoder(config, params, path);
    } catch (e) {
      for (const t of Object.values(params)) t.dispose();
      throw e;
    }
  }

  dispose(): void {
    for (const t of this.owned) if (!t.disposed) t.dispose();
  }

  /** Position ids for right- or left-padded ids (HF's BertEmbeddings / RobertaEmbeddings conventions). */
  positionIds(ids: Int32Array, batch: number, seq: number): Int32Array {
    const pos = new Int32Array(batch * seq);
    const pad = this.config.padTokenId;
    for (let b = 0; b < batch; b++) {
      let count = 0;
      for (let t = 0; t < seq; t++) {
        const i = b * seq + t;
        if (this.config.robertaPositions) {
          if (ids[i] !== pad) pos[i] = pad + ++count;
          else pos[i] = pad;
        } else pos[i] = t;
        if (pos[i] >= this.config.maxPositions) throw new RangeError(`bert: position ${pos[i]} is beyond max_position_embeddings ${this.config.maxPositions} (sequence too long)`);
      }
    }
    return pos;
  }

  /**
   * Hidden states of `layer` (0 = embeddings, numLayers = last) for a batch: ids and mask [B, T] row-major
   * (mask 1 = token, 0 = padding). Returns a float32 copy [B * T * hidden].
   */
  hiddenStates(ids: Int32Array, mask: Int32Array, batch: number, seq: number, layer = this.config.numLayers): Float32Array {
    const c = this.config;
    if (!Number.isInteger(layer) || layer < 0 || layer > c.numLayers) throw new RangeError(`bert: layer must be in 0..${c.numLayers}, got ${layer}`);
    if (ids.length !== batch * seq || mask.length !== batch * seq) throw new RangeError(`bert: ids/mask must have ${batch}x${seq} entries`);
    for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || ids[i] >= c.vocabSize) throw new RangeError(`bert: token id ${ids[i]} outside the vocabulary of ${c.vocabSize}`);
    const positions = this.positionIds(ids, batch, seq);
    return noGrad(() =>
      tidy(() => {
        const idsT = intTensor(ids, [batch, seq]);
        let x = residualAdd(embedding(this.word, idsT), embedding(this.position, intTensor(positions, [batch, seq])));
        if (this.tokenType) x = residualAdd(x, embedding(this.tokenType, intTensor(new Int32Array(batch * seq), [batch, seq])));
        x = layerNorm(x, this.embLn[0], this.embLn[1], c.layerNormEps);
        const keyMask = intTensor(mask, [batch, seq]);
        const H = c.numHeads;
        const D = c.hiddenSize / H;
        for (let i = 0; i < layer; i++) {
          const w = this.layers[i];
          const heads = (p: [Tensor, Tensor]) => splitHeads(linear(x, p[0], p[1]), H, D);
          const a = mergeHeads(scaledDotProductAttention(heads(w.q), heads(w.k), heads(w.v), { causal: false, keyMask, scale: 1 / Math.sqrt(D) }));
          const h = layerNorm(residualAdd(x, linear(a, w.o[0], w.o[1])), w.ln1[0], w.ln1[1], c.layerNormEps);
          const m = linear(activate(linear(h, w.fc[0], w.fc[1]), c.activation), w.proj[0], w.proj[1]);
          x = layerNorm(residualAdd(h, m), w.ln2[0], w.ln2[1], c.layerNormEps);
        }
        return Float32Array.from(x.data as ArrayLike<number>);
      }),
    );
  }

  /** Hidden states of several token sequences (right-padded in batches); one [len * hidden] array per sequence. */
  encode(sequences: readonly (readonly number[])[], layer = this.config.numLayers, batchSize = 16): Float32Array[] {
    const H = this.config.hiddenSize;
    const out: Float32Array[] = [];
    for (let s = 0; s < sequences.length; s += batchSize) {
      const group = sequences.slice(s, s + batchSize);
      const B = group.length;
      const T = Math.max(1, ...group.map((g) => g.length));
      const ids = new Int32Array(B * T).fill(this.config.padTokenId);
      const mask = new Int32Array(B * T);
      group.forEach((g, b) => {
        ids.set(g, b * T);
        mask.fill(1, b * T, b * T + g.length);
      });
      const states = this.hiddenStates(ids, mask, B, T, layer);
      group.forEach((g, b) => out.push(states.slice(b * T * H, (b * T + g.length) * H)));
    }
    return out;
  }
}
