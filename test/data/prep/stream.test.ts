// Streaming readers and writers: literal files in, literal rows (or one-line errors naming file/line/field) out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { CsvParser, openWriter, readRows, withWriter, type ReadOptions, type Row } from '../../../src/data/prep/stream.ts';
import { PrepError } from '../../../src/data/prep/errors.ts';
import { firstInvalidUtf8 } from '../../../src/data/prep/utf8.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-stream-'));
function file(name: string, content: string | Uint8Array): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}
async function collect(p: string, o: ReadOptions = {}): Promise<{ rows: Row[]; lines: number[]; skipped: number; samples: string[] }> {
  const r = readRows(p, o);
  const rows: Row[] = [];
  const lines: number[] = [];
  for await (const x of r) {
    rows.push(x.row);
    lines.push(x.line);
  }
  return { rows, lines, skipped: r.stats.skipped, samples: r.stats.samples };
}
async function failure(p: string, o: ReadOptions = {}): Promise<PrepError> {
  try {
    await collect(p, o);
  } catch (e) {
    assert.ok(e instanceof PrepError, `expected PrepError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected an error');
}

describe('UTF-8 validation', () => {
  it('finds the first invalid byte (Table 3-7 rules)', () => {
    assert.equal(firstInvalidUtf8(Buffer.from('héllo 👍', 'utf8')), -1);
    assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xff, 0x62])), 1);
    assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xc0, 0xaf])), 1); // overlong '/'
    assert.equal(firstInvalidUtf8(new Uint8Array([0xed, 0xa0, 0x80])), 0); // encoded surrogate U+D800
    assert.equal(firstInvalidUtf8(new Uint8Array([0xf4, 0x90, 0x80, 0x80])), 0); // above U+10FFFF
    assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xe2, 0x82])), 1); // truncated '€'
    assert.equal(firstInvalidUtf8(new Uint8Array([0x61, 0xe2, 0x82]), 0, 3, true), -1);
  });
});

describe('JSONL reader', () => {
  it('yields objects with true physical line numbers (blank lines, CRLF, BOM)', async () => {
    const p = file('ok.jsonl', '\uFEFF{"a":1}\r\n\n  \n{"a":"é"}\n{"a":[1,2]}');
    const r = await collect(p);
    assert.deepEqual(r.rows, [{ a: 1 }, { a: 'é' }, { a: [1, 2] }]);
    assert.deepEqual(r.lines, [1, 4, 5]);
  });

  it('gives the same rows when chunks split lines and multi-byte characters', async () => {
    const text = '{"t":"שָׁלוֹם 👨‍👩‍👧"}\n{"t":"x"}\n{"t":"e\u0301"}\n';
    const p = file('split.jsonl', text);
    const whole = await collect(p);
    for (const chunkBytes of [1, 3, 7, 16]) assert.deepEqual(await collect(p, { chunkBytes }), whole);
    assert.deepEqual(whole.rows.map((r) => r.t), ['שָׁלוֹם 👨‍👩‍👧', 'x', 'e\u0301']);
  });

  it('reports invalid UTF-8 with file and line', async () => {
    const p = file('bad.jsonl', Buffer.concat([Buffer.from('{"a":1}\n{"a":2}\n{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n{"a":4}\n')]));
    const e = await failure(p);
    assert.equal(e.line, 3);
    assert.equal(e.message, `${p} line 3: invalid UTF-8: byte 0xc3 at byte 7 of the line (the file must be UTF-8)`);
  });

  it('reports a truncated last line; a complete last line without newline is fine', async () => {
    const e = await failure(file('trunc.jsonl', '{"a":1}\n{"a":2}\n{"a":"unfinished'));
    assert.equal(e.line, 3);
    assert.match(e.message, /line 3: truncated last line: no newline at the end of the file and the JSON is incomplete/);
    assert.deepEqual((await collect(file('nonl.jsonl', '{"a":1}\n{"a":2}'))).rows, [{ a: 1 }, { a: 2 }]);
  });

  it('reports invalid JSON and non-object lines', async () => {
    assert.match((await failure(file('j1.jsonl', '{"a":1}\n{a:1}\n'))).message, /line 2: invalid JSON: /);
    assert.match((await failure(file('j2.jsonl', '[1,2]\n'))).message, /line 1: expected a JSON object, got array/);
  });

  it('lone surrogates: an error naming the field, or U+FFFD with loneSurrogates: replace', async () => {
    const p = file('lone.jsonl', '{"ok":"\\ud83d\\ude00"}\n{"messages":[{"role":"user","content":"a\\ud800b"}]}\n');
    const e = await failure(p);
    assert.equal(e.line, 2);
    assert.equal(e.field, 'messages[0].content');
    assert.match(e.message, /lone surrogate \\ud800/);
    const r = await collect(p, { loneSurrogates: 'replace' });
    assert.deepEqual(r.rows, [{ ok: '😀' }, { messages: [{ role: 'user', content: 'a\uFFFDb' }] }]);
  });

  it('skipInvalid counts bad lines and keeps going', async () => {
    const p = file('skip.jsonl', Buffer.concat([Buffer.from('{"a":1}\nnot json\n{"a":"'), Buffer.from([0xff]), Buffer.from('"}\n{"a":4}\n{"a":5')]));
    const r = await collect(p, { skipInvalid: true });
    assert.deepEqual(r.rows, [{ a: 1 }, { a: 4 }]);
    assert.deepEqual(r.lines, [1, 4]);
    assert.equal(r.skipped, 3);
    assert.match(r.samples[0], /line 2: invalid JSON/);
    assert.match(r.samples[1], /line 3: invalid UTF-8/);
    assert.match(r.samples[2], /line 5: truncated last line/);
  });

  it('checks expected fields per row', async () => {
    const p = file('exp.jsonl', '{"text":"a"}\n{"text":3}\n{"other":1}\n');
    const e = await failure(p, { expect: [{ field: 'text', type: 'string' }] });
    assert.equal(e.message, `${p} line 2, field 'text': expected a string, got number`);
    const r = await collect(p, { expect: [{ field: 'text', type: 'string' }], skipInvalid: true });
    assert.equal(r.rows.length, 1);
    assert.match(r.samples[1], /line 3, field 'text': missing field \(the row has: other\)/);
  });

  it('reads gzip-compressed JSONL and whole-file JSON arrays', async () => {
    const gz = file('z.jsonl.gz', zlib.gzipSync('{"a":1}\n{"a":2}\n'));
    assert.deepEqual((await collect(gz)).rows, [{ a: 1 }, { a: 2 }]);
    const arr = file('arr.json', '[{"a":1},{"a":"\\ud800"}]');
    assert.deepEqual((await collect(arr, { loneSurrogates: 'replace' })).rows, [{ a: 1 }, { a: '\uFFFD' }]);
    const e = await failure(arr);
    assert.equal(e.row, 2);
  });

  it('a missing file is a one-line error', async () => {
    const e = await failure(path.join(tmp, 'nope.jsonl'));
    assert.match(e.message, /nope\.jsonl: file not found$/);
  });
});

describe('CSV reader (RFC 4180)', () => {
  const csv = 'id,text,note\r\n1,"Hello, ""world""",plain\r\n2,"two\r\nlines",x\r\n\r\n3,,"last"';

  it('parses quoted fields, embedded newlines and doubled quotes; lines are where records start', async () => {
    const p = file('a.csv', csv);
    const r = await collect(p);
    assert.deepEqual(r.rows, [
      { id: '1', text: 'Hello, "world"', note: 'plain' },
      { id: '2', text: 'two\r\nlines', note: 'x' },
      { id: '3', text: '', note: 'last' },
    ]);
    assert.deepEqual(r.lines, [2, 3, 6]);
    for (const chunkBytes of [1, 2, 5]) assert.deepEqual(await collect(p, { chunkBytes }), r);
  });

  it('reports ragged rows with file, row and line; skipInvalid counts them', async () => {
    const p = file('ragged.csv', 'a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n');
    const e = await failure(p);
    assert.equal(e.message, `${p} row 3 (line 3): ragged row: 2 fields, the header has 3; missing 'c'`);
    const r = await collect(p, { skipInvalid: true });
    assert.deepEqual(r.rows.map((x) => x.a), ['1', '10']);
    assert.equal(r.skipped, 2);
    assert.match(r.samples[1], /row 4 \(line 4\): ragged row: 4 fields, the header has 3$/);
  });

  it('reports a stray quote, an unterminated quote and invalid UTF-8 with their lines', async () => {
    assert.match((await failure(file('q1.csv', 'a,b\n"x"y,2\n'))).message, /row 2 \(line 2\): unexpected character "y" after a closing quote/);
    assert.match((await failure(file('q2.csv', 'a,b\n1,2\n3,"open\n4,5\n'))).message, /row 3 \(line 3\): unterminated quoted field/);
    const bad = file('u.csv', Buffer.concat([Buffer.from('a,b\n1,2\n3,'), Buffer.from([0xfe]), Buffer.from('\n5,6\n')]));
    assert.match((await failure(bad)).message, /row 3 \(line 3\): invalid UTF-8 \(byte 0xfe\) on line 3$/);
    assert.deepEqual((await collect(bad, { skipInvalid: true })).rows, [{ a: '1', b: '2' }, { a: '5', b: '6' }]);
  });

  it('header problems and TSV', async () => {
    assert.match((await failure(file('h.csv', 'a,a\n1,2\n'))).message, /row 1 \(line 1\), field 'a': header: duplicate column name/);
    assert.deepEqual((await collect(file('t.tsv', 'x\ty\n1\t"a\tb"\n'))).rows, [{ x: '1', y: 'a\tb' }]);
  });

  it('the parser decides "" vs " across piece boundaries', () => {
    const records: string[][] = [];
    const p = new CsvParser(',');
    for (const piece of ['"a"', '"b",c\n']) p.push(piece, (f) => records.push(f));
    p.end((f) => records.push(f));
    assert.deepEqual(records, [['a"b', 'c']]);
  });
});

describe('Parquet', () => {
  it('round-trips rows through several row groups (strings, numbers, booleans, nested values)', async () => {
    const p = path.join(tmp, 'rt.parquet');
    const rows: Row[] = [];
    for (let i = 0; i < 7; i++) rows.push({ text: `row ${i} é👍`, n: i * 1.5, ok: i % 2 === 0, messages: [{ role: 'user', content: `q${i}` }], maybe: i === 3 ? null : 'x' });
    await withWriter(p, { rowGroupSize: 3 }, async (w) => {
      for (const r of rows) w.write(r);
    });
    const back = await collect(p);
    assert.deepEqual(back.rows, rows);
    assert.deepEqual(back.lines, [1, 2, 3, 4, 5, 6, 7]);
  });

  it('reports an unexpected schema with file and field', async () => {
    const p = path.join(tmp, 'schema.parquet');
    await withWriter(p, {}, async (w) => {
      w.write({ prompt: 'a', score: 1 });
    });
    const missing = await failure(p, { expect: [{ field: 'text', type: 'string' }] });
    assert.equal(missing.message, `${p}, field 'text': unexpected schema: no column 'text' (columns: prompt, score)`);
    const wrong = await failure(p, { expect: [{ field: 'score', type: 'text' }] });
    assert.match(wrong.message, /field 'score': unexpected schema: column 'score' holds number values \(DOUBLE\), expected a string or a list of messages/);
    assert.match((await failure(file('notpq.parquet', 'hello world, not parquet'))).message, /notpq\.parquet: not a readable Parquet file/);
  });

  it('the writer rejects a row outside the schema of the first row group, leaving no file', async () => {
    const p = path.join(tmp, 'drift.parquet');
    await assert.rejects(
      withWriter(p, { rowGroupSize: 2 }, async (w) => {
        w.write({ a: 'x' });
        w.write({ a: 'y' });
        w.write({ a: 'z', b: 1 });
        w.write({ a: 'w' });
      }),
      (e: Error) => e instanceof PrepError && /row 3, field 'b': field not in the Parquet schema/.test(e.message),
    );
    assert.equal(fs.existsSync(p), false);
  });
});

describe('writers', () => {
  it('JSONL and CSV output read back to the same rows', async () => {
    const rows: Row[] = [{ id: '1', text: 'a, "quoted"\nline' }, { id: '2', text: ' padded ' }];
    for (const ext of ['jsonl', 'csv', 'json']) {
      const p = path.join(tmp, `w.${ext}`);
      await withWriter(p, {}, async (w) => rows.forEach((r) => w.write(r)));
      assert.deepEqual((await collect(p)).rows, rows, ext);
    }
    assert.equal(fs.readFileSync(path.join(tmp, 'w.csv'), 'utf8'), 'id,text\r\n1,"a, ""quoted""\nline"\r\n2," padded "\r\n');
  });

  it('is atomic: an error mid-stream leaves no partial file and keeps an existing destination', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'atomic-'));
    const src = file('mid.jsonl', '{"a":1}\n{"a":2}\n{"a":\n{"a":4}\n');
    const out = path.join(dir, 'out.jsonl');
    const copy = () =>
      withWriter(out, {}, async (w) => {
        for await (const { row } of readRows(src)) w.write(row);
      });
    await assert.rejects(copy(), /line 3: invalid JSON/);
    assert.deepEqual(fs.readdirSync(dir), []);
    fs.writeFileSync(out, 'previous\n');
    await assert.rejects(copy());
    assert.deepEqual(fs.readdirSync(dir), ['out.jsonl']);
    assert.equal(fs.readFileSync(out, 'utf8'), 'previous\n');
  });

  it('an abandoned writer publishes nothing', () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'abandon-'));
    const w = openWriter(path.join(dir, 'x.parquet'));
    w.write({ a: 1 });
    w.abort();
    assert.deepEqual(fs.readdirSync(dir), []);
  });
});
