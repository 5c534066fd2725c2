// Model commands: init-model (random HF folder), model-info (size and memory estimates), score
// (per-token log-probs, NLL, perplexity) and generate (sampling with a KV cache).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { generate, sequenceLogprobs } from '../../generate/index.ts';
import { SUPPORTED_MODEL_TYPES, exportGguf, ggufToHfFolder, initModel, loadModel, readModelConfig, saveModel, type SupportedModelType } from '../../models/index.ts';
import { openSafetensors } from '../../io/index.ts';
import * as T from '../../tensor/index.ts';
import { loadTokenizer, type Tokenizer } from '../../tokenizer/index.ts';

function positiveInt(name: string, min = 1) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}
function nonNegativeNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number >= 0.`);
    return n;
  };
}
function idList(name: string) {
  return (v: string): number[] => {
    const ids = v.split(',').map((s) => Number(s.trim()));
    if (ids.length === 0 || ids.some((n) => !Number.isSafeInteger(n) || n < 0)) throw new InvalidArgumentError(`${name} must be comma-separated non-negative integers.`);
    return ids;
  };
}

function tokenizerIfPresent(dir: string): Tokenizer | null {
  return existsSync(join(dir, 'tokenizer.json')) ? loadTokenizer(dir, { requireConfig: false }) : null;
}

function print(json: boolean | undefined, value: Record<string, unknown>, human: () => void): void {
  if (json) console.log(JSON.stringify(value));
  else human();
}

/** The `license:` of a model card's YAML front matter (README.md), if any. */
function modelCardLicense(dir: string): string | null {
  const p = join(dir, 'README.md');
  if (!existsSync(p)) return null;
  const text = readFileSync(p, 'utf8');
  const fm = /^---\n([\s\S]*?)\n---/.exec(text);
  const m = fm && /^license:\s*(.+)$/m.exec(fm[1]);
  return m ? m[1].trim().replace(/^["']|["']$/g, '') : null;
}

/** `alignkit info --model DIR`: architecture, parameter count, stored dtype, memory estimates, license. */
export function printModelInfo(o: { model: string; context: number; json?: boolean }): void {
      const config = readModelConfig(o.model);
      const reader = openSafetensors(o.model);
      let params = 0;
      const dtypes = new Map<string, number>();
      try {
        for (const t of reader.tensors) {
          const n = t.shape.reduce((a, b) => a * b, 1);
          params += n;
          dtypes.set(t.dtype, (dtypes.get(t.dtype) ?? 0) + n);
        }
      } finally {
        reader.close();
      }
      const GiB = 2 ** 30;
      const kvBytes = 2 * config.numLayers * config.numKvHeads * config.headDim * o.context * 4;
      // Activations kept for backward, per token, roughly: ~18 hidden-sized float32 tensors per layer.
      const actBytes = 18 * config.numLayers * config.hiddenSize * o.context * 4;
      const estimate = {
        inference: (params * 4 + kvBytes) / GiB, // float32 weights + KV cache for one sequence
        fullFineTune: (params * 16 + actBytes) / GiB, // weights, grads, AdamW moments (float32) + activations
        lora: (params * 4 + actBytes + params * 0.01 * 16) / GiB, // frozen weights + ~1% trainable adapters
      };
      const info = {
        modelType: config.modelType, architectures: config.architectures, parameters: params,
        storedDtypes: Object.fromEntries(dtypes), hidden: config.hiddenSize, layers: config.numLayers, heads: config.numHeads,
        kvHeads: config.numKvHeads, headDim: config.headDim, vocab: config.vocabSize, maxPositions: config.maxPositions,
        tiedEmbeddings: config.tieWordEmbeddings, license: modelCardLicense(o.model) ?? (typeof config.raw.license === 'string' ? config.raw.license : null),
        memoryGiB: { context: o.context, ...estimate },
      };
      print(o.json, info, () => {
        console.log(`${info.modelType} (${info.architectures.join(', ') || 'no architectures listed'}): ${params.toLocaleString('en')} parameters, stored as ${[...dtypes.keys()].join('/')}`);
        console.log(`hidden ${info.hidden}, ${info.layers} layers, ${info.heads} heads (${info.kvHeads} kv, head dim ${info.headDim}), vocab ${info.vocab}, max positions ${info.maxPositions}${info.tiedEmbeddings ? ', tied embeddings' : ''}`);
        console.log(`memory at ${o.context} tokens (float32): inference ≈ ${estimate.inference.toFixed(2)} GiB, full fine-tuning with AdamW ≈ ${estimate.fullFineTune.toFixed(2)} GiB, LoRA ≈ ${estimate.lora.toFixed(2)} GiB`);
        console.log(`license: ${info.license ?? 'not stated in the folder (check the model card)'}`);
      });
}

export function registerModelCommands(program: Command): void {
  program
    .command('init-model')
    .description('write a randomly initialised Hugging Face model folder (config.json, model.safetensors, tokenizer files)')
    .requiredOption('--arch <arch>', `architecture: ${SUPPORTED_MODEL_TYPES.join(', ')}`)
    .requiredOption('--hidden <n>', 'hidden size', positiveInt('--hidden'))
    .requiredOption('--layers <n>', 'number of layers', positiveInt('--layers'))
    .requiredOption('--heads <n>', 'attention heads', positiveInt('--heads'))
    .option('--kv-heads <n>', 'key/value heads for grouped-query attention (default: --heads)', positiveInt('--kv-heads'))
    .option('--intermediate <n>', 'MLP width (default: 4×hidden for gpt2, ~8/3×hidden for the Llama family)', positiveInt('--intermediate'))
    .option('--tokenizer <dir>', 'copy tokenizer files from this folder; the vocabulary size and BOS/EOS/pad ids come from it')
    .option('--vocab <n>', 'vocabulary size (required without --tokenizer)', positiveInt('--vocab'))
    .option('--max-positions <n>', 'maximum sequence length', positiveInt('--max-positions'))
    .option('--seed <n>', 'initialisation seed', positiveInt('--seed', 0), 0)
    .requiredOption('--out <dir>', 'output folder (written atomically)')
    .option('--json', 'print one JSON object')
    .action((o: { arch: string; hidden: number; layers: number; heads: number; kvHeads?: number; intermediate?: number; tokenizer?: string; vocab?: number; maxPositions?: number; seed: number; out: string; json?: boolean }) => {
      if (!(SUPPORTED_MODEL_TYPES as readonly string[]).includes(o.arch)) throw new Error(`init-model: unknown --arch '${o.arch}' (supported: ${SUPPORTED_MODEL_TYPES.join(', ')})`);
      const tok = o.tokenizer ? loadTokenizer(o.tokenizer, { requireConfig: false }) : null;
      const vocab = o.vocab ?? tok?.vocabSize;
      if (!vocab) throw new Error('init-model: give --vocab or --tokenizer');
      if (tok && vocab < tok.vocabSize) throw new Error(`init-model: --vocab ${vocab} is smaller than the tokenizer's ${tok.vocabSize} tokens`);
      const model = initModel({
        arch: o.arch as SupportedModelType, hidden: o.hidden, layers: o.layers, heads: o.heads, kvHeads: o.kvHeads, intermediate: o.intermediate,
        vocab, seed: o.seed, maxPositions: o.maxPositions, bosTokenId: tok?.bosId ?? null, eosTokenId: tok?.eosId ?? null, padTokenId: tok?.padId ?? null,
      });
      const params = model.numParameters();
      try {
        saveModel(model, o.out, { tokenizerDir: o.tokenizer ?? null });
      } finally {
        model.dispose();
      }
      print(o.json, { out: o.out, arch: o.arch, parameters: params, vocab }, () => console.log(`wrote ${o.arch} with ${params.toLocaleString('en')} parameters to ${o.out}`));
    });

  program
    .command('score')
    .description('per-token log-probabilities of a text under a model: logprobs[i] = log p(ids[i+1] | ids[..i]), with NLL and perplexity')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--text <text>', 'text to score (tokenized with the folder tokenizer, special tokens added)')
    .option('--ids <ids>', 'token ids to score, comma-separated', idList('--ids'))
    .option('--json', 'print {"ids","logprobs","nll","perplexity"}')
    .action((o: { model: string; text?: string; ids?: number[]; json?: boolean }) => {
      if ((o.text === undefined) === (o.ids === undefined)) throw new Error('score: give exactly one of --text and --ids');
      const tok = o.text !== undefined ? loadTokenizer(o.model, { requireConfig: false }) : null;
      const ids = tok ? tok.encode(o.text as string) : (o.ids as number[]);
      if (ids.length < 2) throw new Error(`score: need at least 2 tokens, got ${ids.length}`);
      const model = loadModel(o.model, { trainable: false });
      try {
        const logprobs = T.noGrad(() => T.tidy(() => sequenceLogprobs(model, T.intTensor(ids, [1, ids.length])).toArray()));
        const nll = -logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
        const result = { ids, logprobs, nll, perplexity: Math.exp(nll) };
        print(o.json, result, () => {
          console.log(`${ids.length} tokens, NLL ${nll.toFixed(4)} nats/token, perplexity ${result.perplexity.toFixed(3)}`);
          const toks = tok ? tok.tokens(ids) : ids.map(String);
          logprobs.forEach((lp, i) => console.log(`${String(ids[i + 1]).padStart(8)} ${JSON.stringify(toks[i + 1]).padEnd(20)} ${lp.toFixed(4)}`));
        });
      } finally {
        model.dispose();
      }
    });

  program
    .command('generate')
    .description('continue a prompt (greedy with --temperature 0, else seeded sampling) using a KV cache')
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .option('--prompt <text>', 'prompt text (tokenized with the folder tokenizer, special tokens added)')
    .option('--prompt-ids <ids>', 'prompt token ids, comma-separated', idList('--prompt-ids'))
    .option('--max-new-tokens <n>', 'tokens to generate at most', positiveInt('--max-new-tokens', 0), 32)
    .option('--temperature <t>', '0 = greedy', nonNegativeNumber('--temperature'), 1)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', positiveInt('--top-k', 0), 0)
    .option('--top-p <p>', 'nucleus sampling mass in (0, 1]', nonNegativeNumber('--top-p'), 1)
    .option('--min-p <p>', 'drop tokens below p × the top probability', nonNegativeNumber('--min-p'), 0)
    .option('--repetition-penalty <r>', 'HF repetition penalty (1 = off)', nonNegativeNumber('--repetition-penalty'), 1)
    .option('--seed <n>', 'sampling seed', positiveInt('--seed', 0), 0)
    .option('--json', 'print {"ids":[...new ids...],"text":"...","finishReason":...,"logprobs":[...]}')
    .action((o: { model: string; prompt?: string; promptIds?: number[]; maxNewTokens: number; temperature: number; topK: number; topP: number; minP: number; repetitionPenalty: number; seed: number; json?: boolean }) => {
      if ((o.prompt === undefined) === (o.promptIds === undefined)) throw new Error('generate: give exactly one of --prompt and --prompt-ids');
      const tok = tokenizerIfPresent(o.model);
      if (o.prompt !== undefined && !tok) throw new Error(`generate: ${o.model} has no tokenizer.json; use --prompt-ids`);
      const ids = o.prompt !== undefined ? (tok as Tokenizer).encode(o.prompt) : (o.promptIds as number[]);
      const model = loadModel(o.model, { trainable: false });
      try {
        const [r] = T.noGrad(() =>
          generate(model, {
            inputIds: [ids], maxNewTokens: o.maxNewTokens, temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP,
            repetitionPenalty: o.repetitionPenalty, seed: o.seed, returnLogprobs: true,
          }),
        );
        const text = tok ? tok.decode(r.ids, { skipSpecialTokens: true }) : null;
        print(o.json, { ids: r.ids, text, finishReason: r.finishReason, logprobs: r.logprobs }, () => {
          console.log(text ?? r.ids.join(','));
          console.error(`(${r.ids.length} tokens, finished: ${r.finishReason})`);
        });
      } finally {
        model.dispose();
      }
    });
}

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert between a Hugging Face model folder and GGUF (llama, mistral, qwen2, qwen3): IN.gguf -> OUT folder, or IN folder -> OUT.gguf')
    .argument('<in>', 'a Hugging Face model folder, or a .gguf file')
    .argument('<out>', 'the .gguf file to write, or the folder to write')
    .option('--type <type>', 'tensor type of matrices when writing GGUF: F32 or F16', 'F16')
    .option('--json', 'print one JSON object describing what was written')
    .action((input: string, output: string, o: { type: string; json?: boolean }) => {
      if (o.type !== 'F32' && o.type !== 'F16') throw new Error(`convert: --type must be F32 or F16, got '${o.type}'`);
      if (input.endsWith('.gguf')) {
        if (output.endsWith('.gguf')) throw new Error('convert: both paths are .gguf; one side must be a model folder');
        const r = ggufToHfFolder(input, output);
        print(o.json, { from: input, to: output, ...r }, () => console.log(`wrote ${output} from ${input}`));
        return;
      }
      if (!output.endsWith('.gguf')) throw new Error('convert: OUT must end in .gguf when IN is a model folder');
      const model = loadModel(input, { trainable: false });
      try {
        const r = exportGguf(model, existsSync(join(input, 'tokenizer.json')) ? input : null, output, { type: o.type });
        print(o.json, { from: input, to: output, architecture: r.architecture, bytes: r.bytes, tensors: r.tensors.length }, () =>
          console.log(`wrote ${output} (${r.architecture}, ${r.tensors.length} tensors, ${(r.bytes / 2 ** 20).toFixed(1)} MiB)`),
        );
      } finally {
        model.dispose();
      }
    });
}
