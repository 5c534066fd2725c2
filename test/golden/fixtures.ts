// Loader for the golden reference fixtures in fixtures/golden/*.json (written by fixtures/make_fixtures.py
// with PyTorch), plus the closeness check the golden tests use. Needs no Python: the JSON files are committed.
//
// File format (one case per file, fixtures/golden/<family>.<case>.json):
//   { "generator": "fixtures/make_fixtures.py", "torch_version", "python", "case": "<family>.<case>", "family",
//     "description", "seed", "params": { scalar parameters },
//     "tensors": { name: { "dtype": "float32" | "int32" | "uint8", "shape": [...], "data": [...] } } }
// float32 data are written as the shortest decimal that JSON.parse (float64) + Float32Array rounding turns back
// into the exact float32 torch produced; non-finite values are the strings "NaN", "Infinity", "-Infinity".
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'fixtures', 'golden');
const GENERATOR = 'fixtures/make_fixtures.py';

export type FixtureDtype = 'float32' | 'int32' | 'uint8';
export type FixtureData = Float32Array | Int32Array | Uint8Array;
export type ParamValue = number | boolean | string;

export interface FixtureTensor {
  dtype: FixtureDtype;
  shape: number[];
  data: FixtureData;
}

export class Fixture {
  constructor(
    readonly file: string,
    readonly caseName: string, // "<family>.<case>"
    readonly family: string,
    readonly description: string,
    readonly torchVersion: string,
    readonly python: string,
    readonly params: Readonly<Record<string, ParamValue>>,
    readonly tensors: ReadonlyMap<string, FixtureTensor>,
  ) {}

  private fail(msg: string): never {
    throw new Error(`golden fixture ${this.caseName}: ${msg}`);
  }

  num(key: string): number {
    const v = this.params[key];
    if (typeof v !== 'number') this.fail(`param '${key}' is not a number (${JSON.stringify(v)})`);
    return v;
  }

