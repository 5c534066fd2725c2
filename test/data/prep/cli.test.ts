// `alignkit data ...` end to end: literal input files, the rows written, the JSON summaries, one-line errors.
// Most cases run the CLI in-process (fast); two spawn the real binary for exit codes and stderr.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../../src/cli/main.ts';
import { readRows, withWriter, type Row } from '../../../src/data/prep/stream.ts';
import { SKIP_NO_ASSETS, asset, assetsDir } from '../../shared_assets.ts';

const root = path.join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..');
const bin = path.join(root, 'bin', 'alignkit.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'alignkit-data-cli-'));
const p = (name: string): string => path.join(tmp, name);
const write = (name: string, content: string | Buffer): string => {
  fs.writeFileSync(p(name), content);
  return p(name);
};
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const logs: string[] = [], errs: string[] = [];
  const ol = console.log, oe = console.error;
  console.log = (...a: unknown[]) => logs.push(a.map(String).join(' '));
  console.error = (...a: unknown[]) => errs.push(a.map(String).join(' '));
  process.exitCode = undefined;
  try {
    await main(['node', 'alignkit', ...args]);
  } finally {
    console.log = ol;
    console.error = oe;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, out: logs.join('\n'), err: errs.join('\n') };
}

async function rows(file: string): Promise<Row[]> {
  const out: Row[] = [];
  for await (const { row } of readRows(file)) out.push(row);
  return out;
}

