// `alignkit cai ...`: Constitutional AI — check a constitution, critique → revision (SFT data), AI feedback
// (preference data), the constitutional reward (scores), the constitutional filter (train / apply) and debate.
// Every command prints a summary, or one JSON object with --json; errors are one line and exit code 1.

import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { loadConstitution } from '../../cai/constitution.ts';
import { caiRevise } from '../../cai/revise.ts';
import { caiLabel } from '../../cai/label.ts';
import { constitutionalScorer } from '../../cai/reward.ts';
import { applyFilter, trainFilter } from '../../cai/filter.ts';
import { caiDebate, DEFAULT_STOP_PHRASE } from '../../cai/debate.ts';
import { readRows, writeJsonl } from '../../cai/io.ts';
import type { EndpointChatOptions } from '../../cai/chat.ts';
import { DataError } from '../../data/errors.ts';

const int = (name: string, min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}.`);
  return n;
};
const num = (name: string, min = -Infinity) => (v: string): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number${min > -Infinity ? ` >= ${min}` : ''}.`);
  return n;
};

interface SamplingFlags {
  maxNewTokens: number;
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  seed: number;
  json?: boolean;
}

interface EndpointFlags {
  endpointModel?: string;
  apiKeyEnv?: string;
  timeout: number;
  retries: number;
}

function samplingFlags(cmd: Command): Command {
  return cmd
    .option('--max-new-tokens <n>', 'tokens per generated text', int('--max-new-tokens', 1), 128)
    .option('--temperature <t>', 'sampling temperature (0 = greedy)', num('--temperature', 0), 0.7)
    .option('--top-k <k>', 'keep the k most likely tokens (0 = off)', int('--top-k', 0))
    .option('--top-p <p>', 'nucleus sampling threshold in (0, 1]', num('--top-p', 0))
    .option('--min-p <p>', 'min-p filter in [0, 1]', num('--min-p', 0))
    .option('--repetition-penalty <r>', 'HF repetition penalty (1 = off)', num('--repetition-penalty', 0))
    .option('--seed <n>', 'seed: principles, A/B order and every sample', int('--seed', 0), 0)
    .option('--json', 'print one JSON object');
}

function endpointFlags(cmd: Command, role: string): Command {
  return cmd
    .option('--endpoint-model <name>', `model name sent to an OpenAI-compatible ${role} endpoint (ollama and vLLM need it)`, 'default')
    .option('--api-key-env <VAR>', `environment variable holding the ${role} endpoint's API key (sent as a Bearer token)`)
    .option('--timeout <s>', `seconds per ${role} endpoint request`, num('--timeout', 0.001), 60)
    .option('--retries <n>', `retries after a failed ${role} endpoint request (network error, timeout, HTTP 5xx)`, int('--retries', 0), 2);
}

function endpointOptions(f: EndpointFlags): EndpointChatOptions {
  return { model: f.endpointModel, apiKey: f.apiKeyEnv ? process.env[f.apiKeyEnv] : undefined, timeoutMs: f.timeout * 1000, retries: f.retries };
}

function sampling(f: SamplingFlags) {
  return { maxNewTokens: f.maxNewTokens, temperature: f.temperature, topK: f.topK, topP: f.topP, minP: f.minP, repetitionPenalty: f.repetitionPenalty, seed: f.seed };
}

function run(name: string, fn: () => Promise<void>): Promise<void> {
  return fn().catch((e: unknown) => {
    const err = e as Error;
    console.error(`alignkit cai ${name}: ${err.message}`);
    if (process.env.ALIGNKIT_DEBUG) console.error(err.stack);
    process.exitCode = 1;
  });
}

const fmt = (v: number): string => (Number.isFinite(v) ? v.toFixed(4) : 'n/a');

