// SFT training throughput and peak memory next to PyTorch eager CPU (transformers), on the SAME weights: the
// bench writes a random Hugging Face folder once per model with initModel; alignkit (bench/sft_case.ts) and a
// Python peer (bench/peers/torch_sft.py, AutoModelForCausalLM.from_pretrained) load it and train on the same
// fixed batch with the same optimizer settings and the same thread count.
//
// Cases, for the GPT-2-124M and SmolLM2-135M shapes, batch 4 x seq 256 (1024 tokens per optimizer step):
// - 'sft full':     full fine-tuning, every parameter trained.
// - 'sft lora r16': LoRA r = 16, alpha = 32, no dropout, on the attention projections (llama: q_proj, k_proj,
//                   v_proj, o_proj; gpt2: attn.c_attn and attn.c_proj, not the MLP's c_proj), base weights frozen.
// One step = zero_grad, forward + backward of the next-token loss (labels = ids), clip the global grad norm to 1.0,
// AdamW (lr 1e-5, weight decay 0.01 on matrices, none on biases / norms). alignkit runs its real training loop
// (runTrainingLoop + sftLossBackward + AdamW over weightDecayGroups; LoRA via applyLora); torch runs
// model(input_ids, labels=labels).loss.backward(), clip_grad_norm_, opt.step() (LoRA via peft when importable,
// else a hand-written wrapper with PEFT's math: the peer says which, and so does a note).
//
// Reported per case (records through the Reporter, so --json works as for every bench):
// - 'sft step'     tok/s = 4 * 256 / (MEDIAN step time), after 1 warm-up step; 3 timed steps with --quick, 5 else.
// - 'sft peak RSS' MB (MiB) of the case's own process (VmHWM: loading included), alignkit vs torch. Each case runs
//                  in a child process of its own (alignkit: node --import tsx bench/sft_case.ts; torch: the peer),
//                  so the peaks never mix. Lower is better: the ratio is torch / alignkit.
// - 'sft native peak' MB: alignkit's native allocator peak during training (weights included; no peer).
// After the records, a summary table (stdout, not with --json) puts tok/s and RSS side by side, and a note per case
// gives the step's time split (alignkit: inside its loop; torch: phase by phase) and both first-step losses (equal
// for full fine-tuning: same weights, same data; LoRA's A matrices are drawn by different generators).
//
// Cost: each side loads the model and runs 1 + N steps per case, all sequential (never sharing the cores). A full
// fine-tuning step of these shapes takes several seconds on 2 cores, so --quick is a few minutes and the full bench
// about twice that; on a machine shared with other work the ratios move (torch's OpenMP threads spin at barriers
// and suffer more from oversubscription): say so when quoting numbers.
//
// Filters: shapes start with the model name ('gpt2-124M sft full B4 T256', 'SmolLM2-135M sft lora r16 B4 T256'),
// so `--filter 124M`, `--filter "sft lora"`, `--filter "SmolLM2-135M sft full"` select cases.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initModel, type InitModelOptions } from '../src/models/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { registerBench, runPythonPeer, type BenchContext } from './common.ts';
import type { CaseResult, CaseSpec } from './sft_case.ts';

interface ModelCase {
  name: string;
  init: InitModelOptions;
  /** LoRA targets as one full-match regular expression over module names (same string on both sides). */
  loraTargets: string;
}

// The shapes (and seeds) of bench/models.ts.
const MODELS: ModelCase[] = [
  {
    name: 'gpt2-124M',
    init: { arch: 'gpt2', vocab: 50257, hidden: 768, layers: 12, heads: 12, intermediate: 3072, maxPositions: 1024, seed: 1 },
    loraTargets: String.raw`.*\.attn\.(c_attn|c_proj)`,
  },
  {
    name: 'SmolLM2-135M',
    init: { arch: 'llama', vocab: 49152, hidden: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, tieWordEmbeddings: true, maxPositions: 2048, seed: 2 },
    loraTargets: String.raw`.*\.(q_proj|k_proj|v_proj|o_proj)`,
  },
];

const BATCH = 4;
const SEQ = 256;
const THREADS = 2;
const LORA = { r: 16, alpha: 32 };
const OPTIM = { lr: 1e-5, weightDecay: 0.01, maxGradNorm: 1.0 };
type Mode = 'full' | 'lora';
const MODES: Mode[] = ['full', 'lora'];

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

