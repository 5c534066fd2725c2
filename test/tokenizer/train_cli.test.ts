// `alignkit tokenizer train` and `alignkit tokenizer stats` as a user runs them (bin/alignkit.mjs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const corpus = join(root, 'fixtures', 'tokenizers', 'corpus.txt');
const heldout = join(root, 'fixtures', 'tokenizers', 'heldout.txt');

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-toktrain-cli-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('alignkit tokenizer', () => {
  it('train --type bpe writes a loadable tokenizer and reports it as JSON; tokenize and stats use it', () => {
    const out = join(dir, 'bpe');
    const r = run(['tokenizer', 'train', '--type', 'bpe', '--data', corpus, '--vocab-size', '400', '--special-tokens', '<s>,</s>,<pad>', '--bos', '<s>', '--eos', '</s>', '--pad', '<pad>', '--out', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { vocabSize: number; specialTokens: string[]; merges: number; alphabetSize: number; stoppedBy: string; corpus: { texts: number } };
    assert.equal(report.vocabSize, 400);
    assert.deepEqual(report.specialTokens, ['<s>', '</s>', '<pad>']);
    assert.equal(report.alphabetSize, 256);
    assert.equal(report.merges, 400 - 3 - 256);
    assert.equal(report.stoppedBy, 'vocab-size');
    assert.ok(report.corpus.texts > 3000);
    const cfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([cfg.bos_token, cfg.eos_token, cfg.pad_token], ['<s>', '</s>', '<pad>']);

    const tokd = run(['tokenize', '--model', out, '--text', 'Héllo 🦄', '--json']);
    assert.equal(tokd.code, 0, tokd.stderr);
    assert.equal((JSON.parse(tokd.stdout) as { ids: number[] }).ids[0], 0, 'BOS first');

    const stats = run(['tokenizer', 'stats', '--tokenizer', out, '--data', heldout, '--max-length', '40', '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const s = JSON.parse(stats.stdout) as { model: string; maxLength: number; addedSpecialTokens: number; fields: Array<{ field: string; texts: number; unknownTokens: number; tokensPerWord: number; fractionOverMaxLength: number }> };
    assert.equal(s.model, 'BPE');
    assert.equal(s.maxLength, 40);
    assert.equal(s.addedSpecialTokens, 1);
    assert.equal(s.fields[0].field, 'text');
    assert.equal(s.fields[0].texts, readFileSync(heldout, 'utf8').split('\n').filter((l) => l.length > 0).length);
    assert.equal(s.fields[0].unknownTokens, 0, 'byte-level BPE has no unknown tokens');
    assert.ok(s.fields[0].tokensPerWord > 1);
    assert.ok(s.fields[0].fractionOverMaxLength > 0 && s.fields[0].fractionOverMaxLength < 1);

    const table = run(['tokenizer', 'stats', '--tokenizer', out, '--data', heldout]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /field\s+texts\s+words\s+tokens\s+tok\/word\s+chars\/tok\s+unk rate/);
    assert.match(table.stdout, /sequence lengths \(text, with 1 special token\(s\) added\):/);
  });

  it('train --type wordpiece on JSONL with --field, human-readable output', () => {
    const data = join(dir, 'data.jsonl');
    const lines = readFileSync(corpus, 'utf8').split('\n').filter((l) => l.length > 0).slice(0, 1500);
    writeFileSync(data, lines.map((l, i) => JSON.stringify({ id: i, body: l })).join('\n') + '\n');
    const out = join(dir, 'wp');
    const r = run(['tokenizer', 'train', '--type', 'wordpiece', '--data', data, '--field', 'body', '--vocab-size', '300', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^trained wordpiece tokenizer: 300 tokens \(target 300; 5 special, \d+ characters, \d+ merges; target size reached\)/);
    assert.match(r.stdout, /special tokens: 0=\[PAD\] 1=\[UNK\] 2=\[CLS\] 3=\[SEP\] 4=\[MASK\]/);
    assert.ok(existsSync(join(out, 'tokenizer.json')));
    const cfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.deepEqual([cfg.unk_token, cfg.pad_token, cfg.cls_token, cfg.sep_token, cfg.mask_token], ['[UNK]', '[PAD]', '[CLS]', '[SEP]', '[MASK]']);
  });

  it('bad input fails with one line naming file, line and field, and exit code 1', () => {
    const data = join(dir, 'bad.jsonl');
    writeFileSync(data, '{"text":"fine"}\n{"txt":"typo"}\n');
    const r = run(['tokenizer', 'train', '--type', 'unigram', '--data', data, '--vocab-size', '50', '--out', join(dir, 'never')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^alignkit tokenizer train: .*bad\.jsonl:2: field 'text' is missing \(keys: txt\)$/m);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(!existsSync(join(dir, 'never', 'tokenizer.json')));

    const missing = run(['tokenizer', 'stats', '--tokenizer', join(dir, 'nope'), '--data', heldout]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^alignkit tokenizer stats: .*nope: no such directory$/m);

    const badType = run(['tokenizer', 'train', '--type', 'sentencepiece', '--data', corpus, '--vocab-size', '50', '--out', dir]);
    assert.notEqual(badType.code, 0);
    assert.match(badType.stderr, /--type must be one of bpe, wordpiece, unigram/);
  });
});
