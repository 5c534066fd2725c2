// Loads the C++ addon built by `npm install` (native/build/Release/alignkit_native.node).
// If it is missing or fails to load, alignkit runs on the TypeScript backend and says so once.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as K from '../backend/types.ts';

export interface NativeMemoryStats {
  liveBytes: number;
  peakBytes: number;
  liveBuffers: number;
  /** Freed buffers kept for reuse (capped by ALIGNKIT_POOL_MB, default 1024). */
  pooledBytes: number;
}

/** The functions the addon exports. Kernel functions take the same parameter objects as the Backend. */
export interface NativeAddon {
  alloc(bytes: number, uninitialized?: boolean): ArrayBuffer;
  free(buffer: ArrayBufferLike): void;
  memoryStats(): NativeMemoryStats;
  resetPeak(): void;
  info(): { isa: string; detectedIsa: string; threads: number };
  setThreads(n: number): void;
  setIsa(isa: 'portable' | 'avx2' | 'avx512'): string;
  sgemm(p: K.GemmParams): void;
  attentionForward(p: K.AttentionParams): void;
  attentionBackward(p: K.AttentionBackwardParams): void;
  rmsnormForward(p: K.RmsNormParams): void;
  rmsnormBackward(p: K.RmsNormBackwardParams): void;
  layernormForward(p: K.LayerNormParams): void;
  layernormBackward(p: K.LayerNormBackwardParams): void;
  softmaxForward(p: K.SoftmaxParams): void;
  softmaxBackward(p: K.SoftmaxBackwardParams): void;
  rope(p: K.RopeParams): void;
  linearLogprobForward(p: K.LinearLogprobParams): void;
  linearLogprobBackward(p: K.LinearLogprobBackwardParams): void;
  linearLogprobFused(p: K.LinearLogprobFusedParams): void;
  adamw(p: K.AdamWParams): void;
  sgd(p: K.SgdParams): void;
  sumSquares(x: Float32Array, n: number): number;
  scaleInPlace(x: Float32Array, n: number, s: number): void;
  randomFill(p: K.RandomFillParams): void;
  dropout(p: K.DropoutParams): void;
  unary(p: K.UnaryParams): void;
  unaryBackward(p: K.UnaryBackwardParams): void;
  binary(p: K.BinaryParams): void;
  permuteHeads(p: K.PermuteHeadsParams): void;
}

const here = dirname(fileURLToPath(import.meta.url));
export const nativeAddonPath = join(here, '..', '..', 'native', 'build', 'Release', 'alignkit_native.node');

function load(): { addon: NativeAddon | null; error: string | null } {
  if (process.env.ALIGNKIT_BACKEND === 'js') return { addon: null, error: 'disabled by ALIGNKIT_BACKEND=js' };
  if (!existsSync(nativeAddonPath)) return { addon: null, error: `not built (${nativeAddonPath} is missing; run \`npm run build:native\`)` };
  try {
    const require = createRequire(import.meta.url);
    return { addon: require(nativeAddonPath) as NativeAddon, error: null };
  } catch (e) {
    return { addon: null, error: `failed to load: ${(e as Error).message}` };
  }
}

const loaded = load();
export const nativeAddon: NativeAddon | null = loaded.addon;
export const nativeLoadError: string | null = loaded.error;
