// The streaming corpus reader: line endings as the Hugging Face trainer sees them, JSONL fields, and errors
// that name file, line and field.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CorpusError, corpusFormatOf, forEachCorpusText, forEachLineBytes } from '../../src/tokenizer/train/index.ts';

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-corpus-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function texts(files: string[], options: Parameters<typeof forEachCorpusText>[1] = {}): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  forEachCorpusText(files, options, (t, f) => out.push([t, f]));
  return out;
}

describe('corpus reader', () => {
  it('text files: one text per line with its ending kept (LF and CRLF), blank lines kept as newlines, BOM dropped', () => {
    withDir((dir) => {
      const f = join(dir, 'a.txt');
      writeFileSync(f, '\ufeffone\r\ntwo\n\nlast without newline');
      assert.deepEqual(texts([f]).map(([t]) => t), ['one\r\n', 'two\n', '\n', 'last without newline']);
      assert.deepEqual(texts([f], { keepLineEndings: false }).map(([t]) => t), ['one', 'two', 'last without newline']);
    });
  });

  it('lines that cross the 1 MiB read chunk arrive whole, numbered from 1', () => {
    withDir((dir) => {
      const f = join(dir, 'big.txt');
      const long = 'x'.repeat((1 << 20) - 3); // the second line starts 2 bytes before the chunk boundary
      writeFileSync(f, `${long}\nabcdef\nlast`);
      const seen: Array<[number, number, number]> = [];
      const n = forEachLineBytes(f, (bytes, line, ending) => seen.push([line, bytes.length, ending]));
      assert.equal(n, 3);
      assert.deepEqual(seen, [
        [1, long.length, 1],
        [2, 6, 1],
        [3, 4, 0],
      ]);
    });
  });

  it('JSONL: the listed fields of every record, blank lines ignored', () => {
    withDir((dir) => {
      const f = join(dir, 'd.jsonl');
      writeFileSync(f, '{"prompt":"p1","response":"r1","n":1}\n\n{"prompt":"p2","response":"r2"}\n');
      assert.deepEqual(texts([f], { fields: ['prompt', 'response'] }), [
        ['p1', 'prompt'],
        ['r1', 'response'],
        ['p2', 'prompt'],
        ['r2', 'response'],
      ]);
      assert.equal(corpusFormatOf(f), 'jsonl');
      assert.equal(corpusFormatOf(join(dir, 'x.txt')), 'text');
      assert.equal(corpusFormatOf(join(dir, 'x.txt'), 'jsonl'), 'jsonl');
    });
  });

  it('malformed records fail with file:line and the field; skipInvalid counts them instead', () => {
    withDir((dir) => {
      const f = join(dir, 'bad.jsonl');
      writeFileSync(f, '{"text":"ok"}\n{"text": 3}\n{"other":"x"}\n{not json}\n[1,2]\n{"text":"fine"}\n');
      assert.throws(() => texts([f]), (e: unknown) => e instanceof CorpusError && e.line === 2 && /bad\.jsonl:2: field 'text': expected a string, got number/.test(e.message));
      const lines: string[] = [];
      const summary = forEachCorpusText([f], { skipInvalid: true }, (t) => lines.push(t));
      assert.deepEqual(lines, ['ok', 'fine']);
      assert.equal(summary.skipped, 4);
      assert.match(summary.skippedExamples[1], /bad\.jsonl:3: field 'text' is missing \(keys: other\)/);
      assert.match(summary.skippedExamples[2], /bad\.jsonl:4: invalid JSON/);
      assert.match(summary.skippedExamples[3], /bad\.jsonl:5: expected a JSON object, got array/);
    });
  });

  it('invalid UTF-8 is an error naming the line and byte, even with skipInvalid', () => {
    withDir((dir) => {
      const f = join(dir, 'bin.txt');
      writeFileSync(f, Buffer.concat([Buffer.from('fine\nab'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]));
      assert.throws(() => texts([f], { skipInvalid: true }), /bin\.txt:2: invalid UTF-8 at byte 2 of the line/);
    });
  });

  it('a missing file or a directory is a one-line error naming it', () => {
    withDir((dir) => {
      assert.throws(() => texts([join(dir, 'nope.txt')]), /nope\.txt: file not found/);
      assert.throws(() => texts([dir]), /is a directory/);
    });
  });
});
