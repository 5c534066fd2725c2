// GGUF (llama.cpp's model format): reader for v2/v3 files, float dequantisation, and a writer (v3).
//
// Layout (all little-endian):
//   "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x (string key | u32 value_type | value)          string = u64 byte length + UTF-8 bytes
//   tensor_count x (string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset)
//   padding to `alignment` (metadata general.alignment, default 32), then the data section; each tensor's
//   offset is relative to the data section and a multiple of the alignment.
//
// Dimensions are listed fastest-varying first: ne[0] is the row length. A tensor with ne = [K, N] is the
// row-major [N, K] matrix, so `shape` here is ne reversed, the same order as PyTorch / safetensors.
//
// The header is parsed at open (every count, length and offset checked against the file size, so a corrupt
// or truncated file fails with a message instead of a huge allocation); tensor data is read by offset when a
// tensor is loaded. Dequantisation to float: F32, F16, BF16, F64, I8, I16, I32, I64, Q4_0, Q4_1, Q5_0, Q5_1,
// Q8_0 (each element is the float32 product d * q (+ m), as ggml computes it). K-quants, IQ-quants and the
// rest are reported as unsupported.
import { jsBackend64, type Backend, type FloatArray } from '../backend/index.ts';
import { ShapeError, fmtShape } from '../tensor/errors.ts';
import { Tensor, empty, type TensorData } from '../tensor/tensor.ts';
import { bfloat16ToFloat, float16Table, float16ToFloat, floatToHalfBits, halfToHalfBits } from './convert.ts';
import { CheckpointError, q } from './errors.ts';
import { AtomicFile, ReadableFile, assertLittleEndian, bytesOf, wrapWriteError } from './file.ts';

const FORMAT = 'gguf';
export const GGUF_DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;

// ------------------------------------------------------------------------------------------- ggml types
interface GgmlType {
  name: string;
  blockSize: number;
  typeSize: number;
}

/** ggml_type id -> name, elements per block, bytes per block (ggml.h / gguf-py GGML_QUANT_SIZES). */
const GGML_TYPES: ReadonlyMap<number, GgmlType> = new Map(
  (
    [
      [0, 'F32', 1, 4], [1, 'F16', 1, 2], [2, 'Q4_0', 32, 18], [3, 'Q4_1', 32, 20], [6, 'Q5_0', 32, 22], [7, 'Q5_1', 32, 24],
      [8, 'Q8_0', 32, 34], [9, 'Q8_1', 32, 40], [10, 'Q2_K', 256, 84], [11, 'Q3_K', 256, 110], [12, 'Q4_K', 256, 144],
      [13, 'Q5_K', 256, 176], [14, 'Q6_K', 256, 210], [15, 'Q8_K', 256, 292], [16, 'IQ2_XXS', 256, 66], [17, 'IQ2_XS', 256, 74],
      [18, 'IQ3_XXS', 256, 98], [19, 'IQ1_S', 256, 50], [20, 'IQ4_NL', 32, 18], [21, 'IQ3_S', 256, 110], [22, 'IQ2_S', 256, 82],
      [23, 'IQ4_XS', 256, 136], [24, 'I8', 1, 1], [25, 'I16', 1, 2], [26, 'I32', 1, 4], [27, 'I64', 1, 8], [28, 'F64', 1, 8],
      [29, 'IQ1_M', 256, 56], [30, 'BF16', 1, 2], [34, 'TQ1_0', 256, 54], [35, 'TQ2_0', 256, 66], [39, 'MXFP4', 32, 17],
    ] as const
  ).map(([id, name, blockSize, typeSize]) => [id, { name, blockSize, typeSize }]),
);

const TYPE_ID: ReadonlyMap<string, number> = new Map([...GGML_TYPES].map(([id, t]) => [t.name, id]));