  /** A non-negative integer parameter (a size). */
  int(key: string): number {
    const v = this.num(key);
    if (!Number.isInteger(v) || v < 0) this.fail(`param '${key}' is not a non-negative integer (${v})`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.params[key];
    if (typeof v !== 'boolean') this.fail(`param '${key}' is not a boolean (${JSON.stringify(v)})`);
    return v;
  }

  str(key: string): string {
    const v = this.params[key];
    if (typeof v !== 'string') this.fail(`param '${key}' is not a string (${JSON.stringify(v)})`);
    return v;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  tensor(name: string): FixtureTensor {
    const t = this.tensors.get(name);
    if (!t) this.fail(`no tensor '${name}' (has: ${[...this.tensors.keys()].join(', ')})`);
    return t;
  }

  shape(name: string): number[] {
    return this.tensor(name).shape;
  }

  /** The float32 data (the fixture's own array: copy it before handing it to a kernel that writes). */
  f32(name: string): Float32Array {
    const t = this.tensor(name);
    if (!(t.data instanceof Float32Array)) this.fail(`tensor '${name}' is ${t.dtype}, not float32`);
    return t.data;
  }

  i32(name: string): Int32Array {
    const t = this.tensor(name);
    if (!(t.data instanceof Int32Array)) this.fail(`tensor '${name}' is ${t.dtype}, not int32`);
    return t.data;
  }

  u8(name: string): Uint8Array {
    const t = this.tensor(name);
    if (!(t.data instanceof Uint8Array)) this.fail(`tensor '${name}' is ${t.dtype}, not uint8`);
    return t.data;
  }

  /** Row r of a tensor whose leading dimension indexes rows (e.g. per-step optimizer states [steps, n]). */
  row(name: string, r: number): Float32Array {
    const t = this.tensor(name);
    const data = this.f32(name);
    const rows = t.shape[0];
    if (!(r >= 0 && r < rows)) this.fail(`row ${r} of '${name}' out of range [0, ${rows})`);
    const width = data.length / rows;
    return data.subarray(r * width, (r + 1) * width);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseFloat32(raw: unknown[], where: string): Float32Array {
  const out = new Float32Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (typeof v === 'number') out[i] = v;
    else if (v === 'NaN') out[i] = NaN;
    else if (v === 'Infinity') out[i] = Infinity;
    else if (v === '-Infinity') out[i] = -Infinity;
    else throw new Error(`${where}: element ${i} is not a number (${JSON.stringify(v)})`);
  }
  return out;
}

function parseInts(raw: unknown[], dtype: 'int32' | 'uint8', where: string): Int32Array | Uint8Array {
  const [lo, hi] = dtype === 'int32' ? [-(2 ** 31), 2 ** 31 - 1] : [0, 255];
  const out = dtype === 'int32' ? new Int32Array(raw.length) : new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new Error(`${where}: element ${i} is not a ${dtype} (${JSON.stringify(v)})`);
    }
    out[i] = v;
  }
  return out;
}

const cache = new Map<string, Fixture>();

/** Loads fixtures/golden/<caseName>.json, e.g. loadFixture('attention.causal_gqa'). Cached; do not mutate. */
export function loadFixture(caseName: string): Fixture {
  const hit = cache.get(caseName);
  if (hit) return hit;
  const file = join(GOLDEN_DIR, `${caseName}.json`);
  const where = `golden fixture ${caseName} (${file})`;
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${where}: cannot read/parse: ${(e as Error).message}`);
  }
  if (!isRecord(json)) throw new Error(`${where}: not a JSON object`);
  if (json.generator !== GENERATOR) throw new Error(`${where}: generator is ${JSON.stringify(json.generator)}, expected ${GENERATOR}`);
  if (json.case !== caseName) throw new Error(`${where}: header case ${JSON.stringify(json.case)} does not match the file name`);
  const family = json.family;
  if (typeof family !== 'string' || !caseName.startsWith(`${family}.`)) throw new Error(`${where}: bad family ${JSON.stringify(family)}`);
  for (const k of ['torch_version', 'python', 'description'] as const) {
    if (typeof json[k] !== 'string') throw new Error(`${where}: header field ${k} missing`);
  }
  const params: Record<string, ParamValue> = {};
  if (!isRecord(json.params)) throw new Error(`${where}: params missing`);
  for (const [k, v] of Object.entries(json.params)) {
    if (typeof v !== 'number' && typeof v !== 'boolean' && typeof v !== 'string') throw new Error(`${where}: param ${k} has type ${typeof v}`);
    params[k] = v;
  }
  if (!isRecord(json.tensors)) throw new Error(`${where}: tensors missing`);
  const tensors = new Map<string, FixtureTensor>();
  for (const [name, t] of Object.entries(json.tensors)) {
    const tw = `${where}: tensor ${name}`;
    if (!isRecord(t) || !Array.isArray(t.shape) || !Array.isArray(t.data)) throw new Error(`${tw}: malformed`);
    const shape = t.shape.map((d) => {
      if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) throw new Error(`${tw}: bad shape ${JSON.stringify(t.shape)}`);
      return d;
    });
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length) throw new Error(`${tw}: shape ${JSON.stringify(shape)} implies ${size} elements, data has ${t.data.length}`);
    let data: FixtureData;
    if (t.dtype === 'float32') data = parseFloat32(t.data, tw);
    else if (t.dtype === 'int32' || t.dtype === 'uint8') data = parseInts(t.data, t.dtype, tw);
    else throw new Error(`${tw}: unknown dtype ${JSON.stringify(t.dtype)}`);
    tensors.set(name, { dtype: t.dtype, shape, data });
  }
  const fx = new Fixture(file, caseName, family, json.description as string, json.torch_version as string, json.python as string, params, tensors);
  cache.set(caseName, fx);
  return fx;
}

/** Case names ("<family>.<case>") of every fixture file, sorted; optionally only one family. */
export function listFixtures(family?: string): string[] {
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .filter((c) => family === undefined || c.startsWith(`${family}.`))
    .sort();
}

// ---------------------------------------------------------------------------------------------------------
// Closeness

export interface Tol {
  atol: number;
  rtol: number;
}

export interface Mismatch {
  index: number;
  actual: number;
  expected: number;
  allowed: number;
  count: number; // how many elements are out of tolerance
  maxAbsDiff: number; // over all elements (Infinity if some non-finite value disagrees)
}

/**
 * Elementwise |actual - expected| <= atol + rtol * |expected|. Non-finite expected values must match exactly
 * (NaN matches NaN, ±Infinity matches the same infinity). Returns the first failure (with totals) or null.
 */
export function findMismatch(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol): Mismatch | null {
  if (actual.length !== expected.length) {
    return { index: -1, actual: actual.length, expected: expected.length, allowed: 0, count: Math.max(actual.length, expected.length), maxAbsDiff: Infinity };
  }
  let first: Mismatch | null = null;
  let count = 0;
  let maxAbsDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    const e = expected[i];
    const allowed = tol.atol + tol.rtol * Math.abs(e);
    let ok: boolean;
    let diff: number;
    if (Number.isFinite(e)) {
      diff = Math.abs(a - e); // NaN if a is NaN
      ok = diff <= allowed;
    } else {
      ok = Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e));
      diff = ok ? 0 : Infinity;
    }
    if (!ok) {
      count++;
      if (!first) first = { index: i, actual: a, expected: e, allowed, count: 0, maxAbsDiff: 0 };
    }
    if (!(diff <= maxAbsDiff)) maxAbsDiff = Number.isNaN(diff) ? Infinity : diff;
  }
  if (!first) return null;
  first.count = count;
  first.maxAbsDiff = maxAbsDiff;
  return first;
}

/** Throws an assertion-style Error naming `what` when actual and expected are not close. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: Tol, what: string): void {
  const m = findMismatch(actual, expected, tol);
  if (!m) return;
  if (m.index < 0) throw new Error(`${what}: length ${m.actual}, expected ${m.expected}`);
  throw new Error(
    `${what}: ${m.count} of ${expected.length} elements out of tolerance (atol ${tol.atol}, rtol ${tol.rtol}); ` +
      `first at [${m.index}]: got ${m.actual}, torch ${m.expected} (allowed |diff| ${m.allowed.toExponential(2)}); max |diff| ${m.maxAbsDiff}`,
  );
}
