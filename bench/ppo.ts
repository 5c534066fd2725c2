// One PPO iteration on GPT-2-124M's shape, alignkit's trainer building blocks next to a plain eager PyTorch loop
// doing the same work, on the SAME random weights (a Hugging Face folder written once by initModel, loaded by both).
//
// Work per iteration (TRL PPOTrainer's, with its defaults where the issue names none):
// - generation: 8 prompts of 32 random token ids, 64 new tokens each sampled at temperature 0.7 (no top-k/top-p,
//   no EOS stop: every response has exactly 64 tokens, so both sides do the same amount of work);
// - scoring, no grad: the policy's log-probs of the response tokens (at the temperature) and its value head's
//   values, the reference's log-probs (a second copy of the initial weights, as TRL without PEFT), and a reward
//   model's score of prompt + response (a third copy with a one-label score head: AutoModelForSequenceClassification);
// - training: per-token rewards (−kl_coef · k1, the score on the last token), GAE (γ 1, λ 0.95), whitened
//   advantages, then num_ppo_epochs 4 passes over the 8 rows in one minibatch: forward with grad, the clipped
//   policy loss + vf_coef 0.1 × the clipped value loss, backward, global grad-norm clip 1.0, AdamW (lr 3e-6).
// - alignkit: sampleResponses / scoreResponses / ppoAdvantages / responseForward + ppoMethod's loss (the functions
//   `alignkit ppo` runs), the training phase driven by runTrainingLoop with makeOptimizer, as the trainer does.
// - torch (bench/peers/torch_ppo.py): HF generate(do_sample) with a KV cache, full-logits log_softmax/gather, an
//   nn.Linear value head on the last hidden state, the same losses written out in torch, clip_grad_norm_, AdamW.
// The two sample different responses (different RNGs): the work per iteration is the same, the tokens are not.
//
// Each side runs in its own child process, sequentially, so its peak RSS (VmHWM / ru_maxrss) is its own.
// Records: 'ppo iteration' s per iteration and one record per phase ('ppo generation', 'ppo scoring',
// 'ppo training'), MEDIANS over the timed iterations; 'ppo peak RSS' MB. Timing: 1 untimed warm-up iteration and
// 1 timed one per side (--quick: no warm-up). An iteration is about half a minute per side on 2 idle cores and
// several minutes on a loaded machine, so keep this case to --quick there.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeBackend, useBackend, withBackend } from '../src/backend/index.ts';
import { initModel, loadModel, type InitModelOptions } from '../src/models/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { noGrad, tidy } from '../src/tensor/index.ts';
import { PpoConfigSchema, type PpoConfig } from '../src/train/config.ts';
import { runTrainingLoop, type TrainTask } from '../src/train/loop.ts';
import { makeOptimizer } from '../src/train/session.ts';
import { rowScores } from '../src/trainers/reward.ts';
import { ppoMethod } from '../src/trainers/rl/ppo.ts';
import { gatherTokenData, layoutBatch, minibatchPieces, responseForward, rolloutRowSeed, sampleResponses, scoreResponses, type Piece } from '../src/trainers/rl/rollout.ts';
import { median, registerBench, runPythonPeer, type BenchContext } from './common.ts';

const MODEL_NAME = 'GPT-2-124M';
const MODEL: InitModelOptions = { arch: 'gpt2', vocab: 50257, hidden: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 1024, seed: 1 };
const PROMPTS = 8;
const PROMPT_LEN = 32;
const NEW_TOKENS = 64;
const PPO_EPOCHS = 4;
const SHAPE = `${MODEL_NAME} ${PROMPTS}x(${PROMPT_LEN}+${NEW_TOKENS}), ${PPO_EPOCHS} PPO epochs`;

/** Deterministic token ids in [0, vocab) (a 32-bit LCG, as bench/dpo.ts). */
function tokenIds(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % vocab);
  }
  return out;
}

const benchPrompts = (): number[][] => Array.from({ length: PROMPTS }, (_, i) => tokenIds(PROMPT_LEN, MODEL.vocab, 500 + i));

