// safetensors: reader (single files, sharded checkpoints via model.safetensors.index.json) and writer.
//
// Format: u64 little-endian N, then N bytes of UTF-8 JSON
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// then the data section; offsets are relative to its start (byte 8 + N), row-major, little-endian.
//
// Reading validates the header as strictly as the reference implementation: the header must fit the file,
// be JSON without duplicate names, every dtype known, every byte range match shape x element size, and the
// ranges must tile the data section exactly (contiguous, no overlap, no gap, nothing after the last tensor).
// Then tensors are read lazily, by offset, when asked for.
//
// Writing follows the reference writer's layout byte for byte: tensors ordered by dtype (wider/"larger"
// dtypes first, in the reference's dtype order) then by name, laid out contiguously, the header JSON compact
// with "__metadata__" first and padded with spaces to a multiple of 8 bytes (so the data section is 8-byte
// aligned). For a file holding a single dtype that order is simply by name.
import fs from 'node:fs';
import path from 'node:path';
import { jsBackend64, type Backend, type FloatArray } from '../backend/index.ts';
import { fmtShape } from '../tensor/errors.ts';
import { Tensor, empty, type DType, type TensorData } from '../tensor/tensor.ts';
import { bfloat16ToFloat, float16ToFloat, float8e4m3Table, float8e5m2Table, floatToHalfBits, halfToHalfBits } from './convert.ts';
import { CheckpointError, q } from './errors.ts';
import { AtomicFile, ReadableFile, assertLittleEndian, bytesOf, wrapWriteError } from './file.ts';
import { JsonSyntaxError, isObject, kindOf, parseJson, type Json, type JsonObject } from './json.ts';

const FORMAT = 'safetensors';
const INDEX_FORMAT = 'safetensors index';
/** The reference implementation refuses headers over 100 MB; so do we (a corrupt length is usually huge). */
export const MAX_HEADER_BYTES = 100_000_000;

// ------------------------------------------------------------------------------------------- dtypes
export type SafetensorsDType = 'BOOL' | 'U8' | 'I8' | 'F8_E5M2' | 'F8_E4M3' | 'I16' | 'U16' | 'F16' | 'BF16' | 'I32' | 'U32' | 'F32' | 'C64' | 'F64' | 'I64' | 'U64';

/** Element size, and the position in the reference's dtype enum (the writer orders tensors by it, descending). */
const DTYPES: Readonly<Record<SafetensorsDType, { size: number; order: number }>> = {
  BOOL: { size: 1, order: 0 },
  U8: { size: 1, order: 1 },
  I8: { size: 1, order: 2 },
  F8_E5M2: { size: 1, order: 3 },
  F8_E4M3: { size: 1, order: 4 },
  I16: { size: 2, order: 5 },
  U16: { size: 2, order: 6 },
  F16: { size: 2, order: 7 },
  BF16: { size: 2, order: 8 },
  I32: { size: 4, order: 9 },
  U32: { size: 4, order: 10 },
  F32: { size: 4, order: 11 },
  C64: { size: 8, order: 12 },
  F64: { size: 8, order: 13 },
  I64: { size: 8, order: 14 },
  U64: { size: 8, order: 15 },
};

function isDType(s: string): s is SafetensorsDType {
  return Object.prototype.hasOwnProperty.call(DTYPES, s);
}

export function safetensorsDTypeSize(d: SafetensorsDType): number {
  return DTYPES[d].size;
}

// ------------------------------------------------------------------------------------------- reading
export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  /** Row-major shape ([] for a scalar). */
  readonly shape: readonly number[];
  /** The file holding the data (a shard, for sharded checkpoints). */
  readonly file: string;
  /** Absolute byte offset of the data in `file`. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsLoadOptions {
  /**
   * 'float32' (default): a float tensor whatever the stored dtype (16-bit and 8-bit floats widened exactly,
   * integers and booleans converted to numbers; stored in the backend's float storage: float32, or float64
   * on the js64 backend).
   * 'raw': the stored values unconverted where a tensor dtype can hold them: F32 -> float32, F64 -> float64
   * (on the js64 backend), F16/BF16 -> 'float16'/'bfloat16' (Uint16 bits), I32 -> int32, I64 -> int64,
   * U8/BOOL -> uint8; I8/I16/U16 widen to int32 and U32/U64 to int64 (U64 values >= 2^63 are an error);
   * F8 and C64 have no raw form.
   */
  as?: 'float32' | 'raw';
  /** Backend for float storage (default: the current backend). */
  on?: Backend;
}