/** Types `load` can turn into float. */
export const GGUF_DEQUANTIZABLE: readonly string[] = ['F32', 'F16', 'BF16', 'F64', 'I8', 'I16', 'I32', 'I64', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0'];

// ------------------------------------------------------------------------------------------- metadata values
export type GgufNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type GgufBigIntType = 'uint64' | 'int64';
export type GgufScalarType = GgufNumberType | GgufBigIntType | 'bool' | 'string';

/** Array items as the reader returns them: typed arrays for numbers. */
interface GgufArrayItems {
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  float32: Float32Array;
  float64: Float64Array;
  uint64: BigUint64Array;
  int64: BigInt64Array;
  bool: boolean[];
  string: string[];
  array: GgufArray[];
}
export type GgufArray = { [K in keyof GgufArrayItems]: { type: 'array'; itemType: K; value: GgufArrayItems[K] } }[keyof GgufArrayItems];

/** A typed metadata value, as read. */
export type GgufValue =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArray;

/** A typed metadata value for the writer (what the reader returns is accepted as is). */
export type GgufValueInput =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint | number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | GgufArrayInput;
export type GgufArrayInput =
  | { type: 'array'; itemType: GgufNumberType; value: ArrayLike<number> }
  | { type: 'array'; itemType: GgufBigIntType; value: ArrayLike<bigint | number> }
  | { type: 'array'; itemType: 'bool'; value: ArrayLike<boolean> }
  | { type: 'array'; itemType: 'string'; value: ArrayLike<string> }
  | { type: 'array'; itemType: 'array'; value: ArrayLike<GgufArrayInput> };

const VALUE_TYPES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'] as const;
type GgufTypeName = (typeof VALUE_TYPES)[number];
const VALUE_TYPE_ID: Readonly<Record<GgufTypeName, number>> = Object.fromEntries(VALUE_TYPES.map((t, i) => [t, i])) as Record<GgufTypeName, number>;
const NUMBER_SIZE: Readonly<Record<GgufNumberType | GgufBigIntType, number>> = {
  uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4, float64: 8, uint64: 8, int64: 8,
};

// ------------------------------------------------------------------------------------------- reading
export interface GgufTensorInfo {
  readonly name: string;
  /** ggml type name ('F16', 'Q8_0', ...). */
  readonly type: string;
  readonly typeId: number;
  /** GGUF dimension order: ne[0] is the fastest-varying (row length). */
  readonly ne: readonly number[];
  /** Row-major shape (ne reversed), as PyTorch would see the tensor. */
  readonly shape: readonly number[];
  /** Absolute byte offset of the data in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface GgufLoadOptions {
  /**
   * 'float32' (default): dequantised to float (the backend's float storage). 'raw': F32 -> float32,
   * F16/BF16 -> 'float16'/'bfloat16' (Uint16 bits), F64 -> float64 (js64 backend), I8/I16/I32 -> int32,
   * I64 -> int64; quantised types have no raw form.
   */
  as?: 'float32' | 'raw';
  on?: Backend;
}

export interface GgufFile {
  readonly path: string;
  readonly version: number;
  readonly alignment: number;
  /** Absolute offset of the data section. */
  readonly dataOffset: number;
  /** Every key/value, in file order. */
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor infos in file order. */
  readonly tensors: readonly GgufTensorInfo[];
  has(key: string): boolean;
  /** The value of a key (number, bigint, boolean, string or typed array / array), undefined if absent. */
  get(key: string): GgufValue['value'] | undefined;
  /** A numeric key as a number (64-bit values must be safe integers); throws naming the file if absent. */
  getNumber(key: string): number;
  getString(key: string): string;
  getStringArray(key: string): string[];
  hasTensor(name: string): boolean;
  tensorInfo(name: string): GgufTensorInfo;
  load(name: string, options?: GgufLoadOptions): Tensor;
  /** The tensor's bytes exactly as stored. */
  readBytes(name: string): Uint8Array;
  close(): void;
}

const CURSOR_CHUNK = 1 << 20;
// ignoreBOM keeps a leading U+FEFF (a real token in some vocabularies) instead of stripping it.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** Sequential little-endian reads through a window of the file. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private view = new DataView(this.buf.buffer);
  private start = 0;

  constructor(private readonly f: ReadableFile) {}

  get remaining(): number {
    return this.f.size - this.pos;
  }

  /** Makes [pos, pos + n) available in the window; returns its offset in `buf`. */
  private need(n: number, what: () => string): number {
    if (n > this.f.size - this.pos) throw this.f.fail(`truncated file: ${what()} at byte ${this.pos} needs ${n} bytes, only ${this.f.size - this.pos} left`);
    if (this.pos < this.start || this.pos + n > this.start + this.buf.length) {
      const len = Math.min(Math.max(n, CURSOR_CHUNK), this.f.size - this.pos);
      this.buf = this.f.read(this.pos, len, what());
      this.view = new DataView(this.buf.buffer);
      this.start = this.pos;
    }
    const at = this.pos - this.start;
    this.pos += n;
    return at;
  }

  bytes(n: number, what: () => string): Uint8Array {
    const at = this.need(n, what);
    return this.buf.slice(at, at + n); // a copy: aligned, and independent of the window
  }
  // Note: need() may replace the window, so it must run before this.view is read.
  u8(what: () => string): number {
    const at = this.need(1, what);
    return this.view.getUint8(at);
  }
  u32(what: () => string): number {
    const at = this.need(4, what);
    return this.view.getUint32(at, true);
  }
  u64(what: () => string): bigint {
    const at = this.need(8, what);
    return this.view.getBigUint64(at, true);
  }
  /** A u64 that must be a count / size / offset below 2^53. */
  u64n(what: () => string): number {
    const v = this.u64(what);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.f.fail(`${what()} is ${v}, absurdly large (corrupt file?)`);
    return Number(v);
  }
  string(what: () => string): string {
    const n = this.u64(() => `length of ${what()}`);
    if (n > BigInt(this.remaining)) throw this.f.fail(`truncated file: ${what()} at byte ${this.pos - 8} claims ${n} bytes, only ${this.remaining} left`);
    const len = Number(n);
    const at = this.need(len, what);
    return utf8.decode(this.buf.subarray(at, at + len));
  }
  scalar(t: GgufNumberType, what: () => string): number {
    const at = this.need(NUMBER_SIZE[t], what);
    const v = this.view;
    switch (t) {
      case 'uint8': return v.getUint8(at);
      case 'int8': return v.getInt8(at);
      case 'uint16': return v.getUint16(at, true);
      case 'int16': return v.getInt16(at, true);
      case 'uint32': return v.getUint32(at, true);
      case 'int32': return v.getInt32(at, true);
      case 'float32': return v.getFloat32(at, true);
      case 'float64': return v.getFloat64(at, true);
    }
  }
}

function isNumberType(t: string): t is GgufNumberType {
  return t === 'uint8' || t === 'int8' || t === 'uint16' || t === 'int16' || t === 'uint32' || t === 'int32' || t === 'float32' || t === 'float64';
}