function ppoConfig(modelDir: string, outputDir: string): PpoConfig {
  // The prompt file and reward model path are never opened: the bench feeds token ids and its own reward model.
  return PpoConfigSchema.parse({
    model_name_or_path: modelDir, output_dir: outputDir, train_file: join(outputDir, 'unused.jsonl'), reward_model_path: modelDir,
    per_device_train_batch_size: PROMPTS, num_ppo_epochs: PPO_EPOCHS, num_mini_batches: 1, response_length: NEW_TOKENS,
  });
}

/** Peak resident set of this process (VmHWM), MiB; NaN where /proc is unavailable. */
function peakRssMb(): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const seconds = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e9;

// ------------------------------------------------------------------------------------------------ alignkit (child)

interface ChildSpec {
  dir: string;
  warmup: number;
  repeat: number;
}

interface Phases {
  generation: number;
  scoring: number;
  training: number;
  total: number;
}

interface ChildOut {
  threads: number;
  phases: Phases;
  samples: Phases[];
  peak_rss_mb: number;
  /** mean policy log-prob of the sampled tokens, first timed iteration (a sanity number: near −log V at init). */
  mean_logp: number;
}

function isPhases(v: unknown): v is Phases {
  return typeof v === 'object' && v !== null && 'generation' in v && 'scoring' in v && 'training' in v && 'total' in v;
}
function isChildOut(v: unknown): v is ChildOut {
  return typeof v === 'object' && v !== null && 'phases' in v && isPhases((v as { phases: unknown }).phases) && 'peak_rss_mb' in v;
}