export interface SafetensorsReader {
  /** The path opened: a .safetensors file or a .index.json. */
  readonly path: string;
  /** Every data file (one, or the shards in index order). */
  readonly files: readonly string[];
  /** The "__metadata__" of the file (of the first shard for sharded checkpoints). */
  readonly metadata: Readonly<Record<string, string>>;
  /** The index's "metadata" object (sharded checkpoints; e.g. {total_size}), else {}. */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  /** Every tensor, sorted by name. */
  readonly tensors: readonly SafetensorsTensorInfo[];
  has(name: string): boolean;
  /** Throws a CheckpointError naming the file when the tensor does not exist. */
  info(name: string): SafetensorsTensorInfo;
  load(name: string, options?: SafetensorsLoadOptions): Tensor;
  /** The tensor's bytes exactly as stored. */
  readBytes(name: string): Uint8Array;
  /** Closes the file descriptors. Further loads throw. Idempotent. */
  close(): void;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  tensors: SafetensorsTensorInfo[];
}

function shapeBytes(shape: readonly number[], dtype: SafetensorsDType): number {
  let n = DTYPES[dtype].size;
  for (const d of shape) n *= d;
  return n;
}

/** Parses and validates the header of an open file. Errors name the file and the problem. */
function parseHeader(f: ReadableFile): ParsedHeader {
  if (f.size < 8) throw f.fail(`file is ${f.size} bytes, too short for the 8-byte header length`);
  const lenBytes = f.read(0, 8, 'header length');
  const n64 = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (n64 > BigInt(f.size - 8))
    throw f.fail(`header length ${n64} is past the end of the file (${f.size} bytes) — not a safetensors file, or truncated`);
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw f.fail(`header length ${n64} is absurd (more than ${MAX_HEADER_BYTES} bytes)`);
  const n = Number(n64);
  if (n < 2) throw f.fail(`header length ${n} is too small for a JSON object`);
  const raw = f.read(8, n, 'header');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    throw f.fail('header is not valid UTF-8');
  }
  if (text[0] !== '{') throw f.fail(`header does not start with '{' (found ${JSON.stringify(text.slice(0, 16))}) — not a safetensors file`);
  let json: Json;
  try {
    json = parseJson(text);
  } catch (e) {
    if (e instanceof JsonSyntaxError && e.duplicate?.depth === 0) throw f.fail(`duplicate tensor name ${q(e.duplicate.key)} in header`);
    throw f.fail(`header is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(json)) throw f.fail(`header is ${kindOf(json)}, expected a JSON object`);

  const dataStart = 8 + n;
  const dataLen = f.size - dataStart;
  const metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors: SafetensorsTensorInfo[] = [];
  const ranges: { name: string; begin: number; end: number }[] = [];

  for (const [name, entry] of json) {
    if (name === '__metadata__') {
      if (!isObject(entry)) throw f.fail(`"__metadata__" is ${kindOf(entry)}, expected an object of strings`);
      for (const [k, v] of entry) {
        if (typeof v !== 'string') throw f.fail(`"__metadata__" value for ${q(k)} is ${kindOf(v)}, expected a string`);
        metadata[k] = v;
      }
      continue;
    }
    const what = `tensor ${q(name)}`;
    if (!isObject(entry)) throw f.fail(`${what} entry is ${kindOf(entry)}, expected an object`);
    const dtype = entry.get('dtype');
    if (typeof dtype !== 'string') throw f.fail(`${what} has dtype ${kindOf(dtype)}, expected a string`);
    if (!isDType(dtype)) throw f.fail(`${what} has unknown dtype ${q(dtype)}`);
    const shapeJ = entry.get('shape');
    if (!Array.isArray(shapeJ) || !shapeJ.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))
      throw f.fail(`${what} has invalid shape ${jsonText(shapeJ)} (expected an array of non-negative integers)`);
    const offs = entry.get('data_offsets');
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0))
      throw f.fail(`${what} has invalid data_offsets ${jsonText(offs)} (expected [begin, end], non-negative integers)`);
    const [begin, end] = offs;
    if (begin > end) throw f.fail(`${what} has data_offsets [${begin},${end}] with begin > end`);
    const shape = shapeJ;
    const nbytes = shapeBytes(shape, dtype);
    if (!Number.isSafeInteger(nbytes)) throw f.fail(`${what} shape ${fmtShape(shape)} is absurdly large`);
    if (end - begin !== nbytes)
      throw f.fail(`${what} (${dtype} ${fmtShape(shape)}) needs ${nbytes} bytes but data_offsets [${begin},${end}] hold ${end - begin}`);
    if (end > dataLen)
      throw f.fail(`${what} data_offsets [${begin},${end}] are out of bounds: the data section has ${dataLen} bytes (truncated file?)`);
    tensors.push({ name, dtype, shape, file: f.path, byteOffset: dataStart + begin, byteLength: nbytes });
    ranges.push({ name, begin, end });
  }

  // The byte ranges must tile [0, dataLen) exactly.
  ranges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let prev = '';
  for (const r of ranges) {
    if (r.begin < expected) throw f.fail(`tensor ${q(r.name)} data_offsets [${r.begin},${r.end}] overlap tensor ${q(prev)} (which ends at ${expected})`);
    if (r.begin > expected)
      throw f.fail(`data is not contiguous: ${r.begin - expected} unused bytes before tensor ${q(r.name)} (data_offsets [${r.begin},${r.end}])`);
    expected = r.end;
    prev = r.name;
  }
  if (expected !== dataLen)
    throw f.fail(`${dataLen - expected} bytes after the last tensor are not described by the header (data section ${dataLen} bytes, tensors end at ${expected})`);
  tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { metadata, tensors };
}

function jsonText(v: Json | undefined): string {
  if (v === undefined) return 'missing';
  const s = JSON.stringify(v instanceof Map ? Object.fromEntries(v) : v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

/** Scratch buffer for converting reads (synchronous code: never used re-entrantly). */
const CHUNK_BYTES = 1 << 22;
let scratch: ArrayBuffer | null = null;
function scratchBuffer(): ArrayBuffer {
  if (!scratch) scratch = new ArrayBuffer(CHUNK_BYTES);
  return scratch;
}

/** Reads a tensor's bytes chunk by chunk (each chunk a whole number of elements) into the scratch buffer. */
function forEachChunk(f: ReadableFile, info: SafetensorsTensorInfo, fn: (buf: ArrayBuffer, first: number, count: number) => void): void {
  const size = DTYPES[info.dtype].size;
  const perChunk = Math.floor(CHUNK_BYTES / size);
  const total = info.byteLength / size;
  const buf = scratchBuffer();
  for (let first = 0; first < total; first += perChunk) {
    const count = Math.min(perChunk, total - first);
    f.readInto(new Uint8Array(buf, 0, count * size), info.byteOffset + first * size, `tensor ${q(info.name)}`);
    fn(buf, first, count);
  }
}

class Entry {
  constructor(
    readonly info: SafetensorsTensorInfo,
    readonly file: ReadableFile,
  ) {}
}

class Reader implements SafetensorsReader {
  readonly tensors: readonly SafetensorsTensorInfo[];
  private readonly entries: Map<string, Entry>;

  constructor(
    readonly path: string,
    private readonly format: string,
    private readonly handles: ReadableFile[],
    entries: Map<string, Entry>,
    readonly metadata: Readonly<Record<string, string>>,
    readonly indexMetadata: Readonly<Record<string, unknown>>,
  ) {
    this.entries = entries;
    this.tensors = [...entries.values()].map((e) => e.info).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get files(): readonly string[] {
    return this.handles.map((h) => h.path);
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new CheckpointError(this.format, this.path, `no tensor named ${q(name)} (the checkpoint has ${this.entries.size} tensors)`);
    return e;
  }

  info(name: string): SafetensorsTensorInfo {
    return this.entry(name).info;
  }

  readBytes(name: string): Uint8Array {
    const { info, file } = this.entry(name);
    return file.read(info.byteOffset, info.byteLength, `tensor ${q(name)}`);
  }

  load(name: string, options: SafetensorsLoadOptions = {}): Tensor {
    const { info, file } = this.entry(name);
    const as = options.as ?? 'float32';
    const out = allocFor(info, as, options.on, file);
    try {
      fill(file, info, out);
    } catch (e) {
      out.dispose();
      throw e;
    }
    return out;
  }

  close(): void {
    for (const h of this.handles) h.close();
  }
}

function allocFor(info: SafetensorsTensorInfo, as: 'float32' | 'raw', on: Backend | undefined, f: ReadableFile): Tensor {
  const shape = info.shape;
  if (as === 'float32') {
    if (info.dtype === 'C64') throw f.fail(`tensor ${q(info.name)} has dtype C64 (complex), which cannot be loaded`);
    return empty(shape, 'float', on);
  }
  const raw: Record<SafetensorsDType, DType | 'float' | null> = {
    F32: 'float', F64: 'float64', F16: 'float16', BF16: 'bfloat16', I32: 'int32', I16: 'int32', I8: 'int32', U16: 'int32',
    I64: 'int64', U32: 'int64', U64: 'int64', U8: 'uint8', BOOL: 'uint8', F8_E4M3: null, F8_E5M2: null, C64: null,
  };
  const dt = raw[info.dtype];
  if (dt === null) throw f.fail(`tensor ${q(info.name)} has dtype ${info.dtype}, which has no raw tensor form (load it with as: 'float32')`);
  if (dt === 'float64') return empty(shape, 'float64', jsBackend64);
  return dt === 'float' ? empty(shape, 'float', on) : empty(shape, dt);
}

/** Reads the tensor's data into `out` (allocated by allocFor), converting as needed. */
function fill(f: ReadableFile, info: SafetensorsTensorInfo, out: Tensor): void {
  const data: TensorData = out.storage.data;
  const what = `tensor ${q(info.name)}`;
  // Direct reads when the stored bytes are exactly the in-memory representation.
  const direct =
    (info.dtype === 'F32' && data instanceof Float32Array) ||
    (info.dtype === 'F64' && data instanceof Float64Array) ||
    ((info.dtype === 'F16' || info.dtype === 'BF16') && data instanceof Uint16Array) ||
    (info.dtype === 'I32' && data instanceof Int32Array) ||
    (info.dtype === 'I64' && data instanceof BigInt64Array) ||
    ((info.dtype === 'U8' || info.dtype === 'BOOL') && data instanceof Uint8Array && out.dtype === 'uint8');
  if (direct) {
    f.readInto(bytesOf(data), info.byteOffset, what);
    return;
  }
  if (data instanceof BigInt64Array) {
    forEachChunk(f, info, (buf, o, count) => {
      if (info.dtype === 'U32') {
        const s = new Uint32Array(buf, 0, count);
        for (let i = 0; i < count; i++) data[o + i] = BigInt(s[i]);
      } else {
        const s = new BigUint64Array(buf, 0, count);
        for (let i = 0; i < count; i++) {
          if (s[i] >= 1n << 63n) throw f.fail(`${what} (U64) holds ${s[i]} at element ${o + i}, which does not fit int64 (load it with as: 'float32')`);
          data[o + i] = BigInt.asIntN(64, s[i]);
        }
      }
    });
    return;
  }
  if (data instanceof Int32Array) {
    forEachChunk(f, info, (buf, o, count) => data.set(intView(info.dtype, buf, count), o));
    return;
  }
  if (!(data instanceof Float32Array || data instanceof Float64Array)) throw f.fail(`${what}: internal error, unexpected storage`);
  const fa: FloatArray = data;
  forEachChunk(f, info, (buf, o, count) => {
    switch (info.dtype) {
      case 'F16':
        return float16ToFloat(new Uint16Array(buf, 0, count), fa, o);
      case 'BF16':
        return bfloat16ToFloat(new Uint16Array(buf, 0, count), fa, o);
      case 'F32':
        return fa.set(new Float32Array(buf, 0, count), o);
      case 'F64':
        return fa.set(new Float64Array(buf, 0, count), o);
      case 'F8_E4M3':
      case 'F8_E5M2': {
        const tab = info.dtype === 'F8_E4M3' ? float8e4m3Table() : float8e5m2Table();
        const s = new Uint8Array(buf, 0, count);
        for (let i = 0; i < count; i++) fa[o + i] = tab[s[i]];
        return;
      }
      case 'BOOL': {
        const s = new Uint8Array(buf, 0, count);
        for (let i = 0; i < count; i++) fa[o + i] = s[i] ? 1 : 0;
        return;
      }
      case 'I64':
      case 'U64': {
        const s = info.dtype === 'I64' ? new BigInt64Array(buf, 0, count) : new BigUint64Array(buf, 0, count);
        for (let i = 0; i < count; i++) fa[o + i] = Number(s[i]);
        return;
      }
      case 'C64':
        throw f.fail(`${what} has dtype C64 (complex), which cannot be loaded`);
      default:
        return fa.set(intView(info.dtype, buf, count), o);
    }
  });
}

function intView(dtype: SafetensorsDType, buf: ArrayBuffer, count: number): Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array {
  switch (dtype) {
    case 'I8':
      return new Int8Array(buf, 0, count);
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf, 0, count);
    case 'I16':
      return new Int16Array(buf, 0, count);
    case 'U16':
      return new Uint16Array(buf, 0, count);
    case 'I32':
      return new Int32Array(buf, 0, count);
    case 'U32':
      return new Uint32Array(buf, 0, count);
    default:
      throw new Error(`safetensors: internal error, ${dtype} is not an integer dtype`);
  }
}

/** Opens one .safetensors file and validates its header. */
export function openSafetensorsFile(file: string): SafetensorsReader {
  assertLittleEndian(FORMAT, file);
  const f = ReadableFile.open(FORMAT, file);
  try {
    const h = parseHeader(f);
    const entries = new Map<string, Entry>();
    for (const t of h.tensors) entries.set(t.name, new Entry(t, f));
    return new Reader(file, FORMAT, [f], entries, h.metadata, {});
  } catch (e) {
    f.close();
    throw e;
  }
}

/**
 * Opens a sharded checkpoint from its index ({"metadata": {...}, "weight_map": {tensor: shard file}}).
 * Shard files are resolved relative to the index's directory. Every shard's header is validated, and every
 * tensor named in the weight map must be in its shard. Tensors a shard holds beyond the weight map are ignored.
 */
export function openSafetensorsIndex(indexPath: string): SafetensorsReader {
  assertLittleEndian(INDEX_FORMAT, indexPath);
  const idx = ReadableFile.open(INDEX_FORMAT, indexPath);
  let text: string;
  try {
    if (idx.size > MAX_HEADER_BYTES) throw idx.fail(`index is ${idx.size} bytes, absurdly large`);
    text = new TextDecoder('utf-8', { fatal: true }).decode(idx.read(0, idx.size, 'index'));
  } catch (e) {
    throw e instanceof CheckpointError ? e : idx.fail('index is not valid UTF-8');
  } finally {
    idx.close();
  }
  let json: Json;
  try {
    json = parseJson(text);
  } catch (e) {
    throw idx.fail(`index is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isObject(json)) throw idx.fail(`index is ${kindOf(json)}, expected a JSON object`);
  const wm = json.get('weight_map');
  if (!isObject(wm)) throw idx.fail(`"weight_map" is ${kindOf(wm)}, expected an object {tensor name: shard file}`);
  const meta = json.get('metadata');
  if (meta !== undefined && meta !== null && !isObject(meta)) throw idx.fail(`"metadata" is ${kindOf(meta)}, expected an object`);

  const dir = path.dirname(indexPath);
  const byShard = new Map<string, string[]>();
  for (const [name, shard] of wm) {
    if (typeof shard !== 'string') throw idx.fail(`weight_map entry for ${q(name)} is ${kindOf(shard)}, expected a file name`);
    if (shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..'))
      throw idx.fail(`weight_map entry for ${q(name)} names ${q(shard)}, which is not a file inside the checkpoint directory`);
    let list = byShard.get(shard);
    if (!list) byShard.set(shard, (list = []));
    list.push(name);
  }
  if (byShard.size === 0) throw idx.fail('weight_map is empty');

  const handles: ReadableFile[] = [];
  const entries = new Map<string, Entry>();
  let metadata: Record<string, string> = {};
  try {
    for (const [shard, names] of byShard) {
      const shardPath = path.join(dir, shard);
      if (!fs.existsSync(shardPath))
        throw idx.fail(`shard file ${q(shard)} (holding ${q(names[0])}${names.length > 1 ? ` and ${names.length - 1} more tensors` : ''}) not found in ${dir}`);
      const f = ReadableFile.open(FORMAT, shardPath);
      handles.push(f);
      const h = parseHeader(f);
      if (handles.length === 1) metadata = h.metadata;
      const byName = new Map(h.tensors.map((t) => [t.name, t]));
      for (const name of names) {
        const t = byName.get(name);
        if (!t) throw idx.fail(`tensor ${q(name)} is mapped to shard ${q(shard)}, but that file does not contain it`);
        entries.set(name, new Entry(t, f));
      }
    }
  } catch (e) {
    for (const h of handles) h.close();
    throw e;
  }
  return new Reader(indexPath, INDEX_FORMAT, handles, entries, metadata, meta ? jsonToPlainObject(meta) : {});
}

function jsonToPlain(v: Json): unknown {
  if (v instanceof Map) return jsonToPlainObject(v);
  if (Array.isArray(v)) return v.map(jsonToPlain);
  return v;
}
function jsonToPlainObject(m: JsonObject): Record<string, unknown> {
  const o: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of m) o[k] = jsonToPlain(v);
  return o;
}

