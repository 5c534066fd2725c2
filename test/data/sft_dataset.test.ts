// SftDataset: the validation pass, stats, skip-invalid, subsets, packing, and the shipped tiny_qa set.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { parquetWriteFile } from 'hyparquet-writer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.ts';
import { toSftExample } from '../../src/data/formats.ts';
import { splitTrainEval } from '../../src/data/loader.ts';
import type { PackedRow } from '../../src/data/packing.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { IGNORE_INDEX, tokenizeSftExample, type TokenizedExample } from '../../src/data/sft_tokenize.ts';
import * as A from '../tokenizer/assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
const TINY_QA = join(A.repoRoot, 'data', 'sft', 'tiny_qa.jsonl');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-sftds-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function jsonl(name: string, rows: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return p;
}

const learned = (ex: TokenizedExample): number[] => Array.from(ex.labels).filter((l) => l !== IGNORE_INDEX);

describe('tiny_qa.jsonl', { skip }, () => {
  it('every row is a valid prompt/completion example; stats add up; get() re-tokenises exactly', async () => {
    const tok = A.llama2();
    const ds = await SftDataset.open(TINY_QA, tok, { maxLength: 64 });
    try {
      const lines = readFileSync(TINY_QA, 'utf8').trim().split('\n');
      assert.ok(lines.length >= 60 && lines.length <= 120);
      assert.equal(ds.length, lines.length);
      assert.deepEqual({ ...ds.stats, skippedReasons: undefined }, {
        rows: lines.length,
        examples: lines.length,
        skipped: 0,
        skippedReasons: undefined,
        truncated: 0,
        tokens: ds.stats.tokens,
        lossTokens: ds.stats.lossTokens,
      });
      let tokens = 0;
      let loss = 0;
      for (let i = 0; i < ds.length; i++) {
        const got = (await ds.get(i)) as TokenizedExample;
        const row = JSON.parse(lines[i]) as { prompt: string; completion: string };
        const want = tokenizeSftExample(tok, toSftExample(row, { file: TINY_QA, line: i + 1 }), { maxLength: 64 });
        assert.deepEqual(Array.from(got.inputIds), Array.from(want.inputIds));
        assert.deepEqual(Array.from(got.labels), Array.from(want.labels));
        assert.deepEqual(got.source, { file: TINY_QA, line: i + 1 });
        assert.equal(ds.tokensOf(i), got.inputIds.length);
        // exactly the completion and EOS are learned
        assert.equal(tok.decode(learned(got)), `${row.completion.trimStart()}</s>`);
        tokens += got.inputIds.length;
        loss += learned(got).length;
      }
      assert.equal(ds.stats.tokens, tokens);
      assert.equal(ds.stats.lossTokens, loss);
    } finally {
      await ds.close();
    }
  });

  it('train/eval subsets by source row; maxExamples; packing', async () => {
    const tok = A.llama2();
    const all = await SftDataset.open(TINY_QA, tok, { maxLength: 64 });
    const split = splitTrainEval(all.length, { evalFraction: 0.2, seed: 1 });
    const train = await SftDataset.open(TINY_QA, tok, { maxLength: 64 }, split.train);
    const evalDs = await SftDataset.open(TINY_QA, tok, { maxLength: 64 }, split.eval);
    const first = await SftDataset.open(TINY_QA, tok, { maxLength: 64, maxExamples: 5 });
    const packed = await SftDataset.open(TINY_QA, tok, { maxLength: 64, packing: true });
    try {
      assert.equal(train.length + evalDs.length, all.length);
      assert.equal(train.stats.tokens + evalDs.stats.tokens, all.stats.tokens);
      const e0 = (await evalDs.get(0)) as TokenizedExample;
      assert.deepEqual(Array.from(e0.inputIds), Array.from(((await all.get(split.eval[0])) as TokenizedExample).inputIds));
      assert.equal(e0.source?.line, split.eval[0] + 1);
      assert.equal(first.length, 5);
      assert.equal(first.stats.rows, 5);
      assert.equal(packed.stats.packedRows, packed.length);
      assert.ok(packed.length < all.length / 3, `${packed.length} packed rows for ${all.length} examples`);
      let tokens = 0;
      for (let i = 0; i < packed.length; i++) {
        const row = (await packed.get(i)) as PackedRow;
        assert.ok(row.inputIds.length <= 64);
        assert.equal(row.inputIds.length, packed.tokensOf(i));
        tokens += row.inputIds.length;
      }
      assert.equal(tokens, all.stats.tokens);
      await assert.rejects(SftDataset.open(TINY_QA, tok, { maxLength: 64 }, [0, 999]), /indices\[1\] = 999 is not a row/);
    } finally {
      for (const d of [all, train, evalDs, first, packed]) await d.close();
    }
  });
});

