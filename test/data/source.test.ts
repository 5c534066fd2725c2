// Row sources: JSONL / JSON array / Parquet rows by index, true line numbers, and one-line errors for bad rows.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteFile } from 'hyparquet-writer';
import { DataError } from '../../src/data/errors.ts';
import { openRowSource, type RowSource } from '../../src/data/source.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string | Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

async function all(src: RowSource): Promise<unknown[]> {
  const out: unknown[] = [];
  for (let i = 0; i < src.length; i++) out.push(await src.get(i));
  return out;
}

/** Awaits a rejection with a DataError of exactly this message, line and field. */
async function rejects(p: Promise<unknown>, line: number, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof DataError, String(e));
    assert.equal(e.line, line);
    assert.equal(e.field, null);
    assert.equal(e.message, message);
    return true;
  });
}

describe('JSONL', () => {
  it('rows by index with their true line numbers; blank lines, CRLF and a BOM are handled', async () => {
    const p = file('a.jsonl', '\uFEFF{"a":1}\r\n\n   \n{"a":"é ✓"}\r\n\t\n{"a":[1,{"b":2}]}');
    const src = await openRowSource(p);
    assert.equal(src.length, 3);
    assert.deepEqual(await all(src), [{ a: 1 }, { a: 'é ✓' }, { a: [1, { b: 2 }] }]);
    assert.deepEqual([0, 1, 2].map((i) => src.lineOf(i)), [1, 4, 6]);
    await assert.rejects(src.get(3), RangeError);
    await src.close();
    await assert.rejects(src.get(0), /read after close/);
  });

  it('.ndjson is JSONL; an empty file has no rows', async () => {
    const src = await openRowSource(file('b.ndjson', '{"x":1}\n'));
    assert.deepEqual(await all(src), [{ x: 1 }]);
    await src.close();
    const empty = await openRowSource(file('empty.jsonl', ''));
    assert.equal(empty.length, 0);
    await empty.close();
  });

  it('bad rows fail when read, naming file and line; the other rows stay readable', async () => {
    const p = file('bad.jsonl', ['{"ok":1}', '{"a": 1,}', '[1,2]', '"str"', '{"ok":2}', '{"a":"b'].join('\n'));
    const src = await openRowSource(p);
    assert.equal(src.length, 6);
    assert.deepEqual(await src.get(0), { ok: 1 });
    await rejects(src.get(1), 2, `${p}:2: malformed JSON: ${jsonError('{"a": 1,}')}`);
    await rejects(src.get(2), 3, `${p}:3: each line must be a JSON object, got a list`);
    await rejects(src.get(3), 4, `${p}:4: each line must be a JSON object, got a string`);
    assert.deepEqual(await src.get(4), { ok: 2 });
    await rejects(src.get(5), 6, `${p}:6: truncated row: the last line has no newline and its JSON is incomplete (${jsonError('{"a":"b')})`);
    await src.close();
  });

  it('a complete last line without a newline is fine', async () => {
    const src = await openRowSource(file('nonl.jsonl', '{"a":1}\n{"a":2}'));
    assert.deepEqual(await all(src), [{ a: 1 }, { a: 2 }]);
    await src.close();
  });

  it('invalid UTF-8 is an error at its line', async () => {
    const bytes = Buffer.concat([Buffer.from('{"a":"ok"}\n{"a":"'), Buffer.from([0x61, 0xc3, 0x28]), Buffer.from('"}\n')]);
    const p = file('utf8.jsonl', bytes);
    const src = await openRowSource(p);
    assert.deepEqual(await src.get(0), { a: 'ok' });
    // the row is {"a":"a\xC3(…: byte 8 (1-based) starts the broken two-byte sequence
    await rejects(src.get(1), 2, `${p}:2: invalid UTF-8 (byte 8 of the row)`);
    await src.close();
  });

  it('a 50k-line file is indexed in one pass and rows are read by offset, on demand', async () => {
    const n = 50_000;
    const pad = 'x'.repeat(200);
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ i, text: `${pad}${String(i).padStart(6, '0')}` }));
    const p = join(dir, 'big.jsonl');
    writeFileSync(p, `${lines.join('\n')}\n`);
    const src = await openRowSource(p);
    assert.equal(src.length, n);
    assert.deepEqual(await src.get(n - 1), { i: n - 1, text: `${pad}${String(n - 1).padStart(6, '0')}` });
    assert.equal(src.lineOf(31_337), 31_338);
    // Overwrite row 31337 on disk (same length). A source that had loaded the file would still return the old
    // row; this one reads the row's bytes at its offset when asked.
    const offset = lines.slice(0, 31_337).reduce((s, l) => s + Buffer.byteLength(l) + 1, 0);
    const replacement = JSON.stringify({ i: 31_337, text: `${'y'.repeat(200)}031337` });
    assert.equal(replacement.length, lines[31_337].length);
    const fd = openSync(p, 'r+');
    writeSync(fd, replacement, offset);
    closeSync(fd);
    assert.deepEqual(await src.get(31_337), JSON.parse(replacement));
    assert.deepEqual(await src.get(31_336), JSON.parse(lines[31_336]));
    assert.ok(statSync(p).size > 10_000_000);
    await src.close();
  });
});

