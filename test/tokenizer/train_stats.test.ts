// Dataset statistics under a hand-written WordPiece tokenizer whose encodings can be worked out by hand:
// vocabulary [PAD] [UNK] [CLS] [SEP] a b ##b ab, template [CLS] A [SEP].
//   "a b"      -> a | b           2 tokens, 2 words
//   "ab ab ab" -> ab | ab | ab    3 tokens, 3 words
//   "c"        -> [UNK]           1 token,  1 word (unknown)
//   "abb"      -> ab | ##b        2 tokens, 1 word (greedy longest match)
// With [CLS] and [SEP] the lengths are 4, 5, 3, 4.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer } from '../../src/tokenizer/index.ts';
import { formatTokenizerStats, tokenizerStats } from '../../src/tokenizer/train/index.ts';

let dir = '';
let tok: Tokenizer;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-tokstats-'));
  const vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'a', 'b', '##b', 'ab'];
  tok = Tokenizer.fromFiles({
    tokenizerJson: {
      version: '1.0',
      added_tokens: vocab.slice(0, 4).map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
      pre_tokenizer: { type: 'BertPreTokenizer' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        pair: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } }],
        special_tokens: { '[CLS]': { id: '[CLS]', ids: [2], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [3], tokens: ['[SEP]'] } },
      },
      decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: Object.fromEntries(vocab.map((t, i) => [t, i])) },
    },
    tokenizerConfig: { unk_token: '[UNK]', cls_token: '[CLS]', sep_token: '[SEP]' },
  });
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('tokenizerStats', () => {
  it('the hand-worked encodings hold (the premise of the numbers below)', () => {
    assert.deepEqual(tok.tokens(tok.encode('abb', { addSpecialTokens: false })), ['ab', '##b']);
    assert.deepEqual(tok.encode('c'), [2, 1, 3]);
  });

  it('text file: fertility, unknown rate, percentiles, histogram and the fraction over max_length', () => {
    const f = join(dir, 'data.txt');
    writeFileSync(f, 'a b\nab ab ab\nc\nabb\n');
    const s = tokenizerStats(tok, [f], { maxLength: 4 });
    assert.equal(s.addedSpecialTokens, 2);
    assert.equal(s.fields.length, 1);
    const t = s.fields[0];
    assert.equal(t.field, 'text');
    assert.deepEqual([t.texts, t.words, t.tokens, t.unknownTokens, t.chars], [4, 7, 8, 1, 15]);
    assert.equal(t.tokensPerWord, 8 / 7);
    assert.equal(t.unknownRate, 1 / 8);
    assert.equal(t.charsPerToken, 15 / 8);
    assert.deepEqual(t.length, { min: 3, mean: 4, p50: 4, p90: 5, p99: 5, max: 5 });
    assert.equal(t.overMaxLength, 1);
    assert.equal(t.fractionOverMaxLength, 0.25);
    assert.deepEqual(t.histogram, [{ from: 1, to: 16, count: 4 }]);
    const text = formatTokenizerStats(s, 'title');
    assert.match(text, /^title\nfield\s+texts\s+words\s+tokens\s+tok\/word/);
    assert.match(text, /text\s+4\s+7\s+8\s+1\.143\s+1\.88\s+12\.500%\s+4\.0\s+4\s+5\s+5\s+5\s+1 \(25\.00%\)/);
  });

  it('JSONL: one row per field', () => {
    const f = join(dir, 'data.jsonl');
    writeFileSync(f, '{"prompt":"a b","response":"c"}\n{"prompt":"ab ab ab","response":"abb"}\n');
    const s = tokenizerStats(tok, [f], { fields: ['prompt', 'response'] });
    const [p, r] = s.fields;
    assert.deepEqual([p.field, p.texts, p.words, p.tokens, p.unknownTokens], ['prompt', 2, 5, 5, 0]);
    assert.deepEqual([r.field, r.texts, r.words, r.tokens, r.unknownTokens], ['response', 2, 2, 3, 1]);
    assert.equal(s.maxLength, 2048);
    assert.equal(p.overMaxLength, 0);
  });

  it('length buckets are powers of two', () => {
    const f = join(dir, 'lengths.txt');
    // 10, 20 and 40 words of 'a' -> lengths 12, 22, 42 with [CLS] [SEP]
    writeFileSync(f, ['a '.repeat(10), 'a '.repeat(20), 'a '.repeat(20), 'a '.repeat(40)].join('\n'));
    const t = tokenizerStats(tok, [f], { maxLength: 32 }).fields[0];
    assert.deepEqual(t.histogram, [
      { from: 1, to: 16, count: 1 },
      { from: 17, to: 32, count: 2 },
      { from: 33, to: 64, count: 1 },
    ]);
    assert.equal(t.overMaxLength, 1);
  });

  it('a missing field is an error naming file, line and field', () => {
    const f = join(dir, 'bad.jsonl');
    writeFileSync(f, '{"prompt":"a"}\n{"other":"b"}\n');
    assert.throws(() => tokenizerStats(tok, [f], { fields: ['prompt'] }), /bad\.jsonl:2: field 'prompt' is missing/);
    const s = tokenizerStats(tok, [f], { fields: ['prompt'], skipInvalid: true });
    assert.equal(s.records.skipped, 1);
    assert.equal(s.fields[0].texts, 1);
  });
});