export function registerCai(program: Command): void {
  const cai = program
    .command('cai')
    .description('Constitutional AI: critique and revise with a written constitution (SFT data), label preferences with an AI judge (DPO / reward-model data), score constitutional adherence (a PPO reward), train and apply a constitutional filter, debate. See docs/cai.md.');

  cai
    .command('check')
    .description('validate a constitution YAML file and list its principles (name, category, weight, sampling probability)')
    .option('--constitution <file>', 'constitution YAML (default: the shipped data/cai/default_constitution.yaml)')
    .option('--json', 'print one JSON object')
    .action((f: { constitution?: string; json?: boolean }) =>
      run('check', async () => {
        const c = loadConstitution(f.constitution);
        const total = c.principles.reduce((s, p) => s + p.weight, 0);
        const rows = c.principles.map((p) => ({ name: p.name, category: p.category, weight: p.weight, probability: p.weight / total, description: p.description }));
        if (f.json) console.log(JSON.stringify({ file: c.file, name: c.name, principles: rows }));
        else {
          console.log(`${c.file}: constitution '${c.name}', ${rows.length} principles`);
          for (const r of rows) console.log(`  ${r.name.padEnd(28)} ${String(r.category ?? '-').padEnd(14)} weight ${r.weight} (p = ${r.probability.toFixed(3)})`);
        }
      }),
    );

  endpointFlags(
    samplingFlags(
      cai
        .command('revise')
        .description('critique -> revision: the model answers each prompt, a critic critiques the answer against a sampled principle, the model revises it; --rounds times. Writes OUTPUT/sft.jsonl (prompt + final revision), OUTPUT/pairs.jsonl (revision chosen over the first answer), OUTPUT/trace.jsonl (every step) and OUTPUT/summary.json. An endpoint critic is probed before any generation.')
        .requiredOption('--model <dir>', 'the policy model folder')
        .requiredOption('--prompts <file>', "prompts: .jsonl/.json/.parquet with a 'prompt' string per row, or .txt (one per line)")
        .requiredOption('--output <dir>', 'output folder')
        .option('--constitution <file>', 'constitution YAML (default: the shipped data/cai/default_constitution.yaml)')
        .option('--rounds <n>', 'critique -> revision rounds', int('--rounds', 1), 1)
        .option('--critic <dir|url>', 'the critic: another model folder or an OpenAI-compatible chat endpoint URL (default: the policy critiques itself)'),
    ),
    'critic',
  ).action((f: SamplingFlags & EndpointFlags & { model: string; prompts: string; output: string; constitution?: string; rounds: number; critic?: string }) =>
    run('revise', async () => {
      const r = await caiRevise({ model: f.model, prompts: f.prompts, outputDir: f.output, constitution: f.constitution, rounds: f.rounds, critic: f.critic, criticEndpoint: endpointOptions(f), ...sampling(f), onStage: f.json ? undefined : (stage) => console.error(`cai revise: ${stage} done`) });
      if (f.json) console.log(JSON.stringify({ sft_path: r.sftPath, trace_path: r.tracePath, pairs_path: r.pairsPath, count: r.count, skipped: r.skipped, principle_counts: r.principleCounts }));
      else console.log(`cai revise: ${r.count} revised examples${r.skipped ? ` (${r.skipped} empty, left out)` : ''} -> ${r.sftPath}; trace ${r.tracePath}`);
    }),
  );

  endpointFlags(
    samplingFlags(
      cai
        .command('label')
        .description("AI feedback: a judge compares the two responses of each prompt under a sampled principle (A/B order randomised with the seed to cancel position bias) and writes preference JSONL {prompt, chosen, rejected, principle, order, p_a, confidence} for DPO or a reward model. Confidence: a local judge's log-prob probability of its answer; an endpoint's parsed answer (or its top logprobs when returned). Rows without 'responses' get two sampled ones.")
        .option('--model <dir>', 'a local judge model folder (also samples missing responses unless --policy)')
        .option('--judge <url>', 'an OpenAI-compatible chat endpoint as the judge (instead of --model)')
        .option('--policy <dir>', 'model folder that samples two responses for rows without them')
        .requiredOption('--input <file>', 'JSONL rows {prompt, responses: [a, b]} or {prompt}')
        .requiredOption('--output <file>', 'preference JSONL to write')
        .option('--constitution <file>', 'constitution YAML (default: the shipped data/cai/default_constitution.yaml)'),
    ),
    'judge',
  ).action((f: SamplingFlags & EndpointFlags & { model?: string; judge?: string; policy?: string; input: string; output: string; constitution?: string }) =>
    run('label', async () => {
      const r = await caiLabel({ model: f.model, judge: f.judge, judgeEndpoint: endpointOptions(f), policy: f.policy, input: f.input, output: f.output, constitution: f.constitution, ...sampling(f) });
      if (f.json) console.log(JSON.stringify({ path: r.path, count: r.count, mean_confidence: Number.isFinite(r.meanConfidence) ? r.meanConfidence : null, ties: r.ties, identical: r.identical }));
      else console.log(`cai label: ${r.count} preference pairs, mean confidence ${fmt(r.meanConfidence)}${r.ties ? `, ${r.ties} ties dropped` : ''}${r.identical ? `, ${r.identical} identical pairs skipped` : ''} -> ${r.path}`);
    }),
  );

  endpointFlags(
    cai
      .command('score')
      .description('the constitutional reward of (prompt, response) rows: for each principle the judge is asked whether the response follows it; reward = weighted mean of P(yes) (the same score as the PPO reward source constitution:JUDGE)')
      .requiredOption('--judge <dir|url>', 'judge model folder or OpenAI-compatible endpoint URL')
      .requiredOption('--input <file>', 'JSONL rows {prompt, response}')
      .option('--output <file>', 'write the rows with reward and per-principle P(yes)')
      .option('--constitution <file>', 'constitution YAML (default: the shipped data/cai/default_constitution.yaml)')
      .option('--json', 'print one JSON object'),
    'judge',
  ).action((f: EndpointFlags & { judge: string; input: string; output?: string; constitution?: string; json?: boolean }) =>
    run('score', async () => {
      const rows = await readRows(f.input, 'input');
      for (const r of rows) if (typeof r.row.response !== 'string') throw new DataError(f.input, r.line, 'response', 'missing: each row needs a response string');
      const scorer = await constitutionalScorer(f.judge, f.constitution, endpointOptions(f));
      try {
        const d = await scorer.details(rows.map((r) => ({ prompt: r.prompt, response: r.row.response as string })));
        if (f.output) writeJsonl(f.output, rows.map((r, i) => ({ prompt: r.prompt, response: r.row.response, reward: d[i].reward, principles: d[i].byPrinciple })));
        const mean = d.reduce((s, x) => s + x.reward, 0) / d.length;
        if (f.json) console.log(JSON.stringify({ count: d.length, mean_reward: mean, rewards: d.map((x) => x.reward), output: f.output ?? null }));
        else console.log(`cai score: ${d.length} responses, mean constitutional reward ${fmt(mean)}${f.output ? ` -> ${f.output}` : ''}`);
      } finally {
        scorer.dispose();
      }
    }),
  );

  const filter = cai.command('filter').description('the constitutional filter: a classifier with a reward-model head, trained on constitution-labelled responses, that drops or reranks generations');
  filter
    .command('train')
    .description("train the classifier with the reward-model trainer on preference pairs ({prompt, chosen, rejected}: from cai label or cai revise's pairs.jsonl) or labelled responses ({prompt, response, label: true|false}); saves a *ForSequenceClassification folder")
    .requiredOption('--model <dir>', 'base model folder')
    .requiredOption('--data <file>', 'preference pairs or labelled responses (JSONL)')
    .requiredOption('--output <dir>', 'classifier output folder')
    .option('--max-steps <n>', 'optimizer steps', int('--max-steps', 1), 100)
    .option('--learning-rate <lr>', 'peak learning rate', num('--learning-rate', 0), 1e-3)
    .option('--batch-size <n>', 'pairs per step', int('--batch-size', 1), 8)
    .option('--max-length <n>', 'longest prompt + response in tokens', int('--max-length', 2), 512)
    .option('--eval-fraction <f>', 'fraction of pairs held out for accuracy', num('--eval-fraction', 0), 0)
    .option('--seed <n>', 'seed', int('--seed', 0), 0)
    .option('--json', 'print one JSON object')
    .action((f: { model: string; data: string; output: string; maxSteps: number; learningRate: number; batchSize: number; maxLength: number; evalFraction: number; seed: number; json?: boolean }) =>
      run('filter train', async () => {
        const r = await trainFilter({ model: f.model, data: f.data, outputDir: f.output, maxSteps: f.maxSteps, learningRate: f.learningRate, batchSize: f.batchSize, maxLength: f.maxLength, evalFraction: f.evalFraction, seed: f.seed, console: !f.json });
        if (f.json) console.log(JSON.stringify({ output_dir: r.outputDir, pairs: r.pairs, train_loss: r.trainLoss, eval_accuracy: r.evalAccuracy }));
        else console.log(`cai filter train: ${r.pairs} pairs, train loss ${fmt(r.trainLoss)}${r.evalAccuracy !== null ? `, held-out accuracy ${fmt(r.evalAccuracy)}` : ''} -> ${r.outputDir}`);
      }),
    );
  samplingFlags(
    filter
      .command('apply')
      .description("score each prompt's candidates with the classifier, rerank them, keep the best --keep at or above --threshold; writes {prompt, completion (the best), score, candidates} (SFT-ready). Rows without responses get --n sampled candidates from --model.")
      .requiredOption('--classifier <dir>', 'the trained classifier folder')
      .requiredOption('--input <file>', 'JSONL rows {prompt, responses: [...]}, {prompt, response} or {prompt}')
      .requiredOption('--output <file>', 'JSONL to write')
      .option('--model <dir>', 'model folder that samples candidates for rows without responses')
      .option('--n <n>', 'candidates to sample per prompt', int('--n', 1), 4)
      .option('--keep <k>', 'candidates kept per prompt', int('--keep', 1), 1)
      .option('--threshold <score>', 'drop candidates scoring below this', num('--threshold')),
  ).action((f: SamplingFlags & { classifier: string; input: string; output: string; model?: string; n: number; keep: number; threshold?: number }) =>
    run('filter apply', async () => {
      const r = await applyFilter({ classifier: f.classifier, input: f.input, output: f.output, model: f.model, n: f.n, keep: f.keep, threshold: f.threshold ?? null, ...sampling(f) });
      if (f.json) console.log(JSON.stringify({ path: r.path, count: r.count, dropped: r.dropped, candidates: r.candidates, mean_best_score: Number.isFinite(r.meanBestScore) ? r.meanBestScore : null }));
      else console.log(`cai filter apply: ${r.count} prompts kept${r.dropped ? `, ${r.dropped} with nothing above the threshold dropped` : ''}, ${r.candidates} candidates scored, mean best score ${fmt(r.meanBestScore)} -> ${r.path}`);
    }),
  );

  endpointFlags(
    samplingFlags(
      cai
        .command('debate')
        .description(`debate / iterative refinement: the model proposes an answer, a critic reviews it (a sampled principle's critique request with --constitution), the proposer improves it seeing the whole exchange; up to --turns critic turns, stopping early when the critic replies "${DEFAULT_STOP_PHRASE}". Writes {prompt, completion (the final answer), turns, converged, transcript}.`)
        .requiredOption('--model <dir>', 'the proposer model folder')
        .requiredOption('--prompts <file>', "prompts: .jsonl/.json/.parquet with a 'prompt' string per row, or .txt")
        .requiredOption('--output <file>', 'JSONL to write')
        .option('--critic <dir|url>', 'the critic: a model folder or an OpenAI-compatible chat endpoint URL (default: the proposer)')
        .option('--turns <n>', 'critic turns at most', int('--turns', 1), 2)
        .option('--constitution <file>', 'critique with the principles of this constitution')
        .option('--stop-phrase <text>', 'the critic reply that ends a debate early', DEFAULT_STOP_PHRASE),
    ),
    'critic',
  ).action((f: SamplingFlags & EndpointFlags & { model: string; prompts: string; output: string; critic?: string; turns: number; constitution?: string; stopPhrase: string }) =>
    run('debate', async () => {
      const r = await caiDebate({ model: f.model, critic: f.critic, criticEndpoint: endpointOptions(f), prompts: f.prompts, output: f.output, turns: f.turns, constitution: f.constitution, stopPhrase: f.stopPhrase, ...sampling(f) });
      if (f.json) console.log(JSON.stringify({ path: r.path, count: r.count, converged: r.converged, mean_turns: r.meanTurns }));
      else console.log(`cai debate: ${r.count} debates, ${r.converged} converged, ${r.meanTurns.toFixed(2)} critic turns on average -> ${r.path}`);
    }),
  );
}