function typeName(f: ReadableFile, id: number, what: () => string): GgufTypeName {
  const t = VALUE_TYPES[id];
  if (t === undefined) throw f.fail(`${what()} has unknown value type ${id} (corrupt file?)`);
  return t;
}

function readBool(c: Cursor, f: ReadableFile, what: () => string): boolean {
  const b = c.u8(what);
  if (b > 1) throw f.fail(`${what()} is a bool with byte value ${b} (must be 0 or 1)`);
  return b === 1;
}

function readValue(c: Cursor, f: ReadableFile, type: GgufTypeName, what: () => string, depth: number): GgufValue {
  if (isNumberType(type)) return { type, value: c.scalar(type, what) };
  switch (type) {
    case 'uint64':
      return { type, value: c.u64(what) };
    case 'int64':
      return { type, value: BigInt.asIntN(64, c.u64(what)) };
    case 'bool':
      return { type, value: readBool(c, f, what) };
    case 'string':
      return { type, value: c.string(what) };
    case 'array':
      return readArray(c, f, what, depth);
  }
  throw f.fail(`${what()}: internal error, type ${String(type)}`);
}

function readArray(c: Cursor, f: ReadableFile, what: () => string, depth: number): GgufArray {
  if (depth > 8) throw f.fail(`${what()} nests arrays too deeply`);
  const itemType = typeName(f, c.u32(() => `item type of ${what()}`), what);
  const count = c.u64n(() => `item count of ${what()}`);
  const minSize = itemType === 'string' ? 8 : itemType === 'array' ? 12 : itemType === 'bool' ? 1 : NUMBER_SIZE[itemType];
  if (count * minSize > c.remaining)
    throw f.fail(`truncated file: ${what()} claims ${count} ${itemType} items (at least ${count * minSize} bytes) but only ${c.remaining} bytes are left`);
  const item = (i: number) => (): string => `${what()}[${i}]`;
  switch (itemType) {
    case 'string': {
      const out = new Array<string>(count);
      for (let i = 0; i < count; i++) out[i] = c.string(item(i));
      return { type: 'array', itemType, value: out };
    }
    case 'bool': {
      const out = new Array<boolean>(count);
      for (let i = 0; i < count; i++) out[i] = readBool(c, f, item(i));
      return { type: 'array', itemType, value: out };
    }
    case 'array': {
      const out = new Array<GgufArray>(count);
      for (let i = 0; i < count; i++) out[i] = readArray(c, f, item(i), depth + 1);
      return { type: 'array', itemType, value: out };
    }
    default: {
      const b = c.bytes(count * NUMBER_SIZE[itemType], what).buffer;
      switch (itemType) {
        case 'uint8': return { type: 'array', itemType, value: new Uint8Array(b) };
        case 'int8': return { type: 'array', itemType, value: new Int8Array(b) };
        case 'uint16': return { type: 'array', itemType, value: new Uint16Array(b) };
        case 'int16': return { type: 'array', itemType, value: new Int16Array(b) };
        case 'uint32': return { type: 'array', itemType, value: new Uint32Array(b) };
        case 'int32': return { type: 'array', itemType, value: new Int32Array(b) };
        case 'float32': return { type: 'array', itemType, value: new Float32Array(b) };
        case 'float64': return { type: 'array', itemType, value: new Float64Array(b) };
        case 'uint64': return { type: 'array', itemType, value: new BigUint64Array(b) };
        case 'int64': return { type: 'array', itemType, value: new BigInt64Array(b) };
      }
    }
  }
}

class Gguf implements GgufFile {
  private readonly byName = new Map<string, GgufTensorInfo>();

  constructor(
    private readonly f: ReadableFile,
    readonly version: number,
    readonly alignment: number,
    readonly dataOffset: number,
    readonly metadata: ReadonlyMap<string, GgufValue>,
    readonly tensors: readonly GgufTensorInfo[],
  ) {
    for (const t of tensors) this.byName.set(t.name, t);
  }

  get path(): string {
    return this.f.path;
  }

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  get(key: string): GgufValue['value'] | undefined {
    return this.metadata.get(key)?.value;
  }

  private must(key: string): GgufValue {
    const v = this.metadata.get(key);
    if (!v) throw this.f.fail(`metadata key ${q(key)} is missing`);
    return v;
  }

  getNumber(key: string): number {
    const v = this.must(key);
    if (typeof v.value === 'number') return v.value;
    if (typeof v.value === 'bigint') {
      if (v.value > BigInt(Number.MAX_SAFE_INTEGER) || v.value < -BigInt(Number.MAX_SAFE_INTEGER))
        throw this.f.fail(`metadata key ${q(key)} = ${v.value} does not fit a JavaScript number exactly`);
      return Number(v.value);
    }
    throw this.f.fail(`metadata key ${q(key)} is ${v.type === 'array' ? `an array of ${v.itemType}` : v.type}, expected a number`);
  }

  getString(key: string): string {
    const v = this.must(key);
    if (v.type !== 'string') throw this.f.fail(`metadata key ${q(key)} is ${v.type === 'array' ? `an array of ${v.itemType}` : v.type}, expected a string`);
    return v.value;
  }

  getStringArray(key: string): string[] {
    const v = this.must(key);
    if (v.type !== 'array' || v.itemType !== 'string')
      throw this.f.fail(`metadata key ${q(key)} is ${v.type === 'array' ? `an array of ${v.itemType}` : v.type}, expected an array of strings`);
    return v.value;
  }

