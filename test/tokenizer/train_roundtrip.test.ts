// Trained tokenizers of every kind, written to disk, load with alignkit's loadTokenizer and encode / decode
// held-out text (fixtures/tokenizers/heldout.txt: accents, CJK, Korean, emoji, and characters the corpus never
// uses): byte-level BPE is lossless, WordPiece gives [UNK] exactly for the words it cannot spell, Unigram
// round-trips text made of corpus characters and gives <unk> for the rest.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.ts';
import { bertNormalize, bertPreTokenize, saveTrainedTokenizer, trainTokenizer, type TrainedTokenizer } from '../../src/tokenizer/train/index.ts';

const fixtures = fileURLToPath(new URL('../../fixtures/tokenizers/', import.meta.url));
const corpus = join(fixtures, 'corpus.txt');
const heldout = readFileSync(join(fixtures, 'heldout.txt'), 'utf8').split('\n').filter((l) => l.length > 0);
const corpusChars = new Set(readFileSync(corpus, 'utf8'));

let root = '';
const trained = new Map<string, { result: TrainedTokenizer; tok: Tokenizer; dir: string }>();

function train(name: string, options: Parameters<typeof trainTokenizer>[0]): { result: TrainedTokenizer; tok: Tokenizer; dir: string } {
  const dir = join(root, name);
  const result = trainTokenizer(options);
  saveTrainedTokenizer(dir, result);
  const entry = { result, tok: loadTokenizer(dir), dir };
  trained.set(name, entry);
  return entry;
}

before(() => {
  root = mkdtempSync(join(tmpdir(), 'alignkit-toktrain-'));
  train('bpe', { type: 'bpe', files: [corpus], vocabSize: 700, specialTokens: ['<s>', '</s>', '<pad>'], bos: '<s>', eos: '</s>', pad: '<pad>' });
  train('wordpiece', { type: 'wordpiece', files: [corpus], vocabSize: 500 });
  train('unigram', { type: 'unigram', files: [corpus], vocabSize: 500, specialTokens: ['<unk>', '<s>', '</s>'], bos: '<s>', eos: '</s>' });
});
after(() => rmSync(root, { recursive: true, force: true }));

const get = (name: string): { result: TrainedTokenizer; tok: Tokenizer; dir: string } => trained.get(name) as { result: TrainedTokenizer; tok: Tokenizer; dir: string };

describe('written files', () => {
  it('hold tokenizer.json and tokenizer_config.json only (no temporary files), with the named tokens', () => {
    const { dir, tok, result } = get('bpe');
    assert.deepEqual(readdirSync(dir).sort(), ['tokenizer.json', 'tokenizer_config.json']);
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(cfg.bos_token, '<s>');
    assert.equal(cfg.eos_token, '</s>');
    assert.equal(cfg.pad_token, '<pad>');
    assert.equal(cfg.unk_token, undefined);
    assert.equal(cfg.tokenizer_class, 'PreTrainedTokenizerFast');
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.unkId], [0, 1, 2, null]);
    assert.equal(tok.vocabSize, result.vocabSize);
    assert.equal(result.vocabSize, 700);
    // Saving again replaces the files atomically.
    saveTrainedTokenizer(dir, result);
    assert.deepEqual(readdirSync(dir).sort(), ['tokenizer.json', 'tokenizer_config.json']);
  });

  it('special tokens get the first ids for every kind, flagged special', () => {
    for (const [name, specials] of [
      ['bpe', ['<s>', '</s>', '<pad>']],
      ['wordpiece', ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']],
      ['unigram', ['<unk>', '<s>', '</s>']],
    ] as const) {
      const { tok } = get(name);
      assert.deepEqual(tok.tokens(specials.map((_, i) => i)), [...specials], name);
      for (let i = 0; i < specials.length; i++) assert.ok(tok.specialIds.has(i), `${name}: id ${i} special`);
    }
    const wp = get('wordpiece').tok;
    assert.deepEqual([wp.padId, wp.unkId], [0, 1]);
    const uni = get('unigram').tok;
    assert.deepEqual([uni.unkId, uni.bosId, uni.eosId], [0, 1, 2]);
  });
});

describe('byte-level BPE', () => {
  it('is lossless on every held-out line, including characters never seen in training', () => {
    const { tok } = get('bpe');
    assert.ok(heldout.some((l) => [...l].some((ch) => !corpusChars.has(ch))), 'held-out text has unseen characters');
    for (const line of heldout) {
      const ids = tok.encode(line);
      assert.equal(ids[0], tok.bosId, 'BOS added');
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), line);
      assert.equal(tok.decode(tok.encode(line, { addSpecialTokens: false })), line);
    }
    for (const s of ['🦄🐉🤖', 'สวัสดี', '\u0000\u0001\t\r\n', 'ǅ ﬁ Ⅻ ①', '']) assert.equal(tok.decode(tok.encode(s, { addSpecialTokens: false })), s);
  });
});

