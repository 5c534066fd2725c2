// Helpers for tests of native kernels: run under a given SIMD level or thread count (restoring the
// previous setting), list the levels this CPU can run, and compare arrays bit for bit.
import assert from 'node:assert/strict';
import { nativeAddon } from '../src/native/addon.ts';

export type Isa = 'portable' | 'avx2' | 'avx512';
export const ALL_ISAS: Isa[] = ['portable', 'avx2', 'avx512'];

/** Whether the native addon can run `isa` on this CPU. */
export function isaSupported(isa: Isa): boolean {
  if (!nativeAddon) return false;
  return ALL_ISAS.indexOf(isa) <= ALL_ISAS.indexOf(nativeAddon.info().detectedIsa as Isa);
}

/** ISAs the native addon can run here, in increasing order (empty without the addon). */
export function runnableIsas(): Isa[] {
  return ALL_ISAS.filter(isaSupported);
}

export function withIsa<T>(isa: Isa, fn: () => T): T {
  const addon = nativeAddon!;
  const prev = addon.info().isa as Isa;
  addon.setIsa(isa);
  try {
    return fn();
  } finally {
    addon.setIsa(prev);
  }
}

export function withThreads<T>(n: number, fn: () => T): T {
  const addon = nativeAddon!;
  const prev = addon.info().threads;
  addon.setThreads(n);
  try {
    return fn();
  } finally {
    addon.setThreads(prev);
  }
}

/** Runs body once per ISA as a subtest; ISAs this CPU lacks are skipped with a visible message. */
export async function forEachIsa(t: { test: (name: string, fn: (t: { skip: (m: string) => void }) => void) => Promise<void> }, body: (isa: Isa) => void): Promise<void> {
  for (const isa of ALL_ISAS) {
    await t.test(isa, (st) => {
      if (!isaSupported(isa)) {
        st.skip(`${isa} not available on this CPU (detected ${nativeAddon ? nativeAddon.info().detectedIsa : 'no native addon'})`);
        return;
      }
      withIsa(isa, () => body(isa));
    });
  }
}

export function assertBitEqual(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) assert.fail(`${what}: element ${i}: ${a[i]} vs ${b[i]} (expected bit-identical)`);
}
