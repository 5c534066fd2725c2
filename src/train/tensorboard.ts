// TensorBoard event files written directly, without TensorFlow or protobuf libraries.
//
// An event file is a TFRecord stream: each record is
//     uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// where data is a serialized `tensorflow.Event` protobuf. The first record carries file_version
// "brain.Event:2"; every later one carries a Summary. We hand-encode the few protobuf fields needed:
//
//   Event          wall_time = 1 (double), step = 2 (int64), file_version = 3 (string), summary = 5 (Summary)
//   Summary        value = 1 (repeated Value)
//   Summary.Value  tag = 1 (string), simple_value = 2 (float), metadata = 9 (SummaryMetadata), tensor = 8 (TensorProto)
//   SummaryMetadata  plugin_data = 1 (PluginData { plugin_name = 1, content = 2 })
//   TensorProto    dtype = 1 (DT_STRING = 7), tensor_shape = 2 (TensorShapeProto { dim = 2 { size = 1 } }), string_val = 8
//
// Scalars use simple_value (TensorBoard shows them in the Scalars tab). Text uses the "text" plugin: a
// DT_STRING tensor of shape [1] with plugin_name "text" and an empty TextPluginData (version 0), the layout
// torch.utils.tensorboard writes.
//
// Event files are append-only logs, so they are not written atomically (a temporary file renamed on every
// flush would cost O(n²)): records are buffered and appended on flush(); after a crash the file ends with at
// most one partial record, which TensorBoard's reader ignores.
import fs from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { AlignkitError } from '../tensor/errors.ts';

// ---------------------------------------------------------------------------------------------------------
// CRC32C (Castagnoli), table-driven, reflected polynomial 0x82F63B78