  hasTensor(name: string): boolean {
    return this.byName.has(name);
  }

  tensorInfo(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) throw this.f.fail(`no tensor named ${q(name)} (the file has ${this.tensors.length} tensors)`);
    return t;
  }

  readBytes(name: string): Uint8Array {
    const t = this.tensorInfo(name);
    return this.f.read(t.byteOffset, t.byteLength, `tensor ${q(name)}`);
  }

  load(name: string, options: GgufLoadOptions = {}): Tensor {
    const t = this.tensorInfo(name);
    const as = options.as ?? 'float32';
    if (!GGUF_DEQUANTIZABLE.includes(t.type)) throw this.f.fail(`unsupported quantisation ${t.type} in tensor ${t.name}`);
    let out: Tensor;
    if (as === 'raw') {
      switch (t.type) {
        case 'F32': out = empty(t.shape, 'float', options.on); break;
        case 'F16': out = empty(t.shape, 'float16'); break;
        case 'BF16': out = empty(t.shape, 'bfloat16'); break;
        case 'F64': out = empty(t.shape, 'float64', jsBackend64); break;
        case 'I8': case 'I16': case 'I32': out = empty(t.shape, 'int32'); break;
        case 'I64': out = empty(t.shape, 'int64'); break;
        default: throw this.f.fail(`tensor ${t.name} is ${t.type}, which has no raw form (load it with as: 'float32')`);
      }
    } else out = empty(t.shape, 'float', options.on);
    try {
      this.fill(t, out.storage.data);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }

  private fill(t: GgufTensorInfo, data: TensorData): void {
    const what = `tensor ${q(t.name)}`;
    const direct =
      (t.type === 'F32' && data instanceof Float32Array) ||
      (t.type === 'F64' && data instanceof Float64Array) ||
      ((t.type === 'F16' || t.type === 'BF16') && data instanceof Uint16Array) ||
      (t.type === 'I32' && data instanceof Int32Array) ||
      (t.type === 'I64' && data instanceof BigInt64Array);
    if (direct) {
      this.f.readInto(bytesOf(data), t.byteOffset, what);
      return;
    }
    const gt = GGML_TYPES.get(t.typeId);
    if (!gt) throw this.f.fail(`${what}: internal error, type ${t.typeId}`);
    // Whole blocks per chunk, about 4 MiB of file at a time.
    const blocksPerChunk = Math.max(1, Math.floor((1 << 22) / gt.typeSize));
    const nBlocks = t.byteLength / gt.typeSize;
    for (let b0 = 0; b0 < nBlocks; b0 += blocksPerChunk) {
      const nb = Math.min(blocksPerChunk, nBlocks - b0);
      const bytes = this.f.read(t.byteOffset + b0 * gt.typeSize, nb * gt.typeSize, what);
      const o = b0 * gt.blockSize;
      if (data instanceof Int32Array) {
        data.set(t.type === 'I8' ? new Int8Array(bytes.buffer) : new Int16Array(bytes.buffer), o);
      } else if (data instanceof Float32Array || data instanceof Float64Array) {
        dequantize(t.type, bytes, nb, data, o);
      } else throw this.f.fail(`${what}: internal error, unexpected storage`);
    }
  }

  close(): void {
    this.f.close();
  }
}

/** Dequantises `nb` blocks of `type` from `src` into out[o...]. */
function dequantize(type: string, src: Uint8Array, nb: number, out: FloatArray, o: number): void {
  const fr = Math.fround;
  const h = float16Table();
  const b = src.buffer;
  switch (type) {
    case 'F32': out.set(new Float32Array(b), o); return;
    case 'F64': out.set(new Float64Array(b), o); return;
    case 'F16': float16ToFloat(new Uint16Array(b), out, o); return;
    case 'BF16': bfloat16ToFloat(new Uint16Array(b), out, o); return;
    case 'I8': out.set(new Int8Array(b), o); return;
    case 'I16': out.set(new Int16Array(b), o); return;
    case 'I32': out.set(new Int32Array(b), o); return;
    case 'I64': {
      const s = new BigInt64Array(b);
      for (let i = 0; i < s.length; i++) out[o + i] = Number(s[i]);
      return;
    }
    case 'Q8_0':
      // block: f16 d, int8 qs[32]; x = d * q
      for (let k = 0, p = 0; k < nb; k++, p += 34) {
        const d = h[src[p] | (src[p + 1] << 8)];
        for (let j = 0; j < 32; j++) out[o++] = fr(d * ((src[p + 2 + j] << 24) >> 24));
      }
      return;
    case 'Q4_0':
      // block: f16 d, u8 qs[16]; element j < 16 is the low nibble of qs[j], j >= 16 the high nibble of qs[j-16]
      for (let k = 0, p = 0; k < nb; k++, p += 18, o += 32) {
        const d = h[src[p] | (src[p + 1] << 8)];
        for (let j = 0; j < 16; j++) {
          const v = src[p + 2 + j];
          out[o + j] = fr(d * ((v & 15) - 8));
          out[o + j + 16] = fr(d * ((v >> 4) - 8));
        }
      }
      return;
    case 'Q4_1':
      // block: f16 d, f16 m, u8 qs[16]; x = d * q + m (two float32 roundings, as ggml)
      for (let k = 0, p = 0; k < nb; k++, p += 20, o += 32) {
        const d = h[src[p] | (src[p + 1] << 8)];
        const m = h[src[p + 2] | (src[p + 3] << 8)];
        for (let j = 0; j < 16; j++) {
          const v = src[p + 4 + j];
          out[o + j] = fr(fr(d * (v & 15)) + m);
          out[o + j + 16] = fr(fr(d * (v >> 4)) + m);
        }
      }
      return;
    case 'Q5_0':
    case 'Q5_1': {
      // block: f16 d, [f16 m], u32 qh (5th bits), u8 qs[16]; q = nibble | bit << 4 (minus 16 for Q5_0)
      const withMin = type === 'Q5_1';
      const size = withMin ? 24 : 22;
      for (let k = 0, p = 0; k < nb; k++, p += size, o += 32) {
        const d = h[src[p] | (src[p + 1] << 8)];
        const m = withMin ? h[src[p + 2] | (src[p + 3] << 8)] : 0;
        const hp = p + (withMin ? 4 : 2);
        const qh = (src[hp] | (src[hp + 1] << 8) | (src[hp + 2] << 16) | (src[hp + 3] << 24)) >>> 0;
        for (let j = 0; j < 16; j++) {
          const v = src[hp + 4 + j];
          const lo = (v & 15) | (((qh >>> j) & 1) << 4);
          const hi = (v >> 4) | (((qh >>> (j + 16)) & 1) << 4);
          if (withMin) {
            out[o + j] = fr(fr(d * lo) + m);
            out[o + j + 16] = fr(fr(d * hi) + m);
          } else {
            out[o + j] = fr(d * (lo - 16));
            out[o + j + 16] = fr(d * (hi - 16));
          }
        }
      }
      return;
    }
  }
  throw new Error(`gguf: internal error, no dequantiser for ${type}`);
}