/** Deterministic token ids in [0, vocab) (a 32-bit LCG, as bench/models.ts). */
function tokenIds(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(s % vocab);
  }
  return out;
}

function shapeOf(m: ModelCase, mode: Mode): string {
  return `${m.name} sft ${mode === 'full' ? 'full' : `lora r${LORA.r}`} B${BATCH} T${SEQ}`;
}

interface PeerOut {
  version: string;
  cpu_s: number;
  lora_impl: string | null;
  step_s: number;
  samples: number[];
  phases: Record<string, number>;
  losses: number[];
  peak_rss_mb: number;
  train_peak_rss_mb: number | null;
  rss_before_train_mb: number | null;
}

function isPeerOut(v: unknown): v is PeerOut {
  return typeof v === 'object' && v !== null && 'step_s' in v && 'peak_rss_mb' in v && 'version' in v;
}

function isCaseResult(v: unknown): v is CaseResult {
  return typeof v === 'object' && v !== null && (v as { library?: unknown }).library === 'alignkit' && 'step_s' in v;
}

/** Runs bench/sft_case.ts in a child process; null (with a note) when it fails. */
function runAlignkitCase(ctx: BenchContext, spec: CaseSpec): CaseResult | null {
  const res = spawnSync(process.execPath, ['--import', 'tsx', join(here, 'sft_case.ts'), JSON.stringify(spec)], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ALIGNKIT_THREADS: String(THREADS) },
    timeout: 1_800_000,
    maxBuffer: 64 << 20,
  });
  const last = (res.stdout || '').trim().split('\n').slice(-1)[0] ?? '';
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : (res.stderr || '').trim().split('\n').slice(-1)[0] || `exit ${res.status}`;
    ctx.note(`sft: alignkit case failed (${why})`);
    return null;
  }
  try {
    const parsed: unknown = JSON.parse(last);
    if (isCaseResult(parsed)) return parsed;
    ctx.note(`sft: alignkit case: ${JSON.stringify(parsed)}`);
  } catch {
    ctx.note('sft: alignkit case printed no JSON');
  }
  return null;
}

interface Row {
  shape: string;
  tps: number | null;
  peerTps: number | null;
  rss: number | null;
  peerRss: number | null;
}

const ms = (s: number | undefined | null): string => (s === undefined || s === null || !Number.isFinite(s) ? '-' : (s * 1e3).toFixed(0));

