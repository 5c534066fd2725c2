// The words the trainer counts must be the words the Hugging Face library counts: the normalizers and
// pre-tokenizers are compared with the library's own output (fixtures/tokenizers/expected.json, "pretokenize",
// written by fixtures/make_tokenizer_fixtures.py).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  WordCounter,
  bertNormalize,
  bertPreTokenize,
  byteLevelAlphabet,
  gpt2Pieces,
  metaspacePreTokenize,
  nfkc,
  toByteLevel,
} from '../../src/tokenizer/train/index.ts';

interface PretokenizeCase {
  text: string;
  byte_level: string[];
  bert_normalized: string;
  bert_cased_normalized: string;
  bert_words: string[];
  nfkc: string;
  metaspace_words: string[];
}

const expected = JSON.parse(readFileSync(new URL('../../fixtures/tokenizers/expected.json', import.meta.url), 'utf8')) as { tokenizers_version: string; pretokenize: PretokenizeCase[] };

describe(`pre-tokenization matches tokenizers ${expected.tokenizers_version}`, () => {
  for (const c of expected.pretokenize) {
    it(JSON.stringify(c.text).slice(0, 60), () => {
      assert.deepEqual(gpt2Pieces(c.text).map(toByteLevel), c.byte_level, 'ByteLevel(use_regex) pieces');
      assert.equal(bertNormalize(c.text), c.bert_normalized, 'BertNormalizer(lowercase)');
      assert.equal(bertNormalize(c.text, { lowercase: false }), c.bert_cased_normalized, 'BertNormalizer(cased)');
      assert.deepEqual(bertPreTokenize(bertNormalize(c.text)), c.bert_words, 'BertPreTokenizer');
      assert.equal(nfkc(c.text), c.nfkc, 'NFKC');
      assert.deepEqual(metaspacePreTokenize(nfkc(c.text)), c.metaspace_words, 'Metaspace(split)');
    });
  }
});

describe('documented difference', () => {
  it("U+FEFF: JavaScript's \\s includes it and the Rust regex engine does not, so ' \\uFEFF' splits differently", () => {
    // tokenizers 0.23.2 gives ['a', 'Ġï»¿', 'y'] (the space joins ' ?[^\s\p{L}\p{N}]+'). alignkit trains with the
    // regex its own loader encodes with (the JavaScript port's), so training and encoding agree with each other.
    assert.deepEqual(gpt2Pieces('a \ufeffy').map(toByteLevel), ['a', 'Ġ', 'ï»¿', 'y']);
  });
});

describe('byte-level alphabet', () => {
  it("is GPT-2's 256-character map: printable Latin-1 bytes map to themselves, the rest to U+0100.. in byte order", () => {
    const a = byteLevelAlphabet();
    assert.equal(new Set(a).size, 256);
    assert.equal(a[0x41], 'A');
    assert.equal(a[0x20], '\u0120'); // 'Ġ': space is the 33rd non-printable byte
    assert.equal(a[0x0a], '\u010a'); // 'Ċ'
    assert.equal(a[0x00], '\u0100');
    assert.equal(a[0xad], '\u0143'); // soft hyphen, the last shifted byte
    assert.equal(toByteLevel('é'), '\u00c3\u00a9');
  });
});

describe('WordCounter', () => {
  it('counts words per pre-tokenizer; byte-level words come out byte-mapped', () => {
    const c = new WordCounter('byte-level');
    c.add('the cat the');
    c.add('the');
    assert.deepEqual([...c.counts()].sort(), [
      ['the', 2],
      ['Ġcat', 1],
      ['Ġthe', 1],
    ].sort());
    const b = new WordCounter('bert');
    b.add('Café, CAFÉ!');
    assert.deepEqual([...b.counts()], [
      ['cafe', 2],
      [',', 1],
      ['!', 1],
    ]);
  });
});
