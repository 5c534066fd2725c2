// TensorBoard event files: CRC32C against published vectors, protobuf encoding against the protobuf docs'
// examples, and written files read back by an independent reader written here (TFRecord framing with both
// CRCs checked, a generic protobuf decoder). When Python's `tensorboard` package is importable, its own
// event reader checks the file too; otherwise that test is skipped (nothing is installed).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventFileWriter, ProtoWriter, crc32c, maskedCrc32c, tfRecord } from '../../src/train/tensorboard.ts';

const ascii = (s: string) => new TextEncoder().encode(s);

describe('crc32c', () => {
  it('matches the RFC 3720 B.4 iSCSI vectors', () => {
    assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
    assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
    assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
    const readPdu = Uint8Array.from([
      0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
      0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]);
    assert.equal(crc32c(readPdu), 0xd9963a56);
  });
  it('matches the common check values, and continues across chunks', () => {
    assert.equal(crc32c(ascii('123456789')), 0xe3069283);
    assert.equal(crc32c(ascii('The quick brown fox jumps over the lazy dog')), 0x22620404);
    assert.equal(crc32c(new Uint8Array(0)), 0);
    assert.equal(crc32c(ascii('world'), crc32c(ascii('hello '))), crc32c(ascii('hello world')));
  });
  it('masked CRC: TFRecord mask ((c >>> 15) | (c << 17)) + 0xa282ead8', () => {
    // Value from the tfrecord_slow project's tests (an independent TFRecord implementation).
    assert.equal(maskedCrc32c(ascii('1234567890asdfghjkl')), 4134599430);
    const c = crc32c(ascii('foo'));
    const m = maskedCrc32c(ascii('foo'));
    const unmasked = (((m - 0xa282ead8) >>> 0) >>> 17 | (((m - 0xa282ead8) >>> 0) << 15)) >>> 0;
    assert.equal(unmasked, c);
  });
});