/**
 * Opens a checkpoint: a .safetensors file, a .index.json of a sharded checkpoint, or a directory holding
 * model.safetensors.index.json (preferred) or model.safetensors.
 */
export function openSafetensors(p: string): SafetensorsReader {
  let isDir = false;
  try {
    isDir = fs.statSync(p).isDirectory();
  } catch {
    /* reported by the open below */
  }
  if (isDir) {
    const index = path.join(p, 'model.safetensors.index.json');
    if (fs.existsSync(index)) return openSafetensorsIndex(index);
    const single = path.join(p, 'model.safetensors');
    if (fs.existsSync(single)) return openSafetensorsFile(single);
    throw new CheckpointError(FORMAT, p, 'directory has neither model.safetensors.index.json nor model.safetensors');
  }
  return p.endsWith('.json') ? openSafetensorsIndex(p) : openSafetensorsFile(p);
}

/** Loads every tensor of a checkpoint (see openSafetensors / SafetensorsLoadOptions). */
export function loadSafetensors(p: string, options: SafetensorsLoadOptions = {}): Record<string, Tensor> {
  const r = openSafetensors(p);
  const out: Record<string, Tensor> = Object.create(null) as Record<string, Tensor>;
  try {
    for (const t of r.tensors) out[t.name] = r.load(t.name, options);
  } catch (e) {
    for (const t of Object.values(out)) t.dispose();
    throw e;
  } finally {
    r.close();
  }
  return out;
}

