// The `alignkit` command line. Each command prints human-readable output, or one JSON object with --json.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { backend, nativeBackend } from '../backend/index.ts';
import { nativeAddon, nativeLoadError } from '../native/addon.ts';
import { DEMO_TEXT, runDemo } from '../demo/tiny_lm.ts';
import { VERSION } from '../version.ts';
import { registerTokenize } from './commands/tokenize.ts';
import { registerTrainCommands } from './commands/train.ts';
import { registerPreferenceCommands } from './commands/preference.ts';
import { registerRlCommands } from './commands/rl.ts';
import { registerTokenizerCommands } from './commands/tokenizer_train.ts';
import { registerDataCommands } from './commands/data.ts';
import { printModelInfo, registerConvert, registerModelCommands } from './commands/model.ts';
import { registerEval } from './commands/eval.ts';
import { registerCai } from './commands/cai.ts';
import { registerPipeline } from './commands/pipeline.ts';
import { registerStudio } from './commands/studio.ts';

function parseIntArg(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
    return n;
  };
}

function parseFloatArg(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number.`);
    return n;
  };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('alignkit')
    .description('Fine-tune and align language models in TypeScript: a native CPU tensor engine with autograd, SFT, reward models, PPO, DPO and evaluation.')
    .version(VERSION, '-V, --version', 'print the alignkit version')
    .showHelpAfterError();

  program
    .command('info')
    .description('show the compute backend (native addon or TypeScript fallback, SIMD level, threads); with --model, describe a model folder: architecture, parameters, dtype, memory for inference / full fine-tuning / LoRA, license')
    .option('--model <dir>', 'a Hugging Face model folder to describe')
    .option('--context <n>', 'with --model: sequence length for the memory estimates', parseIntArg('--context', 1), 2048)
    .option('--json', 'print one JSON object')
    .action((opts: { json?: boolean; model?: string; context: number }) => {
      if (opts.model) return printModelInfo({ model: opts.model, context: opts.context, json: opts.json });
      const info = backend().info();
      const details = {
        version: VERSION,
        backend: info.name,
        isa: info.isa,
        detectedIsa: nativeAddon?.info().detectedIsa ?? null,
        threads: info.threads,
        native: nativeBackend !== null,
        nativeError: nativeLoadError,
        node: process.version,
        nativeMemory: nativeAddon?.memoryStats() ?? null,
      };
      if (opts.json) console.log(JSON.stringify(details));
      else {
        console.log(`alignkit ${VERSION} on Node ${process.version}`);
        console.log(`backend: ${details.backend} (${details.isa}${details.detectedIsa ? `, CPU supports ${details.detectedIsa}` : ''}), ${details.threads} thread(s)`);
        if (!details.native) console.log(`native addon: unavailable — ${nativeLoadError}`);
        console.log('set ALIGNKIT_THREADS=N to change the thread count, ALIGNKIT_ISA=avx2|portable to lower the SIMD level, ALIGNKIT_BACKEND=js for the TypeScript backend');
      }
    });

  program
    .command('demo-engine')
    .description('train a small Llama-style character model from scratch on bundled text with the bare engine (exercises every fused kernel), then sample from it')
    .option('--steps <n>', 'optimizer steps', parseIntArg("--steps", 1), 300)
    .option('--batch-size <n>', 'sequences of 64 characters per step', parseIntArg('--batch-size', 1), 8)
    .option('--learning-rate <lr>', 'peak AdamW learning rate (linear warmup, cosine decay)', parseFloatArg("--learning-rate"), 1e-2)
    .option('--seed <n>', 'seed for initialisation, batches and dropout', parseIntArg('--seed', 0), 0)
    .option('--text <file>', 'train on this UTF-8 text file instead of the bundled notes', DEMO_TEXT)
    .option('--json', 'print one JSON object with the losses and the sample')
    .action((opts: { steps: number; batchSize: number; learningRate: number; seed: number; text: string; json?: boolean }) => {
      const log = opts.json ? () => {} : (line: string) => console.log(line);
      if (!opts.json) console.log(`alignkit demo-engine: ${opts.steps} steps on ${opts.text} (backend ${backend().info().isa}, ${backend().info().threads} threads)`);
      const r = runDemo({ steps: opts.steps, batchSize: opts.batchSize, learningRate: opts.learningRate, seed: opts.seed, logEvery: 20, textPath: opts.text, log });
      if (opts.json) console.log(JSON.stringify(r));
      else {
        console.log(`loss ${r.firstLoss.toFixed(4)} -> ${r.finalLoss.toFixed(4)} at ${Math.round(r.tokensPerSecond)} tokens/s`);
        console.log(`sample: ${JSON.stringify(r.sample)}`);
      }
    });

  registerTokenize(program);
  registerTokenizerCommands(program);
  registerModelCommands(program);
  registerConvert(program);
  registerTrainCommands(program);
  registerPreferenceCommands(program);
  registerRlCommands(program);
  registerDataCommands(program);
  registerEval(program);
  registerCai(program);
  registerPipeline(program);
  registerStudio(program);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed help/version/usage errors
      process.exitCode = e.exitCode;
      return;
    }
    const err = e as Error;
    console.error(`alignkit: ${err.message}`);
    if (process.env.ALIGNKIT_DEBUG) console.error(err.stack);
    process.exitCode = 1;
  }
}