function benchModel(ctx: BenchContext, m: ModelCase, modes: Mode[], rows: Row[]): void {
  const steps = ctx.options.quick ? 3 : 5;
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-sft-model-'));
  try {
    const t0 = Date.now();
    initModel({ ...m.init, dir }).dispose();
    ctx.note(`${m.name}: random HF folder written in ${((Date.now() - t0) / 1e3).toFixed(1)} s`);
    const ids = tokenIds(BATCH * SEQ, m.init.vocab, 4242);
    for (const mode of modes) {
      const shape = shapeOf(m, mode);
      const lora = mode === 'lora' ? { ...LORA, targets: m.loraTargets } : null;
      // The peer first (sequential: the two never share the cores).
      const tp = Date.now();
      const peerSpec = {
        mode, lora: lora && { r: lora.r, alpha: lora.alpha, targets: [lora.targets] }, batch: BATCH, seq: SEQ, ids,
        lr: OPTIM.lr, weight_decay: OPTIM.weightDecay, max_grad_norm: OPTIM.maxGradNorm, warmup: 1, steps,
      };
      const raw = runPythonPeer('torch_sft.py', ['--threads', String(THREADS), '--dir', dir, '--spec', JSON.stringify(peerSpec)], {}, 1_800_000);
      const peer = isPeerOut(raw) ? raw : null;
      const peerName = peer ? `torch ${peer.version.split('+')[0]}` : null;
      ctx.note(`${shape}: torch peer took ${((Date.now() - tp) / 1e3).toFixed(1)} s${peer?.lora_impl ? ` (LoRA: ${peer.lora_impl})` : ''}`);

      const ta = Date.now();
      const ak = runAlignkitCase(ctx, { dir, mode, lora, batch: BATCH, seq: SEQ, ids, lr: OPTIM.lr, weightDecay: OPTIM.weightDecay, maxGradNorm: OPTIM.maxGradNorm, warmup: 1, steps });
      ctx.note(`${shape}: alignkit case took ${((Date.now() - ta) / 1e3).toFixed(1)} s`);
      if (!ak) continue;

      const tokens = BATCH * SEQ;
      ctx.report({ bench: 'sft step', shape, unit: 'tok/s', value: tokens / ak.step_s, peer: peerName, peer_value: peer ? tokens / peer.step_s : null });
      ctx.report({ bench: 'sft peak RSS', shape, unit: 'MB', value: ak.peak_rss_mb, peer: peerName, peer_value: peer?.peak_rss_mb ?? null });
      if (ak.native_peak_mb !== null) ctx.report({ bench: 'sft native peak', shape, unit: 'MB', value: ak.native_peak_mb, peer: null, peer_value: null });
      rows.push({ shape, tps: tokens / ak.step_s, peerTps: peer ? tokens / peer.step_s : null, rss: ak.peak_rss_mb, peerRss: peer?.peak_rss_mb ?? null });

      const lp = ak.loop_phases;
      ctx.note(
        `${shape}: alignkit step ${ms(ak.step_s)} ms = data ${ms(lp.data)} + fwd+bwd ${ms(lp.fwd_bwd)} + AdamW ${ms(lp.opt)} + zero_grad ${ms(lp.zero_grad)} + clip/loop ${ms(lp.rest)}` +
          (peer ? `; torch step ${ms(peer.step_s)} ms = fwd ${ms(peer.phases.fwd)} + bwd ${ms(peer.phases.bwd)} + clip ${ms(peer.phases.clip)} + AdamW ${ms(peer.phases.opt)} + zero_grad ${ms(peer.phases.zero_grad)}` : ''),
      );
      ctx.note(
        `${shape}: step times alignkit [${ak.samples.map((x) => x.toFixed(2)).join(', ')}] s, ${ak.cpu_s.toFixed(1)} CPU-s/step` +
          (peer ? `; torch [${peer.samples.map((x) => x.toFixed(2)).join(', ')}] s, ${peer.cpu_s.toFixed(1)} CPU-s/step` : ''),
      );
      ctx.note(
        `${shape}: RSS before the first step ${ak.rss_before_train_mb.toFixed(0)} MB, peak while training ${ak.train_peak_rss_mb?.toFixed(0) ?? '-'} MB (alignkit)` +
          (peer ? ` vs ${peer.rss_before_train_mb?.toFixed(0) ?? '-'} / ${peer.train_peak_rss_mb?.toFixed(0) ?? '-'} MB (torch)` : '') +
          `; first-step loss ${ak.losses[0]?.toFixed(6)}${peer ? ` vs ${peer.losses[0]?.toFixed(6)}` : ''}`,
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function printSummary(rows: Row[]): void {
  const f = (v: number | null, d = 0): string => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(d));
  const ratio = (a: number | null, b: number | null): string => (a && b ? (a / b).toFixed(2) : '-');
  const head = ['case', 'alignkit tok/s', 'torch tok/s', 'ratio', 'alignkit RSS MB', 'torch RSS MB', 'RSS ratio'];
  const lines = rows.map((r) => [r.shape, f(r.tps), f(r.peerTps), ratio(r.tps, r.peerTps), f(r.rss), f(r.peerRss), ratio(r.peerRss, r.rss)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmtLine = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  process.stdout.write(`\nSFT training (threads ${THREADS}; ratio = alignkit / torch tok/s; RSS ratio = torch / alignkit peak RSS, > 1: alignkit uses less)\n`);
  process.stdout.write(fmtLine(head) + '\n' + fmtLine(widths.map((w) => '-'.repeat(w))) + '\n');
  for (const l of lines) process.stdout.write(fmtLine(l) + '\n');
}

registerBench('sft', (ctx: BenchContext) => {
  if (!nativeAddon) {
    ctx.note('sft: native addon not built; skipping');
    return;
  }
  const rows: Row[] = [];
  for (const m of MODELS) {
    const modes = MODES.filter((mode) => {
      const shape = shapeOf(m, mode);
      return ['sft step', 'sft peak RSS', 'sft native peak'].some((b) => ctx.wants(b, shape));
    });
    if (modes.length > 0) benchModel(ctx, m, modes, rows);
  }
  if (rows.length > 0 && !ctx.options.json) printSummary(rows);
});