async function alignkitChild(spec: ChildSpec): Promise<ChildOut> {
  if (!nativeAddon) throw new Error('native addon not built');
  useBackend('native'); // this process does nothing else (withBackend cannot span the loop's awaits)
  const outDir = mkdtempSync(join(tmpdir(), 'alignkit-bench-ppo-out-'));
  const cfg = ppoConfig(spec.dir, outDir);
  const method = ppoMethod(cfg);
  const policy = loadModel(spec.dir, { trainable: true });
  policy.attachValueHead(cfg.seed);
  const trainable = policy.namedParameters();
  for (const t of trainable.values()) t.requireGrad(true);
  const ref = loadModel(spec.dir, { trainable: false });
  const rm = loadModel(spec.dir, { trainable: false });
  rm.attachScoreHead(1, cfg.seed);
  const optimizer = makeOptimizer(cfg, trainable);
  const prompts = benchPrompts();
  const samples: Phases[] = [];
  let meanLogp = NaN;
  try {
    for (let it = 0; it < spec.warmup + spec.repeat; it++) {
      const t0 = process.hrtime.bigint();
      // ---- generation
      const sampled = sampleResponses(policy, prompts, prompts.map((_, r) => rolloutRowSeed(cfg.seed, it, r)), {
        responseLength: NEW_TOKENS, temperature: cfg.temperature, topK: cfg.top_k, topP: cfg.top_p, stopTokenIds: [], padTokenId: 0, forwardBatchSize: PROMPTS,
      });
      const generation = seconds(t0);
      const R = NEW_TOKENS;
      if (sampled.ids.some((x) => x.length !== R)) throw new Error('bench ppo: a response is not exactly 64 tokens long');
      // ---- scoring
      const t1 = process.hrtime.bigint();
      const so = { temperature: cfg.temperature, padTokenId: 0, forwardBatchSize: PROMPTS, R };
      const pol = scoreResponses(policy, prompts, sampled.ids, { ...so, values: true });
      const refLogps = scoreResponses(ref, prompts, sampled.ids, { ...so, values: false }).logps;
      const full = layoutBatch(prompts, sampled.ids, 0);
      const scores = Float32Array.from(noGrad(() => tidy(() => rowScores(rm, { rows: full.rows, seq: full.promptColumns + R, inputIds: full.inputIds, attentionMask: full.attentionMask }).toArray())));
      const scoring = seconds(t1);
      // ---- training
      const t2 = process.hrtime.bigint();
      const mask = new Uint8Array(PROMPTS * R).fill(1);
      const rollout = {
        iteration: it, rows: PROMPTS, R, promptIds: prompts, responseIds: sampled.ids, mask, group: Int32Array.from(prompts, (_, i) => i), scores,
        logps: pol.logps, refLogps, values: pol.values, klCoef: cfg.kl_coef,
      };
      const prep = method.prepare(rollout);
      const buffer = { R, oldLogps: pol.logps, refLogps, values: pol.values, advantages: prep.advantages, returns: prep.returns, klCoef: cfg.kl_coef };
      const queue: Piece[] = minibatchPieces(PROMPTS, PPO_EPOCHS, 1, 1, cfg.seed, it);
      let cursor = 0;
      const task: TrainTask<Piece> = {
        nextMicroBatch: async () => queue[cursor++],
        lossUnits: (mb) => method.lossUnits(mb.rows.length * R, mb.rows.length),
        tokens: (mb) => mb.rows.length * (PROMPT_LEN + R),
        forwardBackward(mb, normalizer) {
          return tidy(() => {
            const batch = layoutBatch(mb.rows.map((r) => prompts[r]), mb.rows.map((r) => sampled.ids[r]), 0);
            const f = responseForward(policy, batch, { temperature: cfg.temperature, values: true, entropy: 'metric' });
            const l = method.loss(f, gatherTokenData(buffer, mb.rows, f), normalizer);
            const value = l.loss.item();
            l.loss.backward();
            return { loss: value };
          });
        },
        epoch: () => 0,
        saveModel: () => {
          throw new Error('bench: saveModel is not expected (saveSteps null)');
        },
        loadModel: () => {
          throw new Error('bench: loadModel is not expected (no resume)');
        },
        state: () => ({ data: null, rng: {} }),
        restore: () => {},
      };
      const steps = PPO_EPOCHS;
      await runTrainingLoop(task, optimizer, { log: () => {} }, {
        outputDir: outDir, totalSteps: steps, gradientAccumulationSteps: 1, maxGradNorm: cfg.max_grad_norm,
        lrAt: () => cfg.learning_rate, loggingSteps: steps, evalSteps: null, evaluateAtEnd: false, saveSteps: null,
        saveTotalLimit: null, metricForBestModel: 'eval_loss', greaterIsBetter: false, loadBestModelAtEnd: false,
        earlyStopping: null, maxNanSteps: 0, resumeFrom: null, config: {},
      });
      const training = seconds(t2);
      if (it >= spec.warmup) {
        samples.push({ generation, scoring, training, total: seconds(t0) });
        if (Number.isNaN(meanLogp)) meanLogp = pol.logps.reduce((s, v) => s + v, 0) / pol.logps.length;
      }
    }
  } finally {
    optimizer.dispose();
    policy.dispose();
    ref.dispose();
    rm.dispose();
    rmSync(outDir, { recursive: true, force: true });
  }
  const med = (k: keyof Phases): number => median(samples.map((s) => s[k]));
  return {
    threads: nativeAddon.info().threads,
    phases: { generation: med('generation'), scoring: med('scoring'), training: med('training'), total: med('total') },
    samples, peak_rss_mb: peakRssMb(), mean_logp: meanLogp,
  };
}

// ------------------------------------------------------------------------------------------------ parent

const thisFile = fileURLToPath(import.meta.url);
const repoRoot = join(dirname(thisFile), '..');

function runAlignkitChild(ctx: BenchContext, spec: ChildSpec, threads: number): ChildOut | null {
  const res = spawnSync(process.execPath, [...process.execArgv, thisFile, '--child', JSON.stringify(spec)], {
    cwd: repoRoot, encoding: 'utf8', env: { ...process.env, ALIGNKIT_THREADS: String(threads) },
    stdio: ['ignore', 'pipe', 'inherit'], timeout: 1_800_000, maxBuffer: 16 << 20,
  });
  if (res.error || res.status !== 0) {
    ctx.note(`ppo: alignkit child failed (${res.error?.message ?? `exit ${res.status}`})`);
    return null;
  }
  try {
    const v: unknown = JSON.parse(res.stdout.trim().split('\n').slice(-1)[0]);
    return isChildOut(v) ? v : null;
  } catch {
    ctx.note('ppo: alignkit child printed no JSON');
    return null;
  }
}

interface PeerOut {
  version: string;
  threads: number;
  phases: Phases;
  peak_rss_mb: number;
  mean_logp: number;
}

