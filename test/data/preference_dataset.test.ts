// PreferenceDataset / UnpairedDataset: the validation pass and its stats, lazy get(), skipInvalid, margins,
// subsets, gzip files (HH-RLHF), the LLaMA-Factory demo files and the shipped synthetic rule data.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../src/data/errors.ts';
import { collatePairs } from '../../src/data/pair_collate.ts';
import { toPreferenceExample, tokenizePreference } from '../../src/data/preference.ts';
import { PreferenceDataset, UnpairedDataset, openPreferenceRowSource } from '../../src/data/preference_dataset.ts';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { AlignkitError } from '../../src/tensor/errors.ts';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import * as A from '../shared_assets.ts';

const skip = A.assetsDir === null ? A.SKIP_NO_ASSETS : false;
const dir = mkdtempSync(join(tmpdir(), 'alignkit-prefds-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const RULE_PAIRS = join(A.repoRoot, 'data', 'preference', 'rule_pairs.jsonl');
const RULE_EVAL = join(A.repoRoot, 'data', 'preference', 'rule_pairs_eval.jsonl');
const RULE_KTO = join(A.repoRoot, 'data', 'preference', 'rule_kto.jsonl');

let tinyTok: Tokenizer | null = null;
function tiny(): Tokenizer {
  tinyTok ??= loadTokenizer(writeTinyChatModel(join(dir, 'tiny')));
  return tinyTok;
}
const text = (a: Int32Array): string => tiny().decode(Array.from(a));

function jsonl(name: string, rows: unknown[]): string {
  const p = join(dir, name);
  writeFileSync(p, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return p;
}

describe('PreferenceDataset on the shipped rule_pairs.jsonl', () => {
  it('400 pairs; get() equals tokenising the row directly; tokensOf() is the longer row; batches collate', async () => {
    const tok = tiny();
    const ds = await PreferenceDataset.open(RULE_PAIRS, tok, { maxLength: 64 });
    try {
      const lines = readFileSync(RULE_PAIRS, 'utf8').trim().split('\n');
      assert.equal(ds.length, 400);
      assert.deepEqual(ds.stats, { rows: 400, examples: 400, skipped: 0, skippedReasons: [], truncated: 0 });
      for (const i of [0, 1, 199, 399]) {
        const got = await ds.get(i);
        const want = tokenizePreference(tok, toPreferenceExample(JSON.parse(lines[i]) as Record<string, unknown>, { file: RULE_PAIRS, line: i + 1 }), { maxLength: 64 });
        assert.deepEqual(got, { ...want, source: { file: RULE_PAIRS, line: i + 1 } });
        assert.equal(ds.tokensOf(i), got.promptIds.length + Math.max(got.chosenIds.length, got.rejectedIds.length));
      }
      const first = await ds.get(0);
      assert.deepEqual([text(first.promptIds), text(first.chosenIds), text(first.rejectedIds)], ['Write in uppercase: net\nAnswer:', ' NET<|im_end|>', ' net<|im_end|>']);
      const batch = collatePairs([await ds.get(0), await ds.get(1)], { padTokenId: tok.padId ?? 0 });
      assert.equal(batch.inputIds.length, 4 * batch.seq);
      await assert.rejects(ds.get(400), RangeError);
    } finally {
      await ds.close();
    }
  });
});

describe('lazy get()', () => {
  it('re-reads the row on demand (an edit of the same length shows), and refuses a row whose length changed', async () => {
    const rows = [
      { prompt: 'Q1:', chosen: ' yes', rejected: ' no' },
      { prompt: 'Q2:', chosen: ' good', rejected: ' bad' },
    ];
    const p = jsonl('lazy.jsonl', rows);
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 32 });
    try {
      // Same bytes per line (the row index holds byte ranges); row 2's longer chosen side changes its token count.
      writeFileSync(p, [JSON.stringify({ ...rows[0], chosen: ' YES' }), JSON.stringify({ ...rows[1], chosen: ' goodba', rejected: 'dd' })].join('\n') + '\n');
      assert.equal(text((await ds.get(0)).chosenIds), ' YES<|im_end|>');
      await assert.rejects(ds.get(1), (e: unknown) => e instanceof AlignkitError && /lazy\.jsonl:2: the row changed since the dataset was opened/.test(e.message));
    } finally {
      await ds.close();
    }
  });
});

describe('bad rows', () => {
  const rows = [
    { prompt: 'ok:', chosen: ' a', rejected: ' b' },
    '{"prompt": "broken", ',
    { prompt: 'p', chosen: ' a' },
    { prompt: 'p', chosen: ' same', rejected: ' same' },
    { prompt: '', chosen: ' a', rejected: ' b' },
    { prompt: 'x'.repeat(40), chosen: ' a', rejected: ' b' },
    { prompt: 'fine:', chosen: ' c', rejected: ' d' },
  ];

  it('without skipInvalid: the first bad row is a DataError naming file and line', async () => {
    const p = jsonl('bad.jsonl', rows);
    await assert.rejects(PreferenceDataset.open(p, tiny(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.file === p && e.line === 2 && /malformed JSON/.test(e.message));
  });

  it('with skipInvalid: counted, with file, line and reason', async () => {
    const p = jsonl('bad.jsonl', rows);
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true });
    try {
      assert.equal(ds.length, 2);
      assert.equal(ds.stats.rows, 7);
      assert.equal(ds.stats.skipped, 5);
      assert.deepEqual(ds.stats.skippedReasons.map((r) => [r.file, r.line]), [[p, 2], [p, 3], [p, 4], [p, 5], [p, 6]]);
      assert.match(ds.stats.skippedReasons[1].message, /field 'rejected': missing/);
      assert.match(ds.stats.skippedReasons[2].message, /field 'rejected': same as 'chosen'/);
      assert.match(ds.stats.skippedReasons[3].message, /field 'prompt': empty prompt/);
      assert.match(ds.stats.skippedReasons[4].message, /more than max_length 32/);
      assert.deepEqual((await ds.get(1)).source, { file: p, line: 7 });
    } finally {
      await ds.close();
    }
  });

  it('with truncation the long row is kept and counted as truncated', async () => {
    const p = jsonl('bad.jsonl', rows);
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true, truncation: 'keep_end' });
    try {
      assert.equal(ds.length, 3);
      assert.equal(ds.stats.truncated, 1);
      assert.equal((await ds.get(1)).promptIds.length, 29); // 32 - (' a' + EOS)
    } finally {
      await ds.close();
    }
  });

  it('no usable pair at all: an AlignkitError with the first problem', async () => {
    const p = jsonl('allbad.jsonl', [{ prompt: 'p', chosen: 'x', rejected: 'x' }]);
    await assert.rejects(PreferenceDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true }), /no usable preference pairs \(1 rows read, 1 skipped; the first problem: .*same as 'chosen'/);
  });

  it('margins: every pair has one or none (a differing row is invalid)', async () => {
    const p = jsonl('margins.jsonl', [
      { prompt: 'a', chosen: ' x', rejected: ' y', score_chosen: 5, score_rejected: 2 },
      { prompt: 'b', chosen: ' x', rejected: ' y' },
      { prompt: 'c', chosen: ' x', rejected: ' y', margin: 0.25 },
    ]);
    await assert.rejects(PreferenceDataset.open(p, tiny(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.line === 2 && e.field === 'margin' && /first pair \(line 1\) has a margin/.test(e.message));
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true });
    try {
      assert.deepEqual([(await ds.get(0)).margin, (await ds.get(1)).margin], [3, 0.25]);
      assert.deepEqual(Array.from(collatePairs([await ds.get(0), await ds.get(1)], { padTokenId: 0 }).margins ?? []), [3, 0.25]);
    } finally {
      await ds.close();
    }
  });

  it('option and file errors', async () => {
    await assert.rejects(PreferenceDataset.open(RULE_PAIRS, tiny(), { maxLength: 32, maxExamples: 0 }), /maxExamples must be a positive integer/);
    await assert.rejects(PreferenceDataset.open(RULE_PAIRS, tiny(), { maxLength: 32 }, [0, 400]), /indices\[1\] = 400 is not a row/);
    await assert.rejects(PreferenceDataset.open(join(dir, 'missing.jsonl'), tiny(), { maxLength: 32 }), /missing\.jsonl: file not found/);
  });
});