// ------------------------------------------------------------------------------------------- writing
export type SafetensorsSaveDType = 'float32' | 'bfloat16' | 'float16';

export interface SaveSafetensorsOptions {
  /**
   * String metadata stored as "__metadata__" (keys written sorted). {format: 'pt'} is added unless given
   * (PyTorch writers store it and some transformers versions refuse files whose metadata lacks it);
   * null writes no metadata at all.
   */
  metadata?: Record<string, string> | null;
  /** Store every float tensor in this dtype (rounding to nearest even); integer tensors are kept as they are. */
  dtype?: SafetensorsSaveDType;
}

interface Planned {
  name: string;
  tensor: Tensor;
  dtype: SafetensorsDType;
  nbytes: number;
}

const SAVE_DTYPE: Record<SafetensorsSaveDType, SafetensorsDType> = { float32: 'F32', bfloat16: 'BF16', float16: 'F16' };
const NATIVE_DTYPE: Record<DType, SafetensorsDType> = {
  float32: 'F32', float64: 'F64', bfloat16: 'BF16', float16: 'F16', int32: 'I32', int64: 'I64', uint8: 'U8',
};

function plan(format: string, file: string, tensors: Record<string, Tensor>, dtype: SafetensorsSaveDType | undefined): Planned[] {
  if (dtype !== undefined && !Object.prototype.hasOwnProperty.call(SAVE_DTYPE, dtype))
    throw new CheckpointError(format, file, `dtype ${q(String(dtype))} is not one of float32, bfloat16, float16`);
  const out: Planned[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new CheckpointError(format, file, `"__metadata__" cannot be a tensor name`);
    if (!(t instanceof Tensor)) throw new CheckpointError(format, file, `value for ${q(name)} is not a Tensor`);
    if (t.disposed) throw new CheckpointError(format, file, `tensor ${q(name)} ${fmtShape(t.shape)} was disposed`);
    const isFloat = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'bfloat16' || t.dtype === 'float16';
    const st = dtype && isFloat ? SAVE_DTYPE[dtype] : NATIVE_DTYPE[t.dtype];
    out.push({ name, tensor: t, dtype: st, nbytes: shapeBytes(t.shape, st) });
  }
  return out;
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** The reference layout: by dtype order descending, then by name (byte order). */
function layout(planned: Planned[]): Planned[] {
  return [...planned].sort((a, b) => DTYPES[b.dtype].order - DTYPES[a.dtype].order || utf8Compare(a.name, b.name));
}

function headerBytes(format: string, file: string, metadata: Record<string, string> | undefined, ordered: Planned[]): Uint8Array {
  const parts: string[] = [];
  if (metadata && Object.keys(metadata).length > 0) {
    const kv: string[] = [];
    for (const k of Object.keys(metadata).sort(utf8Compare)) {
      const v = metadata[k];
      if (typeof v !== 'string') throw new CheckpointError(format, file, `metadata value for ${q(k)} is ${typeof v}, expected a string`);
      kv.push(`${JSON.stringify(k)}:${JSON.stringify(v)}`);
    }
    parts.push(`"__metadata__":{${kv.join(',')}}`);
  }
  let offset = 0;
  for (const p of ordered) {
    parts.push(`${JSON.stringify(p.name)}:{"dtype":"${p.dtype}","shape":[${p.tensor.shape.join(',')}],"data_offsets":[${offset},${offset + p.nbytes}]}`);
    offset += p.nbytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length);
  return out;
}

const WRITE_CHUNK = 1 << 20; // elements per conversion chunk

/** Writes one tensor's data in its planned dtype. */
function writeData(f: AtomicFile, p: Planned): void {
  const src = p.tensor.data; // contiguous (a copy when the tensor is a strided view)
  const from = p.tensor.dtype;
  if (NATIVE_DTYPE[from] === p.dtype) {
    f.write(bytesOf(src));
    return;
  }
  for (let i = 0; i < src.length; i += WRITE_CHUNK) {
    const n = Math.min(WRITE_CHUNK, src.length - i);
    if (p.dtype === 'F32') {
      const out = new Float32Array(n);
      if (src instanceof Uint16Array) {
        const part = src.subarray(i, i + n);
        if (from === 'bfloat16') bfloat16ToFloat(part, out, 0);
        else float16ToFloat(part, out, 0);
      } else out.set((src as Float64Array).subarray(i, i + n));
      f.write(bytesOf(out));
    } else {
      const kind = p.dtype === 'BF16' ? 'bfloat16' : 'float16';
      const out = new Uint16Array(n);
      if (src instanceof Uint16Array) halfToHalfBits(src.subarray(i, i + n), from === 'bfloat16' ? 'bfloat16' : 'float16', out);
      else floatToHalfBits((src as FloatArray).subarray(i, i + n), out, kind);
      f.write(bytesOf(out));
    }
  }
}

function writeFile(f: AtomicFile, metadata: Record<string, string> | null | undefined, planned: Planned[]): void {
  const ordered = layout(planned);
  const meta = metadata === null ? undefined : { format: 'pt', ...metadata };
  f.write(headerBytes(FORMAT, f.path, meta, ordered));
  for (const p of ordered) writeData(f, p);
}

export interface SavedSafetensors {
  path: string;
  bytes: number;
}

/**
 * Writes tensors to a .safetensors file atomically (temporary file in the same directory, fsync, rename):
 * on any error the destination is untouched and no temporary file is left behind. Float tensors keep their
 * dtype unless `dtype` is given (float64 is written as F64); round trips are bit-exact.
 */
export function saveSafetensors(file: string, tensors: Record<string, Tensor>, options: SaveSafetensorsOptions = {}): SavedSafetensors {
  let f: AtomicFile | null = null;
  try {
    const planned = plan(FORMAT, file, tensors, options.dtype);
    f = new AtomicFile(FORMAT, file);
    writeFile(f, options.metadata, planned);
    const bytes = f.position;
    f.publish();
    return { path: file, bytes };
  } catch (e) {
    f?.abort();
    throw wrapWriteError(FORMAT, file, e);
  }
}

export interface SaveShardedOptions extends SaveSafetensorsOptions {
  /** Largest shard size in bytes (a tensor larger than this gets a shard of its own). */
  maxShardBytes: number;
  /** File name prefix: '<prefix>-00001-of-00003.safetensors', '<prefix>.safetensors.index.json'. Default 'model'. */
  prefix?: string;
}

export interface SavedShards {
  /** The data files written, in shard order. */
  files: string[];
  /** The index file, or null when everything fit one file (then named '<prefix>.safetensors', as HF does). */
  index: string | null;
  totalBytes: number;
}

/**
 * Writes a checkpoint split into shards of at most maxShardBytes, plus '<prefix>.safetensors.index.json'
 * ({"metadata": {"total_size"}, "weight_map"}), into `dir` (created if missing), the way Hugging Face
 * splits: tensors in the record's order, a new shard whenever the next tensor would overflow the current one.
 * Every file is written to a temporary name first; they are renamed into place only once all are complete
 * (data files first, the index last), then stale files of the same prefix from an earlier save are removed.
 */
export function saveSafetensorsSharded(dir: string, tensors: Record<string, Tensor>, options: SaveShardedOptions): SavedShards {
  const prefix = options.prefix ?? 'model';
  const indexPath = path.join(dir, `${prefix}.safetensors.index.json`);
  const max = options.maxShardBytes;
  if (!(Number.isSafeInteger(max) && max > 0)) throw new CheckpointError(FORMAT, indexPath, `maxShardBytes must be a positive integer, got ${max}`);
  if (!/^[\w.-]+$/.test(prefix)) throw new CheckpointError(FORMAT, indexPath, `prefix ${q(prefix)} must be a plain file name`);
  const planned = plan(FORMAT, indexPath, tensors, options.dtype);

  const shards: Planned[][] = [];
  let current: Planned[] = [];
  let currentBytes = 0;
  let total = 0;
  for (const p of planned) {
    total += p.nbytes;
    if (p.nbytes > max) {
      shards.push([p]);
      continue;
    }
    if (currentBytes + p.nbytes > max && current.length > 0) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(p);
    currentBytes += p.nbytes;
  }
  if (current.length > 0 || shards.length === 0) shards.push(current);

  const pad5 = (i: number): string => String(i).padStart(5, '0');
  const names = shards.length === 1 ? [`${prefix}.safetensors`] : shards.map((_, i) => `${prefix}-${pad5(i + 1)}-of-${pad5(shards.length)}.safetensors`);
  fs.mkdirSync(dir, { recursive: true });

  const pending: AtomicFile[] = [];
  try {
    shards.forEach((shard, i) => {
      const f = new AtomicFile(FORMAT, path.join(dir, names[i]));
      pending.push(f);
      writeFile(f, options.metadata, shard);
      f.finish();
    });
    let index: AtomicFile | null = null;
    if (shards.length > 1) {
      const weightMap: Record<string, string> = {};
      const mapped: [string, string][] = [];
      shards.forEach((shard, i) => shard.forEach((p) => mapped.push([p.name, names[i]])));
      mapped.sort((a, b) => utf8Compare(a[0], b[0]));
      for (const [k, v] of mapped) weightMap[k] = v;
      const text = `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`;
      index = new AtomicFile(INDEX_FORMAT, indexPath);
      pending.push(index);
      index.write(Buffer.from(text, 'utf8'));
      index.finish();
    }
    for (const f of pending) f.publish();
  } catch (e) {
    for (const f of pending) f.abort();
    throw wrapWriteError(FORMAT, indexPath, e);
  }

  // Remove files of an earlier save with the same prefix that this one did not write.
  const ours = new Set([...names, shards.length > 1 ? path.basename(indexPath) : '']);
  const esc = prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const stale = new RegExp(`^${esc}(-\\d{5}-of-\\d{5})?\\.safetensors(\\.index\\.json)?$`);
  for (const name of fs.readdirSync(dir)) {
    if (stale.test(name) && !ours.has(name)) {
      try {
        fs.unlinkSync(path.join(dir, name));
      } catch {
        /* best effort */
      }
    }
  }
  return { files: names.map((n) => path.join(dir, n)), index: shards.length > 1 ? indexPath : null, totalBytes: total };
}