describe('alignkit data (binary)', () => {
  it('bad input: one line naming the file and line, exit code 1, no output file', () => {
    const bad = write('bad.jsonl', Buffer.concat([Buffer.from('{"text":"ok"}\n{"text":"'), Buffer.from([0xe9]), Buffer.from('"}\n')]));
    const r = spawnSync(process.execPath, [bin, 'data', 'clean', bad, '-o', p('never.jsonl')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('alignkit data'));
    assert.deepEqual(lines, [`alignkit data clean: ${bad} line 2: invalid UTF-8: byte 0xe9 at byte 10 of the line (the file must be UTF-8)`]);
    assert.equal(fs.existsSync(p('never.jsonl')), false);
  });

  it('--help lists the subcommands', () => {
    const r = spawnSync(process.execPath, [bin, 'data', '--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0);
    for (const c of ['clean', 'dedup', 'balance', 'bias', 'inspect', 'split', 'convert']) assert.match(r.stdout, new RegExp(`\\b${c}\\b`));
  });
});

describe('alignkit data (in-process)', () => {
  it('clean: flags, per-step counts in --json, literal output; --skip-invalid counts', async () => {
    const input = write('messy.jsonl', jsonl([
      { id: 'a1', text: '<p>Cafe\u0301 &amp; cre\u0300me</p>\u200B  call +1 (555) 123-4567', label: 'x' },
      { id: 'a2', messages: [{ role: 'user', content: 'mail bob@example.com' }, { role: 'assistant', content: 'ok 👨\u200D👩\u200D👧' }] },
      { id: 'a3', text: 'tiny' },
    ]) + '{"id": "a4", "text": \n');
    const r = await cli(['data', 'clean', input, '-o', p('clean.jsonl'), '--html', '--mask-pii', '--min-chars', '5', '--skip-invalid', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.rowsIn, 3);
    assert.equal(s.rowsOut, 2);
    assert.equal(s.invalid.skipped, 1);
    assert.match(s.invalid.samples[0], /line 4: invalid JSON/);
    assert.deepEqual(s.steps.map((x: { step: string; changed: number; dropped: number }) => [x.step, x.changed, x.dropped]), [
      ['html', 1, 0], ['invisible', 1, 0], ['normalize(NFC)', 1, 0], ['pii(email,phone,ip,credit_card)', 2, 0], ['whitespace', 1, 0], ['length(chars>=5)', 0, 1],
    ]);
    assert.deepEqual(await rows(p('clean.jsonl')), [
      { id: 'a1', text: 'Café & crème\ncall <PHONE>', label: 'x' },
      { id: 'a2', messages: [{ role: 'user', content: 'mail <EMAIL>' }, { role: 'assistant', content: 'ok 👨\u200D👩\u200D👧' }] },
    ]);
  });

  it('clean: a YAML recipe; CSV in, Parquet out; recipe errors are one line', async () => {
    const input = write('in.csv', 'id,text\r\n1,"HELLO   World"\r\n2,"see https://x.org/a, ok"\r\n');
    write('recipe.yaml', 'fields: [text]\nsteps:\n  - urls\n  - lowercase\n  - whitespace\n');
    const r = await cli(['data', 'clean', input, '-o', p('out.parquet'), '--recipe', p('recipe.yaml'), '--json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(await rows(p('out.parquet')), [{ id: '1', text: 'hello world' }, { id: '2', text: 'see <url>, ok' }]);
    write('bad.yaml', 'steps:\n  - normalize: NFD\n');
    const bad = await cli(['data', 'clean', input, '-o', p('x.jsonl'), '--recipe', p('bad.yaml')]);
    assert.equal(bad.code, 1);
    assert.equal(bad.err, `alignkit data clean: ${p('bad.yaml')} line 2, field 'steps[0]': normalize: form must be NFC or NFKC, got "NFD"`);
    const both = await cli(['data', 'clean', input, '-o', p('x.jsonl'), '--recipe', p('recipe.yaml'), '--html']);
    assert.match(both.err, /either in --recipe or as flags/);
  });

  it('clean: an explicit field missing from a row is an error with line and field', async () => {
    const input = write('f.jsonl', jsonl([{ prompt: 'a' }, { other: 1 }]));
    const r = await cli(['data', 'clean', input, '-o', p('f.out.jsonl'), '--fields', 'prompt']);
    assert.equal(r.code, 1);
    assert.equal(r.err, `alignkit data clean: ${input} line 2, field 'prompt': missing field (the row has: other)`);
  });

  it('clean: token-length filters with a real tokenizer (GPT-2 BPE)', async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const input = write('tok.jsonl', jsonl([{ text: 'Hello world' }, { text: 'Hello world, this sentence is longer than five tokens.' }, { text: 'Hi' }]));
    const r = await cli(['data', 'clean', input, '-o', p('tok.out.jsonl'), '--tokenizer', asset('tokenizers', 'gpt2-gpt-neox-tests'), '--min-tokens', '2', '--max-tokens', '5', '--json']);
    assert.equal(r.code, 0, r.err);
    // GPT-2: "Hello world" = [Hello, Ġworld] (2 tokens); "Hi" = 1 token; the long sentence is 11 tokens.
    assert.deepEqual(await rows(p('tok.out.jsonl')), [{ text: 'Hello world' }]);
    assert.deepEqual(JSON.parse(r.out).steps.at(-1).reasons, { too_many_tokens: 1, too_few_tokens: 1 });
  });

  it('dedup: exact + near duplicates and contamination against an eval file', async () => {
    const base = 'The quick brown fox jumps over the lazy dog while the cat watches from the warm windowsill all afternoon long';
    const input = write('train.jsonl', jsonl([
      { text: base },
      { text: base.toUpperCase() },
      { text: base.replace('lazy', 'sleepy') },
      { text: 'An entirely different sentence about compilers, registers and instruction scheduling on modern CPUs.' },
      { text: 'What is the capital of France? The capital of France is Paris, a city on the Seine.' },
    ]));
    const evalFile = write('eval.jsonl', jsonl([{ text: 'What is the capital of France? The capital of France is Paris, a city on the Seine!' }]));
    const r = await cli(['data', 'dedup', input, '-o', p('dedup.jsonl'), '--against', evalFile, '--report', p('dedup.report.json'), '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual([s.rowsIn, s.kept], [5, 2]);
    assert.deepEqual(s.dropped, { exact: 1, near: 1, contaminatedExact: 0, contaminatedNear: 1 });
    assert.deepEqual(s.examples.map((e: { line: number; kind: string; of: number }) => [e.line, e.kind, e.of]), [[2, 'exact', 1], [3, 'near', 1], [5, 'contaminated_near', 1]]);
    assert.deepEqual((await rows(p('dedup.jsonl'))).map((x) => (x.text as string).slice(0, 12)), ['The quick br', 'An entirely ']);
    assert.equal(JSON.parse(fs.readFileSync(p('dedup.report.json'), 'utf8')).kept, 2);
  });

  it('split: stratified, exact sizes, same seed same files', async () => {
    const data: Row[] = [];
    for (let i = 0; i < 30; i++) data.push({ i, label: i < 20 ? 'a' : 'b' });
    const input = write('split.jsonl', jsonl(data));
    const r = await cli(['data', 'split', input, '--out-dir', p('splits'), '--fractions', '0.6,0.2,0.2', '--stratify', 'label', '--seed', '3', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.deepEqual(s.perStratum, { a: { train: 12, eval: 4, test: 4 }, b: { train: 6, eval: 2, test: 2 } });
    const train = await rows(p('splits/train.jsonl'));
    assert.equal(train.length, 18);
    assert.equal(train.filter((x) => x.label === 'b').length, 6);
    const all = [...train, ...(await rows(p('splits/eval.jsonl'))), ...(await rows(p('splits/test.jsonl')))].map((x) => x.i as number).sort((a, b) => a - b);
    assert.deepEqual(all, data.map((x) => x.i));
    const first = fs.readFileSync(p('splits/train.jsonl'), 'utf8');
    await cli(['data', 'split', input, '--out-dir', p('splits'), '--fractions', '0.6,0.2,0.2', '--stratify', 'label', '--seed', '3']);
    assert.equal(fs.readFileSync(p('splits/train.jsonl'), 'utf8'), first);
  });

  it('convert: Alpaca CSV -> messages JSONL; a row that cannot convert is skipped and counted', async () => {
    const input = write('alpaca.csv', 'instruction,input,output\nTranslate,bonjour,hello\nSay hi,,hi\n');
    const r = await cli(['data', 'convert', input, '-o', p('msgs.jsonl'), '--to', 'messages', '--json']);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(await rows(p('msgs.jsonl')), [
      { messages: [{ role: 'user', content: 'Translate\n\nbonjour' }, { role: 'assistant', content: 'hello' }] },
      { messages: [{ role: 'user', content: 'Say hi' }, { role: 'assistant', content: 'hi' }] },
    ]);
    const mixed = write('mixed.jsonl', jsonl([{ prompt: 'q', completion: 'a' }, { nothing: 1 }]));
    const bad = await cli(['data', 'convert', mixed, '-o', p('pc.jsonl'), '--to', 'sharegpt']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /^alignkit data convert: .*mixed\.jsonl line 2: cannot tell the layout/);
    const skip = await cli(['data', 'convert', mixed, '-o', p('pc.jsonl'), '--to', 'sharegpt', '--skip-invalid', '--json']);
    assert.equal(JSON.parse(skip.out).failed, 1);
    assert.equal((await rows(p('pc.jsonl'))).length, 1);
  });

  it('balance: class weights JSON; oversampling to the largest class; SMOTE on embeddings', async () => {
    const data: Row[] = [];
    for (let i = 0; i < 6; i++) data.push({ label: 'big', embedding: [i, 0] });
    for (let i = 0; i < 2; i++) data.push({ label: 'small', embedding: [0, i + 10] });
    const input = write('bal.jsonl', jsonl(data));
    const w = await cli(['data', 'balance', input, '--strategy', 'weights', '--json']);
    assert.deepEqual(JSON.parse(w.out).class_weights, { big: 8 / 12, small: 8 / 4 });
    const o = await cli(['data', 'balance', input, '--strategy', 'oversample', '-o', p('over.jsonl'), '--json']);
    assert.deepEqual(JSON.parse(o.out).after, { big: 6, small: 6 });
    assert.equal((await rows(p('over.jsonl'))).filter((x) => x.label === 'small').length, 6);
    const s = await cli(['data', 'balance', input, '--strategy', 'smote', '-o', p('smote.jsonl'), '--k', '1', '--json']);
    assert.equal(JSON.parse(s.out).synthetic, 4);
    const synth = (await rows(p('smote.jsonl'))).filter((x) => x.synthetic === true);
    assert.equal(synth.length, 4);
    for (const x of synth) {
      const [a, b] = x.embedding as number[];
      assert.equal(a, 0);
      assert.ok(b >= 10 && b <= 11, `interpolated between the two small-class points: ${b}`);
      assert.equal(x.label, 'small');
    }
  });

  it('bias: report files, counterfactual rows, weights', async () => {
    const input = write('bias.jsonl', jsonl([
      { text: 'He is a doctor and his patients like him.', label: 'pos' },
      { text: 'She is a nurse.', label: 'neg' },
      { text: 'The weather is nice.', label: 'pos' },
    ]));
    const r = await cli(['data', 'bias', input, '--label-field', 'label', '--augment', 'gender', '-o', p('aug.jsonl'), '--report-md', p('bias.md'), '--report-json', p('bias.json'), '--json']);
    assert.equal(r.code, 0, r.err);
    const out = await rows(p('aug.jsonl'));
    assert.deepEqual(out.filter((x) => x.counterfactual).map((x) => x.text), ['She is a doctor and her patients like her.', 'He is a nurse.']);
    const rep = JSON.parse(fs.readFileSync(p('bias.json'), 'utf8'));
    assert.deepEqual(rep.attributes.gender.groupByLabel, { male: { pos: 1 }, female: { neg: 1 }, none: { pos: 1 } });
    assert.deepEqual(rep.counterfactual, { attribute: 'gender', rowsAugmented: 2, swaps: 4 });
    assert.match(fs.readFileSync(p('bias.md'), 'utf8'), /^# Bias report/);
    const wr = await cli(['data', 'bias', input, '--label-field', 'label', '--reweight', 'gender', '-o', p('w.jsonl'), '--json']);
    assert.equal(wr.code, 0, wr.err);
    assert.deepEqual((await rows(p('w.jsonl'))).map((x) => x.weight), [1, 1, 1]); // one row per group: already equal
  });

  it('inspect: JSON report and SVG histograms from Parquet input', async () => {
    const pq = p('insp.parquet');
    await withWriter(pq, {}, async (w) => {
      w.write({ text: 'hello', n: 1 });
      w.write({ text: 'a longer text here', n: null });
    });
    const r = await cli(['data', 'inspect', pq, '--svg-dir', p('svg'), '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out);
    assert.equal(s.rows, 2);
    const n = s.fields.find((f: { field: string }) => f.field === 'n');
    assert.equal(n.nullRate, 0.5);
    assert.deepEqual(s.svgs, [p('svg/text.chars.svg')]);
    assert.match(fs.readFileSync(p('svg/text.chars.svg'), 'utf8'), /<svg /);
  });
});
