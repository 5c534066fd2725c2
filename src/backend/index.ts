// Backend selection. The native addon is the default; the TypeScript backend is the fallback (reported
// once on stderr) and can be forced with ALIGNKIT_BACKEND=js or useBackend('js').
import { nativeAddon, nativeLoadError } from '../native/addon.ts';
import { createJsBackend } from './js/index.ts';
import { createNativeBackend } from './native.ts';
import type { Backend } from './types.ts';

export type { Backend } from './types.ts';
export * from './types.ts';

export const jsBackend: Backend = createJsBackend(Float32Array);
/** float64 reference backend, for finite-difference gradient checks. */
export const jsBackend64: Backend = createJsBackend(Float64Array);
export const nativeBackend: Backend | null = nativeAddon ? createNativeBackend(nativeAddon) : null;

let warned = false;
let current: Backend = pickDefault();

function pickDefault(): Backend {
  if (nativeBackend) return nativeBackend;
  if (!warned && process.env.ALIGNKIT_BACKEND !== 'js') {
    warned = true;
    process.stderr.write(`alignkit: native addon ${nativeLoadError}; using the slow TypeScript backend.\n`);
  }
  return jsBackend;
}

/** The backend new tensors are created on. */
export function backend(): Backend {
  return current;
}

export function useBackend(which: 'native' | 'js' | 'js64' | Backend): Backend {
  if (typeof which !== 'string') current = which;
  else if (which === 'js') current = jsBackend;
  else if (which === 'js64') current = jsBackend64;
  else {
    if (!nativeBackend) throw new Error(`alignkit: the native backend is unavailable: ${nativeLoadError}`);
    current = nativeBackend;
  }
  return current;
}

/** Backends available here, for tests that run every kernel on each. */
export function availableBackends(): Backend[] {
  return nativeBackend ? [nativeBackend, jsBackend] : [jsBackend];
}

/** Runs fn with `b` as the current backend, restoring the previous one afterwards. */
export function withBackend<T>(b: Backend, fn: () => T): T {
  const prev = current;
  current = b;
  try {
    return fn();
  } finally {
    current = prev;
  }
}
