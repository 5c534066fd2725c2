// SGEMM throughput (GFLOPS = 2*M*N*K / median seconds): alignkit native vs NumPy's BLAS on the same
// shapes with the same thread count, plus the JS fallback at 512 to show what the fallback costs.
//
// Shapes: squares, and the GPT-2-small (d=768) linear layers at 1024 tokens, forward and backward:
//   forward    Y[M,N]  = X[M,K] @ W[K,N]          NN  m=M, n=N, k=K
//   input grad dX[M,K] = dY[M,N] @ W[K,N]^T       NT  m=M, n=K, k=N
//   weight grad dW[K,N] = X[M,K]^T @ dY[M,N]      TN  m=K, n=N, k=M
// for (M, K, N) = (1024, 768, 2304) (the fused QKV projection) and (1024, 3072, 768) (the MLP down
// projection). A shape is printed as m x n x k of the GEMM call, then the transposes.
//
// The machine may be shared and noisy: every case alternates alignkit and NumPy for several rounds and
// reports the median of the per-round medians for each.
import { jsBackend, nativeBackend } from '../src/backend/index.ts';
import type { Backend, GemmParams } from '../src/backend/types.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { median, registerBench, runPythonPeer, timeIt, type BenchContext } from './common.ts';

interface GemmCase {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  what: string;
}

function sq(s: number): GemmCase {
  return { m: s, n: s, k: s, transA: false, transB: false, what: 'square' };
}

/** The three GEMMs of a linear layer Y[M,N] = X[M,K] @ W[K,N]. */
function linear(M: number, K: number, N: number, name: string): GemmCase[] {
  return [
    { m: M, n: N, k: K, transA: false, transB: false, what: `${name} fwd` },
    { m: M, n: K, k: N, transA: false, transB: true, what: `${name} dX` },
    { m: K, n: N, k: M, transA: true, transB: false, what: `${name} dW` },
  ];
}

const CASES: GemmCase[] = [sq(512), sq(1024), sq(2048), ...linear(1024, 768, 2304, 'qkv'), ...linear(1024, 3072, 768, 'mlp-proj')];

function label(c: GemmCase): string {
  return `${c.m}x${c.n}x${c.k} ${c.transA ? 'T' : 'N'}${c.transB ? 'T' : 'N'} (${c.what})`;
}

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 4294967296 - 0.5;
  }
  return a;
}

function params(c: GemmCase): GemmParams {
  return {
    transA: c.transA,
    transB: c.transB,
    m: c.m,
    n: c.n,
    k: c.k,
    alpha: 1,
    a: rand(c.m * c.k, 1),
    lda: c.transA ? c.m : c.k,
    strideA: 0,
    b: rand(c.k * c.n, 2),
    ldb: c.transB ? c.k : c.n,
    strideB: 0,
    beta: 0,
    c: new Float32Array(c.m * c.n),
    ldc: c.n,
    strideC: 0,
    batch: 1,
  };
}

const gflops = (c: GemmCase, seconds: number): number => (2 * c.m * c.n * c.k) / seconds / 1e9;

function measure(b: Backend, c: GemmCase, p: GemmParams, quick: boolean): number {
  const { seconds } = timeIt(() => b.sgemm(p), { warmup: 1, repeat: quick ? 3 : 5, minMs: quick ? 100 : 300 });
  return gflops(c, seconds);
}

interface PeerResult {
  library: string;
  results: { gflops: number }[];
}

function numpyPeer(c: GemmCase, threads: number, quick: boolean): number | null {
  const caseJson = JSON.stringify([{ m: c.m, n: c.n, k: c.k, transA: c.transA, transB: c.transB }]);
  const out = runPythonPeer('numpy_gemm.py', ['--threads', String(threads), '--cases', caseJson, '--repeat', quick ? '3' : '5', '--min-ms', quick ? '100' : '300'], {
    OPENBLAS_NUM_THREADS: String(threads),
    OMP_NUM_THREADS: String(threads),
  }) as PeerResult | null;
  const g = out?.results?.[0]?.gflops;
  return typeof g === 'number' ? g : null;
}

registerBench('gemm', (ctx: BenchContext) => {
  const { quick } = ctx.options;
  const rounds = quick ? 1 : 5;
  if (!nativeBackend || !nativeAddon) ctx.note('native addon unavailable: only the JS backend is measured');
  const threads = nativeAddon ? nativeAddon.info().threads : 1;
  if (nativeAddon) ctx.note(`gemm: native isa ${nativeAddon.info().isa}, ${threads} thread(s); NumPy limited to the same; ${rounds} interleaved round(s) per case`);

  for (const c of CASES) {
    const shape = label(c);
    if (!nativeBackend || !ctx.wants('gemm', shape)) continue;
    const p = params(c);
    const ours: number[] = [];
    const peer: number[] = [];
    for (let r = 0; r < rounds; r++) {
      ours.push(measure(nativeBackend, c, p, quick));
      const g = numpyPeer(c, threads, quick);
      if (g !== null) peer.push(g);
    }
    ctx.report({ bench: 'gemm', shape, unit: 'GFLOPS', value: median(ours), peer: peer.length ? 'numpy' : null, peer_value: peer.length ? median(peer) : null });
  }

  // The TypeScript fallback, at 512 only (it is slow); no peer.
  const jsCase = sq(512);
  const jsShape = `${label(jsCase)} js-backend`;
  if (ctx.wants('gemm', jsShape)) {
    const p = params(jsCase);
    const { seconds } = timeIt(() => jsBackend.sgemm(p), { warmup: 1, repeat: quick ? 1 : 3, minMs: 0 });
    ctx.report({ bench: 'gemm', shape: jsShape, unit: 'GFLOPS', value: gflops(jsCase, seconds), peer: null, peer_value: null });
  }
});