function isPeerOut(v: unknown): v is PeerOut {
  return typeof v === 'object' && v !== null && 'version' in v && 'phases' in v && isPhases((v as { phases: unknown }).phases);
}

const fmtS = (s: number): string => `${s.toFixed(1)} s`;
const phaseLine = (p: Phases): string => `generation ${fmtS(p.generation)}, scoring ${fmtS(p.scoring)}, training ${fmtS(p.training)}`;

registerBench('ppo', (ctx: BenchContext) => {
  const cases = ['ppo iteration', 'ppo generation', 'ppo scoring', 'ppo training', 'ppo peak RSS'].filter((b) => ctx.wants(b, SHAPE));
  if (cases.length === 0) return;
  if (!nativeBackend || !nativeAddon) {
    ctx.note('ppo: native addon not built; skipping');
    return;
  }
  const threads = nativeAddon.info().threads;
  const quick = ctx.options.quick;
  // an iteration is tens of seconds per side: one timed iteration keeps the whole case to minutes
  const warmup = quick ? 0 : 1;
  const repeat = 1;
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-ppo-'));
  try {
    withBackend(nativeBackend, () => initModel({ ...MODEL, dir }).dispose());
    const cfg = ppoConfig(dir, dir);
    const peerSpec = {
      prompts: benchPrompts(), new_tokens: NEW_TOKENS, ppo_epochs: PPO_EPOCHS, temperature: cfg.temperature, kl_coef: cfg.kl_coef,
      gamma: cfg.gamma, lam: cfg.lam, cliprange: cfg.cliprange, cliprange_value: cfg.cliprange_value, vf_coef: cfg.vf_coef,
      lr: cfg.learning_rate, max_grad_norm: cfg.max_grad_norm, seed: cfg.seed, warmup, repeat,
    };
    const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ');
    ctx.note(`ppo: load average ${load()} before the torch peer`);
    const raw = runPythonPeer('torch_ppo.py', ['--threads', String(threads), '--dir', dir, '--spec', JSON.stringify(peerSpec)], { OMP_WAIT_POLICY: 'PASSIVE' }, 1_800_000);
    const peer = isPeerOut(raw) ? raw : null;
    const peerName = peer ? `torch ${peer.version.split('+')[0]}` : null;
    ctx.note(`ppo: load average ${load()} before alignkit`);
    const ak = runAlignkitChild(ctx, { dir, warmup, repeat }, threads);
    if (!ak) return;
    if (peer) ctx.note(`ppo torch iteration ${fmtS(peer.phases.total)}: ${phaseLine(peer.phases)}; mean sampled log-prob ${peer.mean_logp.toFixed(2)}; peak RSS ${peer.peak_rss_mb.toFixed(0)} MB (${peer.threads} threads)`);
    ctx.note(`ppo alignkit iteration ${fmtS(ak.phases.total)}: ${phaseLine(ak.phases)}; mean sampled log-prob ${ak.mean_logp.toFixed(2)}; peak RSS ${ak.peak_rss_mb.toFixed(0)} MB (${ak.threads} threads); load average now ${load()}`);
    const rec = (bench: string, k: keyof Phases): void => {
      if (ctx.wants(bench, SHAPE)) ctx.report({ bench, shape: SHAPE, unit: 's', value: ak.phases[k], peer: peerName, peer_value: peer ? peer.phases[k] : null });
    };
    rec('ppo iteration', 'total');
    rec('ppo generation', 'generation');
    rec('ppo scoring', 'scoring');
    rec('ppo training', 'training');
    if (ctx.wants('ppo peak RSS', SHAPE)) ctx.report({ bench: 'ppo peak RSS', shape: SHAPE, unit: 'MB', value: ak.peak_rss_mb, peer: peerName, peer_value: peer ? peer.peak_rss_mb : null });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `node --import tsx bench/ppo.ts --child <spec>`: the alignkit side alone (spawned by the bench above).
if (process.argv[1] === thisFile && process.argv[2] === '--child') {
  const spec = JSON.parse(process.argv[3] ?? '{}') as ChildSpec;
  process.stdout.write(JSON.stringify(await alignkitChild(spec)) + '\n');
}