/** Opens a GGUF file and parses its header (metadata and tensor infos); tensor data is read on load. */
export function openGguf(file: string): GgufFile {
  assertLittleEndian(FORMAT, file);
  const f = ReadableFile.open(FORMAT, file);
  try {
    return parse(f);
  } catch (e) {
    f.close();
    throw e;
  }
}

function parse(f: ReadableFile): Gguf {
  if (f.size < 24) {
    if (f.size >= 4 && String.fromCharCode(...f.read(0, 4, 'magic')) !== 'GGUF') throw badMagic(f);
    throw f.fail(`file is ${f.size} bytes, too short for a GGUF header (truncated?)`);
  }
  const c = new Cursor(f);
  const magic = c.bytes(4, () => 'magic');
  if (String.fromCharCode(...magic) !== 'GGUF') throw badMagic(f, magic);
  const version = c.u32(() => 'version');
  if (version === 1) throw f.fail('GGUF version 1 is not supported (convert the file to v3 with llama.cpp)');
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version >>> 8) & 0xff) << 16 | ((version >>> 16) & 0xff) << 8 | (version >>> 24);
    if (swapped === 2 || swapped === 3) throw f.fail('big-endian GGUF files are not supported');
    throw f.fail(`unsupported GGUF version ${version} (expected 2 or 3)`);
  }
  const nTensors = c.u64n(() => 'tensor count');
  const nKv = c.u64n(() => 'metadata count');
  // Each tensor info takes at least 24 bytes, each key/value at least 13: reject absurd counts up front.
  if (nTensors * 24 > f.size) throw f.fail(`tensor count ${nTensors} is absurd for a ${f.size}-byte file (corrupt?)`);
  if (nKv * 13 > f.size) throw f.fail(`metadata count ${nKv} is absurd for a ${f.size}-byte file (corrupt?)`);

  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(() => `key of metadata entry ${i}`);
    const what = (): string => `metadata ${q(key)}`;
    if (metadata.has(key)) throw f.fail(`duplicate metadata key ${q(key)}`);
    const type = typeName(f, c.u32(() => `value type of ${what()}`), what);
    metadata.set(key, readValue(c, f, type, what, 0));
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al) {
    if (al.type !== 'uint32') throw f.fail(`general.alignment has type ${al.type}, expected uint32`);
    if (al.value === 0 || (al.value & (al.value - 1)) !== 0) throw f.fail(`general.alignment ${al.value} is not a power of two`);
    alignment = al.value;
  }

  interface RawInfo {
    name: string;
    typeId: number;
    ne: number[];
    offset: number;
  }
  const raw: RawInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(() => `name of tensor ${i}`);
    const what = (): string => `tensor ${q(name)}`;
    if (names.has(name)) throw f.fail(`duplicate tensor name ${q(name)}`);
    names.add(name);
    const nDims = c.u32(() => `dimension count of ${what()}`);
    if (nDims > MAX_DIMS) throw f.fail(`${what()} has ${nDims} dimensions (at most ${MAX_DIMS})`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(c.u64n(() => `dimension ${d} of ${what()}`));
    const typeId = c.u32(() => `type of ${what()}`);
    const offset = c.u64n(() => `data offset of ${what()}`);
    raw.push({ name, typeId, ne, offset });
  }
  const dataOffset = alignUp(c.pos, alignment);

  const tensors: GgufTensorInfo[] = [];
  for (const r of raw) {
    const what = `tensor ${q(r.name)}`;
    const gt = GGML_TYPES.get(r.typeId);
    if (!gt) throw f.fail(`${what} has unknown ggml type ${r.typeId}`);
    let n = 1;
    for (const d of r.ne) n *= d;
    if (!Number.isSafeInteger(n)) throw f.fail(`${what} dimensions ${fmtShape(r.ne)} are absurdly large`);
    const rowLen = r.ne.length ? r.ne[0] : 1;
    if (rowLen % gt.blockSize !== 0) throw f.fail(`${what} row length ${rowLen} is not a multiple of the ${gt.name} block size ${gt.blockSize}`);
    const byteLength = (n / gt.blockSize) * gt.typeSize;
    if (r.offset % alignment !== 0) throw f.fail(`${what} data offset ${r.offset} is not a multiple of the alignment ${alignment}`);
    const start = dataOffset + r.offset;
    if (start + byteLength > f.size)
      throw f.fail(`${what} (${gt.name} ${fmtShape([...r.ne].reverse())}) data [${start}, ${start + byteLength}) is past the end of the file (${f.size} bytes) — truncated?`);
    tensors.push({ name: r.name, type: gt.name, typeId: r.typeId, ne: r.ne, shape: [...r.ne].reverse(), byteOffset: start, byteLength });
  }
  const sorted = [...tensors].sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1];
    const b = sorted[i];
    if (b.byteOffset < a.byteOffset + a.byteLength) throw f.fail(`tensor ${q(b.name)} data overlaps tensor ${q(a.name)}`);
  }
  return new Gguf(f, version, alignment, dataOffset, metadata, tensors);
}