describe('protobuf encoding', () => {
  it('matches the examples of the protobuf encoding guide', () => {
    // "message Test1 { int32 a = 1; }" with a = 150 → 08 96 01.
    assert.deepEqual([...new ProtoWriter().varint(1, 150).finish()], [0x08, 0x96, 0x01]);
    // "message Test2 { string b = 2; }" with b = "testing" → 12 07 74 65 73 74 69 6e 67.
    assert.deepEqual([...new ProtoWriter().string(2, 'testing').finish()], [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6e, 0x67]);
    // "message Test3 { Test1 c = 3; }" with c.a = 150 → 1a 03 08 96 01.
    assert.deepEqual([...new ProtoWriter().message(3, new ProtoWriter().varint(1, 150)).finish()], [0x1a, 0x03, 0x08, 0x96, 0x01]);
    // Negative int64 → ten-byte two's complement varint (-1 = ff ff ff ff ff ff ff ff ff 01).
    assert.deepEqual([...new ProtoWriter().varint(1, -1).finish()], [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    // fixed32 float 1.0 = 00 00 80 3f; fixed64 double 1.0 = 00.. f0 3f.
    assert.deepEqual([...new ProtoWriter().float(2, 1).finish()], [0x15, 0x00, 0x00, 0x80, 0x3f]);
    assert.deepEqual([...new ProtoWriter().double(1, 1).finish()], [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// An independent reader

type Field = { field: number; wire: number; value: bigint | Uint8Array };

function readVarint(b: Uint8Array, pos: { i: number }): bigint {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    assert.ok(pos.i < b.length, 'truncated varint');
    const byte = b[pos.i++];
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7n;
  }
}

function decode(b: Uint8Array): Field[] {
  const out: Field[] = [];
  const pos = { i: 0 };
  while (pos.i < b.length) {
    const key = Number(readVarint(b, pos));
    const field = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: readVarint(b, pos) });
    else if (wire === 1) out.push({ field, wire, value: b.subarray(pos.i, (pos.i += 8)) });
    else if (wire === 5) out.push({ field, wire, value: b.subarray(pos.i, (pos.i += 4)) });
    else if (wire === 2) {
      const len = Number(readVarint(b, pos));
      out.push({ field, wire, value: b.subarray(pos.i, (pos.i += len)) });
    } else assert.fail(`unexpected wire type ${wire}`);
  }
  assert.equal(pos.i, b.length, 'message overran its length');
  return out;
}

const one = (fs: Field[], n: number) => fs.filter((f) => f.field === n);
const bytesOf = (f: Field | undefined) => f?.value as Uint8Array;
const str = (f: Field | undefined) => new TextDecoder().decode(bytesOf(f));
const f64 = (f: Field) => new DataView(bytesOf(f).buffer, bytesOf(f).byteOffset, 8).getFloat64(0, true);
const f32 = (f: Field) => new DataView(bytesOf(f).buffer, bytesOf(f).byteOffset, 4).getFloat32(0, true);

interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars: { tag: string; value: number }[];
  texts: { tag: string; text: string; plugin: string; dtype: number; shape: number[] }[];
}

/** Splits a TFRecord file, checking both masked CRCs of every record, and decodes each Event. */
function readEvents(path: string): ReadEvent[] {
  const buf = new Uint8Array(readFileSync(path));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const events: ReadEvent[] = [];
  let o = 0;
  while (o < buf.length) {
    const len = Number(view.getBigUint64(o, true));
    assert.equal(view.getUint32(o + 8, true), maskedCrc32c(buf.subarray(o, o + 8)), `length CRC of record at ${o}`);
    const data = buf.subarray(o + 12, o + 12 + len);
    assert.equal(view.getUint32(o + 12 + len, true), maskedCrc32c(data), `data CRC of record at ${o}`);
    o += 16 + len;
    const ev = decode(data);
    const e: ReadEvent = { wallTime: f64(one(ev, 1)[0]), step: Number(BigInt.asIntN(64, one(ev, 2)[0].value as bigint)), scalars: [], texts: [] };
    if (one(ev, 3).length) e.fileVersion = str(one(ev, 3)[0]);
    for (const s of one(ev, 5)) {
      for (const v of one(decode(bytesOf(s)), 1)) {
        const val = decode(bytesOf(v));
        const tag = str(one(val, 1)[0]);
        if (one(val, 2).length) e.scalars.push({ tag, value: f32(one(val, 2)[0]) });
        if (one(val, 8).length) {
          const tensor = decode(bytesOf(one(val, 8)[0]));
          const plugin = decode(bytesOf(one(decode(bytesOf(one(val, 9)[0])), 1)[0]));
          const shape = one(decode(bytesOf(one(tensor, 2)[0])), 2).map((d) => Number(one(decode(bytesOf(d)), 1)[0].value));
          e.texts.push({ tag, text: str(one(tensor, 8)[0]), plugin: str(one(plugin, 1)[0]), dtype: Number(one(tensor, 1)[0].value), shape });
        }
      }
    }
    events.push(e);
  }
  assert.equal(o, buf.length, 'trailing bytes after the last record');
  return events;
}

describe('EventFileWriter', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-tb-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('tfRecord frames data with the length, its CRC, the data and its CRC', () => {
    const r = tfRecord(ascii('abc'));
    assert.equal(r.length, 8 + 4 + 3 + 4);
    assert.deepEqual([...r.subarray(0, 8)], [3, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(new DataView(r.buffer).getUint32(15, true), maskedCrc32c(ascii('abc')));
  });

  it('writes file_version first, then scalars and text that read back exactly', () => {
    const sub = join(dir, 'run1');
    const w = new EventFileWriter(sub, { filenameSuffix: '.v2' });
    assert.match(w.path, new RegExp(`events\\.out\\.tfevents\\.\\d{10}\\.${hostname().replace(/[.]/g, '\\.')}\\.${process.pid}\\.\\d+\\.v2$`));
    w.addScalar('train/loss', 2.5, 10, 1700000000.25);
    w.addScalar('train/learning_rate', 2e-5, 10, 1700000000.5);
    w.addScalar('train/loss', NaN, 20);
    w.addScalar('train/step_big', 1, 2 ** 40);
    w.addText('config', '**lr** = 2e-5 ✓', 0);
    w.close();
    w.close(); // idempotent
    assert.throws(() => w.addScalar('x', 1, 1), /write after close/);

    const ev = readEvents(w.path);
    assert.equal(ev[0].fileVersion, 'brain.Event:2');
    assert.ok(Math.abs(ev[0].wallTime - Date.now() / 1000) < 60);
    assert.deepEqual(ev[1], { wallTime: 1700000000.25, step: 10, scalars: [{ tag: 'train/loss', value: 2.5 }], texts: [] });
    assert.equal(ev[2].scalars[0].value, Math.fround(2e-5)); // stored as float32
    assert.ok(Number.isNaN(ev[3].scalars[0].value));
    assert.equal(ev[4].step, 2 ** 40);
    assert.deepEqual(ev[5].texts, [{ tag: 'config', text: '**lr** = 2e-5 ✓', plugin: 'text', dtype: 7, shape: [1] }]);
    assert.equal(ev.length, 6);
  });

  it('flush() makes records visible; two writers in one folder get distinct files', () => {
    const sub = join(dir, 'run2');
    const a = new EventFileWriter(sub);
    const b = new EventFileWriter(sub);
    assert.notEqual(a.path, b.path);
    a.addScalar('x', 1, 1);
    assert.equal(readEvents(a.path).length, 1, 'buffered until flush');
    a.flush();
    assert.equal(readEvents(a.path).length, 2);
    a.close();
    b.close();
    assert.equal(readdirSync(sub).length, 2);
  });

  it('rejects bad steps, empty tags and path separators in the suffix', () => {
    const w = new EventFileWriter(join(dir, 'run3'));
    assert.throws(() => w.addScalar('x', 1, 1.5), /step must be an integer/);
    assert.throws(() => w.addScalar('', 1, 1), /tag must not be empty/);
    w.close();
    assert.throws(() => new EventFileWriter(join(dir, 'run4'), { filenameSuffix: '/x' }), /path separator/);
  });

  it("Python tensorboard's reader agrees (skipped when tensorboard is not installed)", (t) => {
    const probe = spawnSync('python3', ['-c', 'import tensorboard.backend.event_processing.event_file_loader'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip('python3 tensorboard is not installed');
    const w = new EventFileWriter(join(dir, 'run5'));
    w.addScalar('train/loss', 1.25, 3);
    w.addText('notes', 'hello', 4);
    w.close();
    const py = [
      'import sys, json',
      'from tensorboard.backend.event_processing.event_file_loader import LegacyEventFileLoader',
      'out = []',
      'for e in LegacyEventFileLoader(sys.argv[1]).Load():',
      '    if e.HasField("file_version"): out.append({"v": e.file_version}); continue',
      '    for v in e.summary.value:',
      '        out.append({"step": e.step, "tag": v.tag, "simple": v.simple_value if v.HasField("simple_value") else None,',
      '                    "text": v.tensor.string_val[0].decode() if v.HasField("tensor") else None,',
      '                    "plugin": v.metadata.plugin_data.plugin_name})',
      'print(json.dumps(out))',
    ].join('\n');
    const r = spawnSync('python3', ['-c', py, w.path], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [
      { v: 'brain.Event:2' },
      { step: 3, tag: 'train/loss', simple: 1.25, text: null, plugin: '' },
      { step: 4, tag: 'notes', simple: null, text: 'hello', plugin: 'text' },
    ]);
  });
});