describe('other file formats', { skip }, () => {
  it('Parquet (messages in a JSON column) and a JSON array give the same examples as JSONL', async () => {
    const tok = A.llama2();
    const template = (A.readAssetJson('chat_templates', 'hfjs', 'jinja_e2e_cases.json') as { default_templates: { llama: { chat_template: string } } }).default_templates.llama
      .chat_template;
    const rows = [
      { messages: [{ role: 'user', content: 'Capital of France?' }, { role: 'assistant', content: 'Paris.' }] },
      { messages: [{ role: 'user', content: 'Two plus two?' }, { role: 'assistant', content: 'Four.' }, { role: 'user', content: 'Sure?' }, { role: 'assistant', content: 'Yes.' }] },
    ];
    const pq = join(dir, 'chat.parquet');
    parquetWriteFile({ filename: pq, columnData: [{ name: 'messages', data: rows.map((r) => r.messages), type: 'JSON' }] });
    const arr = join(dir, 'chat.json');
    writeFileSync(arr, JSON.stringify(rows, null, 2));
    const opts = { maxLength: 128, chatTemplate: template };
    const sets = [await SftDataset.open(jsonl('chat.jsonl', rows), tok, opts), await SftDataset.open(pq, tok, opts), await SftDataset.open(arr, tok, opts)];
    try {
      for (const ds of sets) assert.equal(ds.length, 2);
      for (let i = 0; i < 2; i++) {
        const [a, b, c] = await Promise.all(sets.map(async (ds) => (await ds.get(i)) as TokenizedExample));
        assert.deepEqual(Array.from(b.inputIds), Array.from(a.inputIds));
        assert.deepEqual(Array.from(c.labels), Array.from(a.labels));
        assert.deepEqual(b.source, { file: pq, line: i + 1 });
      }
      assert.equal(tok.tokens(learned((await sets[1].get(1)) as TokenizedExample)).join('|'), '▁Four|.|▁|</s>|▁Yes|.|▁|</s>');
    } finally {
      for (const ds of sets) await ds.close();
    }
  });
});

describe('invalid rows', { skip }, () => {
  const rows = [
    { prompt: 'Q: a?\nA:', completion: ' a.' },
    '{"prompt": "Q: b?", "completion": }',
    { prompt: 'Q: c?\nA:' },
    { messages: [{ role: 'user', content: 'hi' }, { role: 'bot', content: 'hello' }] },
    { text: 'word '.repeat(100) },
    [1, 2],
    { prompt: 'Q: d?\nA:', completion: ' d.' },
  ];

  it('without skipInvalid the first bad row throws its DataError', async () => {
    const p = jsonl('bad.jsonl', rows);
    await assert.rejects(SftDataset.open(p, A.llama2(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.line === 2 && /^.*bad\.jsonl:2: malformed JSON/.test(e.message));
  });

  it('with skipInvalid bad rows are counted, with their file, line and message', async () => {
    const p = jsonl('bad2.jsonl', rows);
    const ds = await SftDataset.open(p, A.llama2(), { maxLength: 32, skipInvalid: true });
    try {
      assert.equal(ds.length, 2);
      assert.equal(ds.stats.rows, 7);
      assert.equal(ds.stats.skipped, 5);
      assert.deepEqual(
        ds.stats.skippedReasons.map((r) => [r.line, r.message.slice(p.length + 1)]),
        [
          [2, `2: malformed JSON: ${jsonError('{"prompt": "Q: b?", "completion": }')}`],
          [3, `3: field 'completion': missing (the row has 'prompt' but no 'completion')`],
          [4, `4: field 'messages[1].role': unknown role 'bot' (valid: system, user, assistant, tool)`],
          [5, `5: example has 103 tokens, more than max_length 32 (raise max_length, or set truncation to 'right' or 'left')`],
          [6, '6: each line must be a JSON object, got a list'],
        ],
      );
      assert.ok(ds.stats.skippedReasons.every((r) => r.file === p));
      assert.deepEqual(((await ds.get(1)) as TokenizedExample).source, { file: p, line: 7 });
    } finally {
      await ds.close();
    }
  });

  it('truncation is counted, not an error, when asked for', async () => {
    const p = jsonl('long.jsonl', [{ text: 'word '.repeat(100) }, { text: 'short' }]);
    const ds = await SftDataset.open(p, A.llama2(), { maxLength: 32, truncation: 'right' });
    try {
      assert.equal(ds.stats.truncated, 1);
      assert.equal(ds.stats.examples, 2);
      assert.equal(((await ds.get(0)) as TokenizedExample).truncated, true);
    } finally {
      await ds.close();
    }
  });

  it('a file with no usable rows, a file that changed after open, bad options', async () => {
    const p = jsonl('none.jsonl', [{ foo: 1 }, { text: '' }]);
    await assert.rejects(SftDataset.open(p, A.llama2(), { maxLength: 32, skipInvalid: true }), /none\.jsonl: no usable SFT examples \(2 rows read, 2 skipped; the first problem: .*no SFT fields/);
    const q = jsonl('changing.jsonl', [{ text: 'one two' }, { text: 'three' }]);
    const ds = await SftDataset.open(q, A.llama2(), { maxLength: 32 });
    try {
      writeFileSync(q, `${JSON.stringify({ text: 'a b c d' })}\n`); // same bytes, other tokens
      await assert.rejects(ds.get(0), /changing\.jsonl:1: the row changed since the dataset was opened/);
    } finally {
      await ds.close();
    }
    await assert.rejects(SftDataset.open(q, A.llama2(), { maxLength: 32, maxExamples: 0 }), /maxExamples must be a positive integer/);
  });
});

function jsonError(text: string): string {
  try {
    JSON.parse(text);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected invalid JSON');
}