function badMagic(f: ReadableFile, magic?: Uint8Array): CheckpointError {
  const m = magic ?? f.read(0, Math.min(4, f.size), 'magic');
  const shown = Array.from(m, (x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('');
  return f.fail(`bad magic '${shown}', expected 'GGUF' — not a GGUF file`);
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

// ------------------------------------------------------------------------------------------- writing
export type GgufWriteType = 'F32' | 'F16' | 'BF16';

export interface GgufTensorInput {
  name: string;
  /** A float tensor (float32/float64/bfloat16/float16). Row-major shape; written as ne = shape reversed. */
  tensor: Tensor;
  type: GgufWriteType;
}

export interface SaveGgufOptions {
  /** Key/values in write order. general.alignment (uint32, a power of two) sets the alignment (default 32). */
  metadata: Record<string, GgufValueInput> | ReadonlyMap<string, GgufValueInput>;
  tensors: readonly GgufTensorInput[];
}

/** A growable little-endian byte buffer for the header. */
class ByteSink {
  buf = new Uint8Array(1 << 16);
  view = new DataView(this.buf.buffer);
  len = 0;

  private room(n: number): number {
    if (this.len + n > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < this.len + n) cap *= 2;
      const nb = new Uint8Array(cap);
      nb.set(this.buf.subarray(0, this.len));
      this.buf = nb;
      this.view = new DataView(nb.buffer);
    }
    const at = this.len;
    this.len += n;
    return at;
  }
  bytes(b: Uint8Array): void {
    const at = this.room(b.length);
    this.buf.set(b, at);
  }
  // Note: room() may replace the buffer, so it must run before this.view is read.
  u32(v: number): void {
    const at = this.room(4);
    this.view.setUint32(at, v, true);
  }
  u64(v: bigint | number): void {
    const at = this.room(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  scalar(t: GgufNumberType, v: number): void {
    const at = this.room(NUMBER_SIZE[t]);
    const d = this.view;
    switch (t) {
      case 'uint8': return d.setUint8(at, v);
      case 'int8': return d.setInt8(at, v);
      case 'uint16': return d.setUint16(at, v, true);
      case 'int16': return d.setInt16(at, v, true);
      case 'uint32': return d.setUint32(at, v, true);
      case 'int32': return d.setInt32(at, v, true);
      case 'float32': return d.setFloat32(at, v, true);
      case 'float64': return d.setFloat64(at, v, true);
    }
  }
}

const INT_RANGE: Readonly<Record<Exclude<GgufNumberType, 'float32' | 'float64'>, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767], uint32: [0, 4294967295], int32: [-2147483648, 2147483647],
};

function writeValue(sink: ByteSink, v: GgufValueInput, fail: (msg: string) => CheckpointError, what: string, withType: boolean, depth: number): void {
  if (depth > 8) throw fail(`${what} nests arrays too deeply`);
  const t = v.type;
  if (!Object.prototype.hasOwnProperty.call(VALUE_TYPE_ID, t)) throw fail(`${what} has unknown type ${q(String(t))}`);
  if (withType) sink.u32(VALUE_TYPE_ID[t]);
  switch (v.type) {
    case 'string': {
      const x: unknown = v.value;
      if (typeof x !== 'string') throw fail(`${what} is type string but its value is ${typeof x}`);
      return sink.string(x);
    }
    case 'bool': {
      const x: unknown = v.value;
      if (typeof x !== 'boolean') throw fail(`${what} is type bool but its value is ${typeof x}`);
      return sink.bytes(new Uint8Array([x ? 1 : 0]));
    }
    case 'uint64':
    case 'int64':
      return sink.u64(checkBig(v.type, v.value, fail, what));
    case 'array':
      return writeArray(sink, v, fail, what, depth);
    default:
      return sink.scalar(v.type, checkNumber(v.type, v.value, fail, what));
  }
}

function checkNumber(t: GgufNumberType, x: unknown, fail: (msg: string) => CheckpointError, what: string): number {
  if (typeof x !== 'number') throw fail(`${what} is type ${t} but its value is ${typeof x}`);
  if (t === 'float32' || t === 'float64') return x;
  const [lo, hi] = INT_RANGE[t];
  if (!Number.isInteger(x) || x < lo || x > hi) throw fail(`${what} = ${x} is not a ${t}`);
  return x;
}

function checkBig(t: GgufBigIntType, x: unknown, fail: (msg: string) => CheckpointError, what: string): bigint {
  let b: bigint;
  if (typeof x === 'bigint') b = x;
  else if (typeof x === 'number' && Number.isSafeInteger(x)) b = BigInt(x);
  else throw fail(`${what} = ${String(x)} is not a ${t} (use a bigint or a safe integer)`);
  const ok = t === 'uint64' ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
  if (!ok) throw fail(`${what} = ${b} is out of range for ${t}`);
  return BigInt.asUintN(64, b);
}

function writeArray(sink: ByteSink, v: GgufArrayInput, fail: (msg: string) => CheckpointError, what: string, depth: number): void {
  const it = v.itemType;
  if (!Object.prototype.hasOwnProperty.call(VALUE_TYPE_ID, it)) throw fail(`${what} has unknown item type ${q(String(it))}`);
  if (v.value === null || typeof v.value !== 'object' || typeof v.value.length !== 'number') throw fail(`${what} is an array but its value is not array-like`);
  sink.u32(VALUE_TYPE_ID[it]);
  sink.u64(v.value.length);
  const n = v.value.length;
  switch (v.itemType) {
    case 'string':
      for (let i = 0; i < n; i++) {
        const s = v.value[i];
        if (typeof s !== 'string') throw fail(`${what}[${i}] is ${typeof s}, expected a string`);
        sink.string(s);
      }
      return;
    case 'bool':
      for (let i = 0; i < n; i++) {
        const x = v.value[i];
        if (typeof x !== 'boolean') throw fail(`${what}[${i}] is ${typeof x}, expected a boolean`);
        sink.bytes(new Uint8Array([x ? 1 : 0]));
      }
      return;
    case 'array':
      for (let i = 0; i < n; i++) {
        const x = v.value[i];
        if (!x || x.type !== 'array') throw fail(`${what}[${i}] is not an array value {type: 'array', itemType, value}`);
        writeArray(sink, x, fail, `${what}[${i}]`, depth + 1);
      }
      return;
    case 'uint64':
    case 'int64':
      for (let i = 0; i < n; i++) sink.u64(checkBig(v.itemType, v.value[i], fail, `${what}[${i}]`));
      return;
    default:
      for (let i = 0; i < n; i++) sink.scalar(v.itemType, checkNumber(v.itemType, v.value[i], fail, `${what}[${i}]`));
  }
}

interface PlannedGguf {
  name: string;
  tensor: Tensor;
  type: GgufWriteType;
  ne: number[];
  nbytes: number;
  offset: number;
}

/**
 * Writes a GGUF v3 file atomically (temporary file + fsync + rename; nothing is left on error). Tensors are
 * written in the order given, each aligned; F16 / BF16 round to nearest even.
 */
export function saveGguf(file: string, options: SaveGgufOptions): { path: string; bytes: number } {
  const fail = (msg: string): CheckpointError => new CheckpointError(FORMAT, file, msg);
  let out: AtomicFile | null = null;
  try {
    const entries: [string, GgufValueInput][] = options.metadata instanceof Map ? [...options.metadata] : Object.entries(options.metadata);
    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const sink = new ByteSink();
    sink.bytes(new Uint8Array([0x47, 0x47, 0x55, 0x46])); // "GGUF"
    sink.u32(3);
    sink.u64(options.tensors.length);
    sink.u64(entries.length);
    const keys = new Set<string>();
    for (const [key, v] of entries) {
      if (keys.has(key)) throw fail(`duplicate metadata key ${q(key)}`);
      keys.add(key);
      if (!v || typeof v !== 'object') throw fail(`metadata ${q(key)} is not a typed value {type, value}`);
      if (key === 'general.alignment') {
        if (v.type !== 'uint32' || typeof v.value !== 'number' || v.value <= 0 || (v.value & (v.value - 1)) !== 0)
          throw fail('general.alignment must be a uint32 power of two');
        alignment = v.value;
      }
      sink.string(key);
      writeValue(sink, v, fail, `metadata ${q(key)}`, true, 0);
    }

    const planned: PlannedGguf[] = [];
    const names = new Set<string>();
    let offset = 0;
    for (const t of options.tensors) {
      const what = `tensor ${q(t.name)}`;
      if (typeof t.name !== 'string' || t.name.length === 0) throw fail('tensor names must be non-empty strings');
      if (Buffer.byteLength(t.name, 'utf8') >= 64) throw fail(`${what}: names must be under 64 bytes (llama.cpp's limit)`);
      if (names.has(t.name)) throw fail(`duplicate tensor name ${q(t.name)}`);
      names.add(t.name);
      if (!(t.tensor instanceof Tensor)) throw fail(`${what} is not a Tensor`);
      if (t.tensor.disposed) throw fail(`${what} was disposed`);
      if (t.type !== 'F32' && t.type !== 'F16' && t.type !== 'BF16') throw fail(`${what}: type ${q(String(t.type))} cannot be written (F32, F16 or BF16)`);
      const dt = t.tensor.dtype;
      if (dt !== 'float32' && dt !== 'float64' && dt !== 'float16' && dt !== 'bfloat16') throw fail(`${what} has dtype ${dt}; only float tensors can be written`);
      if (t.tensor.rank > MAX_DIMS) throw fail(`${what} has shape ${fmtShape(t.tensor.shape)}; GGUF allows at most ${MAX_DIMS} dimensions`);
      const ne = [...t.tensor.shape].reverse();
      const nbytes = t.tensor.size * (t.type === 'F32' ? 4 : 2);
      planned.push({ name: t.name, tensor: t.tensor, type: t.type, ne, nbytes, offset });
      offset = alignUp(offset + nbytes, alignment);
    }
    for (const p of planned) {
      sink.string(p.name);
      sink.u32(p.ne.length);
      for (const d of p.ne) sink.u64(d);
      sink.u32(TYPE_ID.get(p.type) ?? 0);
      sink.u64(p.offset);
    }

    out = new AtomicFile(FORMAT, file);
    out.write(sink.buf.subarray(0, sink.len));
    out.writeZeros(alignUp(sink.len, alignment) - sink.len);
    for (const p of planned) {
      writeTensor(out, p);
      out.writeZeros(alignUp(p.nbytes, alignment) - p.nbytes);
    }
    const bytes = out.position;
    out.publish();
    return { path: file, bytes };
  } catch (e) {
    out?.abort();
    throw wrapWriteError(FORMAT, file, e);
  }
}

function writeTensor(out: AtomicFile, p: PlannedGguf): void {
  const src = p.tensor.data;
  const dt = p.tensor.dtype;
  if ((p.type === 'F32' && dt === 'float32') || (p.type === 'F16' && dt === 'float16') || (p.type === 'BF16' && dt === 'bfloat16')) {
    out.write(bytesOf(src));
    return;
  }
  const CH = 1 << 20;
  for (let i = 0; i < src.length; i += CH) {
    const n = Math.min(CH, src.length - i);
    if (p.type === 'F32') {
      const o = new Float32Array(n);
      if (src instanceof Uint16Array) {
        if (dt === 'bfloat16') bfloat16ToFloat(src.subarray(i, i + n), o, 0);
        else float16ToFloat(src.subarray(i, i + n), o, 0);
      } else o.set((src as FloatArray).subarray(i, i + n));
      out.write(bytesOf(o));
    } else {
      const o = new Uint16Array(n);
      if (src instanceof Uint16Array) halfToHalfBits(src.subarray(i, i + n), dt === 'bfloat16' ? 'bfloat16' : 'float16', o);
      else floatToHalfBits((src as FloatArray).subarray(i, i + n), o, p.type === 'BF16' ? 'bfloat16' : 'float16');
      out.write(bytesOf(o));
    }
  }
}

// ------------------------------------------------------------------------------------------- q/k permutation
// llama.cpp's HF -> GGUF conversion reorders the rows of the attention q and k projections so that its
// rotary embedding can rotate adjacent pairs: per head, the HF row layout [2, headDim/2] (first halves, then
// second halves) becomes [headDim/2, 2] (interleaved). Viewing the [out, in] weight as
// [nHead, 2, headDim/2, in], the GGUF weight is that with axes 1 and 2 swapped. Use nHead = the number of
// attention heads for q, and the number of key/value heads for k.

function permuteRows(w: Tensor, nHead: number, toGguf: boolean, op: string): Tensor {
  w.live(op);
  if (w.rank !== 1 && w.rank !== 2) throw new ShapeError(`${op}: expected a [out, in] weight or [out] bias, got ${fmtShape(w.shape)}`);
  const rows = w.shape[0];
  if (!Number.isInteger(nHead) || nHead <= 0 || rows % (2 * nHead) !== 0)
    throw new ShapeError(`${op}: ${rows} rows do not split into ${nHead} heads of an even head size`);
  const headDim = rows / nHead;
  const half = headDim / 2;
  const src = w.data;
  const isFloat = w.dtype === 'float32' || w.dtype === 'float64';
  const out = isFloat ? empty(w.shape, w.dtype, w.backend) : empty(w.shape, w.dtype);
  const rowBytes = (w.rank === 2 ? w.shape[1] : 1) * src.BYTES_PER_ELEMENT;
  const s = bytesOf(src);
  const d = bytesOf(out.storage.data);
  for (let h = 0; h < nHead; h++)
    for (let i = 0; i < half; i++)
      for (let j = 0; j < 2; j++) {
        const ggufRow = h * headDim + i * 2 + j; // [nHead, half, 2]
        const hfRow = h * headDim + j * half + i; // [nHead, 2, half]
        const [from, to] = toGguf ? [hfRow, ggufRow] : [ggufRow, hfRow];
        d.set(s.subarray(from * rowBytes, (from + 1) * rowBytes), to * rowBytes);
      }
  return out;
}

/** HF q_proj / k_proj row order -> GGUF (llama.cpp convert_hf_to_gguf). A new tensor of the same dtype. */
export function permuteQkForGguf(w: Tensor, nHead: number): Tensor {
  return permuteRows(w, nHead, true, 'permuteQkForGguf');
}

/** GGUF attn_q / attn_k row order -> HF (the inverse of permuteQkForGguf). */
export function unpermuteQkFromGguf(w: Tensor, nHead: number): Tensor {
  return permuteRows(w, nHead, false, 'unpermuteQkFromGguf');
}