describe('JSON', () => {
  it('a top-level array: elements by index, numbered from 1; brackets and commas inside strings are data', async () => {
    const rows = [{ a: 'x,]"}' }, { b: [1, [2, { c: '[' }]] }, { d: 'line\nbreak \\' }];
    const p = file('arr.json', `\uFEFF  [\n ${JSON.stringify(rows[0])} ,\n${JSON.stringify(rows[1], null, 2)},${JSON.stringify(rows[2])}\n]\n`);
    const src = await openRowSource(p);
    assert.equal(src.length, 3);
    assert.deepEqual(await all(src), rows);
    assert.deepEqual([0, 1, 2].map((i) => src.lineOf(i)), [1, 2, 3]);
    await src.close();
    const empty = await openRowSource(file('emptyarr.json', '[ ]'));
    assert.equal(empty.length, 0);
    await empty.close();
  });

  it('a JSONL file named .json is detected', async () => {
    const src = await openRowSource(file('lines.json', '{"a":1}\n\n{"a":2}\n'));
    assert.deepEqual(await all(src), [{ a: 1 }, { a: 2 }]);
    assert.equal(src.lineOf(1), 3);
    await src.close();
  });

  it('element errors name the element; structural errors fail at open', async () => {
    const p = file('bad.json', '[{"a":1}, 5, {"a":}]');
    const src = await openRowSource(p);
    await rejects(src.get(1), 2, `${p}:2: each element of the top-level array must be a JSON object, got a number`);
    await rejects(src.get(2), 3, `${p}:3: malformed JSON: ${jsonError('{"a":}')}`);
    await src.close();
    const t = file('trunc.json', '[{"a":1},{"a":2},{"a"');
    const ts = await openRowSource(t);
    assert.equal(ts.length, 3);
    assert.deepEqual(await ts.get(1), { a: 2 });
    await rejects(ts.get(2), 3, `${t}:3: truncated row: the file ends before the top-level array is closed and its JSON is incomplete (${jsonError('{"a"')})`);
    await ts.close();
    const c = file('comma.json', '[{"a":1},,{"a":2}]');
    await rejects(openRowSource(c), 2, `${c}:2: empty element (two commas in a row?)`);
    const tc = file('trailing.json', '[{"a":1},]');
    await rejects(openRowSource(tc), 2, `${tc}:2: trailing comma before the closing ]`);
    const g = file('garbage.json', '[{"a":1}] x');
    await rejects(openRowSource(g), 2, `${g}:2: unexpected 'x' after the closing ']' of the top-level array`);
    const o = file('open.json', '[{"a":1},');
    await rejects(openRowSource(o), 2, `${o}:2: truncated file: it ends before the top-level array is closed`);
    const s = file('scalar.json', '"hello"');
    await rejects(openRowSource(s), 1, `${s}:1: a .json dataset must be a top-level array of objects or one JSON object per line; it starts with '\\"'`);
  });

  it('a pretty-printed single object gets a hint', async () => {
    const p = file('pretty.json', '{\n  "text": "hi"\n}\n');
    const src = await openRowSource(p);
    await assert.rejects(src.get(0), /a pretty-printed single object is neither/);
    await src.close();
  });
});

describe('files', () => {
  it('unknown extension, missing file, directory', async () => {
    await assert.rejects(openRowSource(join(dir, 'x.csv')), new RegExp(`x\\.csv: cannot tell the format from the extension '\\.csv'`));
    await assert.rejects(openRowSource(join(dir, 'missing.jsonl')), /missing\.jsonl: file not found/);
    await assert.rejects(openRowSource(dir, { format: 'jsonl' }), /is a directory/);
    // an explicit format overrides the extension
    const src = await openRowSource(file('data.txt', '{"a":1}\n'), { format: 'jsonl' });
    assert.deepEqual(await src.get(0), { a: 1 });
    await src.close();
  });
});

describe('Parquet', () => {
  it('rows written by hyparquet-writer read back by index, across blocks', async () => {
    const n = 2500; // more than one 1024-row read block, several row groups
    const p = join(dir, 'rows.parquet');
    const prompts = Array.from({ length: n }, (_, i) => `Question ${i}?`);
    const completions = Array.from({ length: n }, (_, i) => ` Answer ${i}.`);
    const ids = Int32Array.from({ length: n }, (_, i) => i * 3);
    parquetWriteFile({
      filename: p,
      columnData: [
        { name: 'prompt', data: prompts, type: 'STRING' },
        { name: 'completion', data: completions, type: 'STRING' },
        { name: 'id', data: ids, type: 'INT32' },
      ],
      rowGroupSize: 1000,
    });
    const src = await openRowSource(p);
    assert.equal(src.length, n);
    for (const i of [0, 1, 1023, 1024, 1999, 2000, 2499]) {
      assert.deepEqual(await src.get(i), { prompt: prompts[i], completion: completions[i], id: i * 3 });
      assert.equal(src.lineOf(i), i + 1);
    }
    await src.close();
    await assert.rejects(openRowSource(file('bad.parquet', 'not parquet at all')), /bad\.parquet: not a readable Parquet file/);
  });
});

/** V8's own message for a JSON.parse failure (it differs between Node versions; we pass it through). */
function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected invalid JSON');
}
