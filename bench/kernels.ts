// Fused kernels: causal grouped-query attention and the chunked LM-head cross-entropy, forward and
// forward+backward, through the tensor API (so the numbers include autograd overhead), next to PyTorch
// eager CPU in the same run. Peak memory is alignkit's native high-water mark above the live inputs.
//
// Attention GFLOPS count 4·B·Hq·T²·D/2 for the causal forward and 2.5× that for the backward (the usual
// convention), so fwd+bwd counts 3.5×. The LM-head case is SmolLM2-shaped: hidden 576, vocab 49152.
import { nativeBackend, withBackend } from '../src/backend/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import * as T from '../src/tensor/index.ts';
import { registerBench, runPythonPeer, timeIt, type BenchContext } from './common.ts';

interface AttentionCase {
  kind: 'attention';
  name: string;
  batch: number;
  headsQ: number;
  headsKV: number;
  seq: number;
  headDim: number;
}
interface LmHeadCase {
  kind: 'lmhead';
  name: string;
  tokens: number;
  hidden: number;
  vocab: number;
}
type Case = AttentionCase | LmHeadCase;

const CASES: Case[] = [
  { kind: 'attention', name: 'gpt2-small', batch: 1, headsQ: 12, headsKV: 12, seq: 1024, headDim: 64 },
  { kind: 'attention', name: 'smollm2-135m', batch: 1, headsQ: 9, headsKV: 3, seq: 1024, headDim: 64 },
  { kind: 'lmhead', name: 'smollm2-135m', tokens: 2048, hidden: 576, vocab: 49152 },
];

function shapeOf(c: Case): string {
  return c.kind === 'attention' ? `${c.name} B${c.batch} H${c.headsQ}/${c.headsKV} T${c.seq} D${c.headDim}` : `${c.name} N${c.tokens} H${c.hidden} V${c.vocab}`;
}

interface Measured {
  fwd: number;
  fwdbwd: number;
  peakMb: number;
}

function measure(c: Case, quick: boolean): Measured {
  const opts = { warmup: 1, repeat: quick ? 2 : 5, minMs: quick ? 0 : 500 };
  return T.tidy(() => {
    T.manualSeed(0);
    let fwd: () => void;
    let fwdbwd: () => void;
    let leaves: T.Tensor[];
    if (c.kind === 'attention') {
      const q = T.randn([c.batch, c.headsQ, c.seq, c.headDim]).requireGrad();
      const k = T.randn([c.batch, c.headsKV, c.seq, c.headDim]).requireGrad();
      const v = T.randn([c.batch, c.headsKV, c.seq, c.headDim]).requireGrad();
      const g = T.randn([c.batch, c.headsQ, c.seq, c.headDim]);
      leaves = [q, k, v];
      fwd = () => T.tidy(() => void T.noGrad(() => T.scaledDotProductAttention(q, k, v, { causal: true })));
      fwdbwd = () => T.tidy(() => T.scaledDotProductAttention(q, k, v, { causal: true }).backward(g));
    } else {
      const h = T.mul(T.randn([c.tokens, c.hidden]), 0.5).requireGrad();
      const w = T.mul(T.randn([c.vocab, c.hidden]), 0.02).requireGrad();
      const ids = T.tidy(() => T.rand([c.tokens]).toArray()).map((u) => Math.floor(u * c.vocab));
      const t = T.intTensor(ids);
      leaves = [h, w];
      fwd = () => T.tidy(() => void T.noGrad(() => T.fusedCrossEntropy(h, w, t)));
      fwdbwd = () => T.tidy(() => T.fusedCrossEntropy(h, w, t).backward());
    }
    const zero = () => leaves.forEach((l) => l.zeroGrad());
    const f = timeIt(fwd, opts).seconds;
    const fb = timeIt(() => {
      fwdbwd();
      zero();
    }, opts).seconds;
    let peakMb = NaN;
    if (nativeAddon) {
      const base = nativeAddon.memoryStats().liveBytes;
      nativeAddon.resetPeak();
      fwdbwd();
      peakMb = (nativeAddon.memoryStats().peakBytes - base) / 2 ** 20;
      zero();
    }
    return { fwd: f, fwdbwd: fb, peakMb };
  });
}

interface PeerResult {
  version: string;
  results: { fwd_s: number; fwdbwd_s: number; peak_mb: number }[];
}

registerBench('kernels', (ctx: BenchContext) => {
  if (!nativeBackend || !nativeAddon) {
    ctx.note('kernels: native addon not built; skipping');
    return;
  }
  const cases = CASES.filter((c) => ctx.wants(c.kind, shapeOf(c)));
  if (cases.length === 0) return;
  const threads = nativeAddon.info().threads;
  const peer = runPythonPeer('torch_kernels.py', ['--threads', String(threads), '--cases', JSON.stringify(cases), '--repeat', ctx.options.quick ? '2' : '5']) as PeerResult | null;
  const peerName = peer ? `torch ${peer.version.split('+')[0]}` : null;
  cases.forEach((c, i) => {
    const m = withBackend(nativeBackend!, () => measure(c, ctx.options.quick));
    const p = peer ? peer.results[i] : null;
    const shape = shapeOf(c);
    if (c.kind === 'attention') {
      const flops = (4 * c.batch * c.headsQ * c.seq * c.seq * c.headDim) / 2;
      ctx.report({ bench: 'attention fwd', shape, unit: 'GFLOPS', value: flops / m.fwd / 1e9, peer: peerName, peer_value: p ? flops / p.fwd_s / 1e9 : null });
      ctx.report({ bench: 'attention f+b', shape, unit: 'GFLOPS', value: (3.5 * flops) / m.fwdbwd / 1e9, peer: peerName, peer_value: p ? (3.5 * flops) / p.fwdbwd_s / 1e9 : null });
    } else {
      ctx.report({ bench: 'lm-head CE fwd', shape, unit: 'tok/s', value: c.tokens / m.fwd, peer: peerName, peer_value: p ? c.tokens / p.fwd_s : null });
      ctx.report({ bench: 'lm-head CE f+b', shape, unit: 'tok/s', value: c.tokens / m.fwdbwd, peer: peerName, peer_value: p ? c.tokens / p.fwdbwd_s : null });
      ctx.note(`lm-head full logits would be ${((c.tokens * c.vocab * 4) / 2 ** 20).toFixed(0)} MB; alignkit never allocates them`);
    }
    // Memory: lower is better (ratio = peer / alignkit); the peer's figure is its RSS growth, only indicative.
    ctx.report({ bench: `${c.kind} peak mem`, shape, unit: 'MB', value: m.peakMb, peer: peerName ? `${peerName} rss` : null, peer_value: p ? p.peak_mb : null });
  });
});