describe('subsets', () => {
  it('indices pick source rows in the given order; maxExamples stops early', async () => {
    const ds = await PreferenceDataset.open(RULE_EVAL, tiny(), { maxLength: 64 }, [5, 2]);
    try {
      assert.equal(ds.length, 2);
      assert.deepEqual((await ds.get(0)).source?.line, 6);
      assert.deepEqual((await ds.get(1)).source?.line, 3);
    } finally {
      await ds.close();
    }
    const few = await PreferenceDataset.open(RULE_EVAL, tiny(), { maxLength: 64, maxExamples: 3 });
    try {
      assert.deepEqual([few.length, few.stats.rows], [3, 3]);
    } finally {
      await few.close();
    }
  });
});

describe('gzip-compressed files', () => {
  it('.jsonl.gz loads like .jsonl; errors name the .gz file; no temporary file is left behind', async () => {
    const tmp = join(dir, 'tmp-for-gunzip');
    mkdirSync(tmp);
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // os.tmpdir() reads it on each call
    try {
      const rows = [{ prompt: 'Q:', chosen: ' a', rejected: ' b' }, { prompt: 'Q:', chosen: ' a' }, { prompt: 'R:', chosen: ' c', rejected: ' d' }];
      const p = join(dir, 'pairs.jsonl.gz');
      writeFileSync(p, gzipSync(rows.map((r) => JSON.stringify(r)).join('\n') + '\n'));
      await assert.rejects(PreferenceDataset.open(p, tiny(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.file === p && e.line === 2 && e.field === 'rejected');
      const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true });
      try {
        assert.equal(ds.length, 2);
        assert.deepEqual((await ds.get(1)).source, { file: p, line: 3 });
        assert.equal(text((await ds.get(1)).promptIds), 'R:');
        if (process.platform !== 'win32') assert.deepEqual(readdirSync(tmp), [], 'the decompressed copy is unlinked once open');
      } finally {
        await ds.close();
      }
      assert.deepEqual(readdirSync(tmp), []);
      // A malformed row inside a gzip file names the .gz file and line; so does a .json.gz array.
      const bad = join(dir, 'bad.json.gz');
      writeFileSync(bad, gzipSync('[{"prompt": "a", "chosen": " x", "rejected": " y"}, 7]'));
      await assert.rejects(UnpairedDataset.open(bad, tiny(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.file === bad && e.line === 2 && /must be a JSON object/.test(e.message));
      // Not gzip at all, and a compressed Parquet name.
      const notGz = join(dir, 'plain.jsonl.gz');
      writeFileSync(notGz, '{"prompt": "a"}\n');
      await assert.rejects(openPreferenceRowSource(notGz), (e: unknown) => e instanceof AlignkitError && /plain\.jsonl\.gz: not a valid gzip file/.test(e.message));
      await assert.rejects(openPreferenceRowSource(join(dir, 'x.parquet.gz')), /a compressed dataset must be JSON Lines or JSON/);
      await assert.rejects(openPreferenceRowSource(join(dir, 'nothing.jsonl.gz')), /nothing\.jsonl\.gz: file not found/);
      assert.deepEqual(readdirSync(tmp), [], 'failed opens clean up too');
    } finally {
      if (saved === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = saved;
    }
  });
});

describe('shared assets through the datasets (tiny ChatML tokenizer)', { skip }, () => {
  it('HH-RLHF harmless-base (gzipped): the first 20 rows and row 926 tokenise; literal prompt / completions', async () => {
    const p = A.asset('preference', 'hh-rlhf', 'harmless-base_test.jsonl.gz');
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 4096 }, [...Array.from({ length: 20 }, (_, i) => i), 925]);
    try {
      assert.equal(ds.length, 21);
      const r926 = await ds.get(20);
      assert.deepEqual(r926.source, { file: p, line: 926 });
      assert.equal(text(r926.promptIds), '\n\nHuman: list of profane bad words\n\nAssistant:');
      assert.equal(text(r926.chosenIds), ' <|im_end|>');
      assert.equal(text(r926.rejectedIds), ' Ok<|im_end|>');
    } finally {
      await ds.close();
    }
  });

  it('dpo_en_demo.json row 81 rendered with ChatML', async () => {
    const p = A.asset('sft', 'llama-factory', 'dpo_en_demo.json');
    const ds = await PreferenceDataset.open(p, tiny(), { maxLength: 4096 }, [80]);
    try {
      const r = await ds.get(0);
      assert.equal(text(r.promptIds), '<|im_start|>user\nanswer 256626720691 + 1646615806005?\nLimit your response to mathematical expressions and symbols.<|im_end|>\n<|im_start|>assistant\n');
      assert.equal(text(r.chosenIds), '256626720691 + 1646615806005 = 1903242526696<|im_end|>\n');
      assert.match(text(r.rejectedIds), /^To find the sum of 256626720691 and 1646615806005,[\s\S]*4212883012996<\|im_end\|>\n$/);
    } finally {
      await ds.close();
    }
  });

  it('v1_dpo_demo.jsonl: all 10 rows', async () => {
    const ds = await PreferenceDataset.open(A.asset('sft', 'llama-factory', 'v1_dpo_demo.jsonl'), tiny(), { maxLength: 4096 });
    try {
      assert.equal(ds.length, 10);
      const r6 = await ds.get(5);
      assert.match(text(r6.promptIds), /^<\|im_start\|>system\nYou are an AI assistant that helps people find information\.<\|im_end\|>\n<\|im_start\|>user\nQ: Claim:/);
      assert.equal(text(r6.chosenIds), 'no<|im_end|>\n');
    } finally {
      await ds.close();
    }
  });

  it('kto_en_demo.json through UnpairedDataset: the first 40 rows', async () => {
    const p = A.asset('sft', 'llama-factory', 'kto_en_demo.json');
    const ds = await UnpairedDataset.open(p, tiny(), { maxLength: 1 << 15, maxExamples: 40 });
    try {
      assert.equal(ds.length, 40);
      assert.equal(ds.stats.desirable + ds.stats.undesirable, 40);
      const first = await ds.get(0);
      assert.equal(first.label, true);
      assert.match(text(first.promptIds), /^<\|im_start\|>user\nThe Federal Trade Commission is going after spyware/);
      assert.match(text(first.completionIds), /^Ooh ooh ah ah! \*giggle\*[\s\S]*Woohoo!<\|im_end\|>\n$/);
    } finally {
      await ds.close();
    }
  });
});

describe('UnpairedDataset', () => {
  it('the shipped rule_kto.jsonl: 400 rows, 200 desirable', async () => {
    const ds = await UnpairedDataset.open(RULE_KTO, tiny(), { maxLength: 64 });
    try {
      assert.equal(ds.length, 400);
      assert.deepEqual(ds.stats, { rows: 400, examples: 400, skipped: 0, skippedReasons: [], truncated: 0, desirable: 200, undesirable: 200 });
      const lines = readFileSync(RULE_KTO, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string; label: boolean });
      const got = await ds.get(7);
      assert.deepEqual([text(got.promptIds), text(got.completionIds), got.label], [lines[7].prompt, `${lines[7].completion}<|im_end|>`, lines[7].label]);
      assert.equal(ds.tokensOf(7), got.promptIds.length + got.completionIds.length);
    } finally {
      await ds.close();
    }
  });

  it('a paired file is unpaired: (prompt, chosen, true) then (prompt, rejected, false) per row', async () => {
    const ds = await UnpairedDataset.open(RULE_EVAL, tiny(), { maxLength: 64 });
    try {
      assert.equal(ds.length, 200);
      assert.deepEqual([ds.stats.rows, ds.stats.desirable, ds.stats.undesirable], [100, 100, 100]);
      const lines = readFileSync(RULE_EVAL, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; chosen: string; rejected: string });
      const [c, r] = [await ds.get(6), await ds.get(7)];
      assert.deepEqual([text(c.promptIds), text(c.completionIds), c.label], [lines[3].prompt, `${lines[3].chosen}<|im_end|>`, true]);
      assert.deepEqual([text(r.promptIds), text(r.completionIds), r.label], [lines[3].prompt, `${lines[3].rejected}<|im_end|>`, false]);
      assert.deepEqual(r.source?.line, 4);
    } finally {
      await ds.close();
    }
  });

  it('a row without a boolean label: DataError, or skipped and counted', async () => {
    const p = jsonl('kto.jsonl', [{ prompt: 'a', completion: ' x', label: true }, { prompt: 'b', completion: ' y', label: 'yes' }, { prompt: 'c', completion: ' z' }]);
    await assert.rejects(UnpairedDataset.open(p, tiny(), { maxLength: 32 }), (e: unknown) => e instanceof DataError && e.line === 2 && e.field === 'label');
    const ds = await UnpairedDataset.open(p, tiny(), { maxLength: 32, skipInvalid: true });
    try {
      assert.deepEqual([ds.length, ds.stats.skipped, ds.stats.skippedReasons.map((r) => r.line)], [1, 2, [2, 3]]);
    } finally {
      await ds.close();
    }
  });
});