describe('WordPiece', () => {
  it('encodes held-out lines as [CLS] words [SEP], with [UNK] exactly for words it cannot spell', () => {
    const { tok } = get('wordpiece');
    const vocab = new Set(tok.tokens(Array.from({ length: tok.vocabSize }, (_, i) => i)));
    // A word is spellable iff its first character is a token and every later character has a '##' token.
    const spellable = (w: string): boolean => [...w].every((ch, i) => vocab.has(i === 0 ? ch : `##${ch}`));
    let unknownWords = 0;
    for (const line of heldout) {
      const words = bertPreTokenize(bertNormalize(line));
      // The WordPiece decoder joins tokens with spaces and (its per-token cleanup) attaches . ? ! , to the left.
      const pieces = ['[CLS]', ...words.map((w) => (spellable(w) ? w : '[UNK]')), '[SEP]'];
      const expected = pieces.map((p, i) => (i > 0 && !['.', '?', '!', ','].includes(p) ? ` ${p}` : p)).join('');
      unknownWords += words.filter((w) => !spellable(w)).length;
      const ids = tok.encode(line);
      assert.equal(tok.decode(ids, { cleanUpTokenizationSpaces: false }), expected, line);
    }
    assert.ok(unknownWords >= 5, `held-out text has unknown words (${unknownWords})`);
    const thai = tok.encode('สวัสดีครับ', { addSpecialTokens: false });
    assert.deepEqual(thai, [tok.unkId]);
    assert.equal(tok.decode(tok.encode('Café au lait', { addSpecialTokens: false })), 'cafe au lait');
  });
});

describe('Unigram', () => {
  it('round-trips held-out lines made of corpus characters, and gives <unk> for unseen characters', () => {
    const { tok } = get('unigram');
    let checked = 0;
    for (const line of heldout) {
      const ids = tok.encode(line, { addSpecialTokens: false });
      const known = [...line.normalize('NFKC')].every((ch) => corpusChars.has(ch));
      if (known && !line.startsWith(' ')) {
        assert.ok(!ids.includes(tok.unkId as number), line);
        assert.equal(tok.decode(ids), line.normalize('NFKC'), line);
        checked++;
      } else if (!known) {
        assert.ok(ids.includes(tok.unkId as number), `unseen characters give <unk>: ${line}`);
      }
    }
    assert.ok(checked >= 30, `${checked} lines round-tripped`);
    assert.equal(tok.encode('x')[0], tok.bosId, 'BOS template');
  });

  it('has the target size, every corpus character, special tokens with score 0, then pieces by descending score', () => {
    const { result, dir } = get('unigram');
    const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as { model: { vocab: Array<[string, number]>; unk_id: number } };
    const vocab = json.model.vocab;
    assert.equal(vocab.length, 500);
    assert.equal(result.vocabSize, 500);
    assert.equal(json.model.unk_id, 0);
    assert.deepEqual(vocab.slice(0, 3), [
      ['<unk>', 0],
      ['<s>', 0],
      ['</s>', 0],
    ]);
    for (let i = 4; i < vocab.length; i++) assert.ok(vocab[i][1] <= vocab[i - 1][1], `scores sorted at ${i}`);
    assert.ok(vocab.slice(3).every(([, s]) => s < 0 && Number.isFinite(s)));
    const pieces = new Set(vocab.map(([p]) => p));
    const words = new Set<string>();
    for (const ch of corpusChars) if (ch !== ' ') words.add(ch);
    for (const ch of words) assert.ok(pieces.has(ch.normalize('NFKC')) || ch.normalize('NFKC') !== ch, `character ${JSON.stringify(ch)} kept`);
    assert.ok(!vocab.some(([p]) => p.indexOf('\u2581', 1) > 0), "'▁' only at the start of a piece");
  });
});

describe('determinism', () => {
  it('training twice gives byte-identical files for every kind', () => {
    for (const [name, entry] of trained) {
      const again = trainTokenizer({
        type: entry.result.type,
        files: [corpus],
        vocabSize: name === 'bpe' ? 700 : 500,
        specialTokens: entry.result.specialTokens,
        bos: entry.result.named.bos ?? undefined,
        eos: entry.result.named.eos ?? undefined,
        pad: entry.result.named.pad ?? undefined,
      });
      assert.equal(again.tokenizerJsonText, entry.result.tokenizerJsonText, name);
      assert.ok(existsSync(join(entry.dir, 'tokenizer.json')));
    }
  });
});