const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC32C of `data`; pass a previous result as `crc` to continue over more bytes. */
export function crc32c(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = CRC32C_TABLE[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** The TFRecord checksum: CRC32C rotated right by 15 bits plus a constant (so CRCs of CRCs are not trivial). */
export function maskedCrc32c(data: Uint8Array): number {
  const c = crc32c(data);
  return (((c >>> 15) | (c << 17)) + 0xa282ead8) >>> 0;
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Minimal protobuf encoding

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

/** Appends protobuf fields to a growing byte list. */
export class ProtoWriter {
  private readonly parts: number[] = [];

  private key(field: number, wire: number): void {
    this.rawVarint(BigInt(field * 8 + wire));
  }

  private rawVarint(v: bigint): void {
    let x = BigInt.asUintN(64, v); // negative int64 → two's complement, 10 bytes
    do {
      let byte = Number(x & 0x7fn);
      x >>= 7n;
      if (x !== 0n) byte |= 0x80;
      this.parts.push(byte);
    } while (x !== 0n);
  }

  /** int64 / int32 / enum field. */
  varint(field: number, v: number | bigint): this {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new AlignkitError(`protobuf: field ${field}: ${v} is not a safe integer`);
    this.key(field, WIRE_VARINT);
    this.rawVarint(BigInt(v));
    return this;
  }

  double(field: number, v: number): this {
    this.key(field, WIRE_FIXED64);
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.parts.push(...b);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, WIRE_FIXED32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.parts.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.key(field, WIRE_BYTES);
    this.rawVarint(BigInt(data.length));
    for (const b of data) this.parts.push(b);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, m: ProtoWriter): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const DT_STRING = 7;

function eventBytes(wallTime: number, step: number, fill: (e: ProtoWriter) => void): Uint8Array {
  const e = new ProtoWriter().double(1, wallTime).varint(2, step);
  fill(e);
  return e.finish();
}

function scalarSummary(tag: string, value: number): ProtoWriter {
  return new ProtoWriter().message(1, new ProtoWriter().string(1, tag).float(2, value));
}

function textSummary(tag: string, text: string): ProtoWriter {
  const pluginData = new ProtoWriter().string(1, 'text').bytes(2, new Uint8Array(0)); // TextPluginData{version: 0} serializes to nothing
  const metadata = new ProtoWriter().message(1, pluginData);
  const shape = new ProtoWriter().message(2, new ProtoWriter().varint(1, 1));
  const tensor = new ProtoWriter().varint(1, DT_STRING).message(2, shape).string(8, text);
  return new ProtoWriter().message(1, new ProtoWriter().string(1, tag).message(9, metadata).message(8, tensor));
}

// ---------------------------------------------------------------------------------------------------------
// Writer

let fileCounter = 0;
/** Buffered bytes above which a record write flushes by itself. */
const AUTO_FLUSH_BYTES = 1 << 20;

function nowSeconds(): number {
  return Date.now() / 1000;
}

/** Writes scalars and text to a new TensorBoard event file in `dir`. */
export class EventFileWriter {
  /** Path of the event file. */
  readonly path: string;
  private fd: number;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;

  constructor(
    readonly dir: string,
    opts: { filenameSuffix?: string } = {},
  ) {
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new AlignkitError(`tensorboard ${dir}: cannot create the log folder: ${e instanceof Error ? e.message : String(e)}`);
    }
    const suffix = opts.filenameSuffix ?? '';
    if (/[/\\]/.test(suffix)) throw new AlignkitError(`tensorboard: filenameSuffix must not contain a path separator, got '${suffix}'`);
    const secs = String(Math.floor(nowSeconds())).padStart(10, '0');
    // Same name pattern as TensorFlow and torch: events.out.tfevents.<secs>.<host>.<pid>.<n><suffix>.
    for (;;) {
      const p = nodePath.join(dir, `events.out.tfevents.${secs}.${os.hostname()}.${process.pid}.${fileCounter++}${suffix}`);
      try {
        this.fd = fs.openSync(p, 'wx', 0o644);
        this.path = p;
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw new AlignkitError(`tensorboard ${p}: cannot create the event file: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    this.push(eventBytes(nowSeconds(), 0, (e) => e.string(3, 'brain.Event:2')));
    this.flush();
  }

  private push(event: Uint8Array): void {
    if (this.fd < 0) throw new AlignkitError(`tensorboard ${this.path}: write after close()`);
    const rec = tfRecord(event);
    this.pending.push(rec);
    this.pendingBytes += rec.length;
    if (this.pendingBytes >= AUTO_FLUSH_BYTES) this.flush();
  }

  private checkStep(what: string, tag: string, step: number): void {
    if (!Number.isSafeInteger(step)) throw new AlignkitError(`tensorboard ${what} '${tag}': step must be an integer, got ${step}`);
    if (tag === '') throw new AlignkitError(`tensorboard ${what}: the tag must not be empty`);
  }

  /** Records `value` (stored as float32, like every TensorBoard scalar) for `tag` at `step`. */
  addScalar(tag: string, value: number, step: number, wallTime: number = nowSeconds()): void {
    this.checkStep('scalar', tag, step);
    this.push(eventBytes(wallTime, step, (e) => e.message(5, scalarSummary(tag, value))));
  }

  /** Records a text (Markdown in TensorBoard's Text tab) for `tag` at `step`. */
  addText(tag: string, text: string, step: number, wallTime: number = nowSeconds()): void {
    this.checkStep('text', tag, step);
    this.push(eventBytes(wallTime, step, (e) => e.message(5, textSummary(tag, text))));
  }

  /** Appends the buffered records to the file. */
  flush(): void {
    if (this.fd < 0 || this.pendingBytes === 0) return;
    const all = new Uint8Array(this.pendingBytes);
    let o = 0;
    for (const p of this.pending) {
      all.set(p, o);
      o += p.length;
    }
    this.pending = [];
    this.pendingBytes = 0;
    let done = 0;
    try {
      while (done < all.length) done += fs.writeSync(this.fd, all, done, all.length - done);
    } catch (e) {
      throw new AlignkitError(`tensorboard ${this.path}: write failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Flushes and closes the file; later writes are errors, a second close() does nothing. */
  close(): void {
    if (this.fd < 0) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}
