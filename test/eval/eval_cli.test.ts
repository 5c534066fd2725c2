// `alignkit eval ...` as a user runs it: numbers equal the library's (and sacreBLEU's), JSON and Markdown
// outputs, the --output report pair, and one-line errors naming file, line and field.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../shared_assets.ts';
import { loadWordNet } from '../../src/eval/wordnet.ts';
import { main } from '../../src/cli/main.ts';

const bin = join(repoRoot, 'bin', 'alignkit.mjs');
let dir = '';

/** Runs `node bin/alignkit.mjs eval ...` as a separate process, exactly as a user would. */
function spawnRun(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'eval', ...args], { cwd: dir, env: { ...process.env, ...env }, timeout: 120_000 });
    let stdout = '', stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs the same command line in this process through the CLI's main() (what bin/alignkit.mjs calls), capturing
 * stdout, stderr and the exit code: the same code path without a process start-up per case. Not re-entrant.
 */
async function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
  const cwd = process.cwd();
  const out = process.stdout.write, err = process.stderr.write;
  let stdout = '', stderr = '';
  process.stdout.write = ((chunk: string | Uint8Array) => ((stdout += String(chunk)), true)) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => ((stderr += String(chunk)), true)) as typeof process.stderr.write;
  const log = console.log, error = console.error;
  console.log = (...a: unknown[]) => void (stdout += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (stderr += a.join(' ') + '\n');
  process.exitCode = undefined;
  process.chdir(dir);
  try {
    await main(['node', 'alignkit', 'eval', ...args]);
  } finally {
    process.chdir(cwd);
    process.stdout.write = out;
    process.stderr.write = err;
    console.log = log;
    console.error = error;
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
  const code = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = undefined;
  return { code, stdout, stderr };
}

/** The stderr lines alignkit itself wrote for this command (the backend's addon notice is not ours). */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('alignkit eval'));
}

function write(name: string, text: string | Buffer): string {
  writeFileSync(join(dir, name), text);
  return name;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'alignkit-eval-cli-'));
  write('hyp.txt', "The dog bit the man.\nIt wasn't surprising.\nThe man had just bitten him.\n");
  write('ref1.txt', 'The dog bit the man.\nIt was not unexpected.\nThe man bit him first.\n');
  write('ref2.txt', 'The dog had bit the man.\nNo one was surprised.\nThe man had bitten the dog.\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('alignkit eval text', () => {
  it('BLEU with two reference files prints sacreBLEU numbers as JSON, and a Markdown table otherwise', async () => {
    const r = await spawnRun(['text', '--metric', 'bleu', '--predictions', 'hyp.txt', '--references', 'ref1.txt', '--references', 'ref2.txt', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.score.toFixed(6), '48.530827'); // sacreBLEU's test value
    assert.equal(j.signature, 'nrefs:2|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0');
    const md = (await run(['text', '--metric', 'bleu', '--predictions', 'hyp.txt', '--references', 'ref1.txt', '--references', 'ref2.txt']));
    assert.match(md.stdout, /^\| metric \| score \| signature \|$/m);
    assert.match(md.stdout, /BLEU = 48\.53 82\.4\/50\.0\/45\.5\/37\.5 \(BP = 0\.943 ratio = 0\.944 hyp_len = 17 ref_len = 18\)/);
  });

  it('chrF++, TER, ROUGE, exact match / F1 and accuracy from JSONL fields, with --output writing JSON + Markdown', async () => {
    write('pred.jsonl', ['{"text":"the cat sat on the mat"}', '{"text":"a dog"}', ''].join('\n'));
    write('gold.jsonl', ['{"text":["the cat sat on a mat","a cat sat"]}', '{"text":"the dog"}'].join('\n'));
    const chrf = JSON.parse((await run(['text', '--metric', 'chrf++', '--predictions', 'pred.jsonl', '--references', 'gold.jsonl', '--field', 'text', '--json'])).stdout);
    assert.equal(chrf.name, 'chrF2++');
    assert.match(chrf.signature, /^nrefs:var\|case:mixed\|eff:yes\|nc:6\|nw:2\|space:no\|version:2\.6\.0$/);
    const rouge = (await run(['text', '--metric', 'rouge', '--rouge-types', 'rouge1,rougeL', '--predictions', 'pred.jsonl', '--references', 'gold.jsonl', '--field', 'text', '--json', '--output', 'rep']));
    assert.equal(rouge.code, 0, rouge.stderr);
    const rj = JSON.parse(rouge.stdout);
    // example 1: best of rouge1 vs the two references (5/6 against the first); example 2: 1/2
    assert.ok(Math.abs(rj.scores.rouge1.fmeasure - (5 / 6 + 0.5) / 2) < 1e-12);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'rep.json'), 'utf8')), rj);
    assert.match(readFileSync(join(dir, 'rep.md'), 'utf8'), /^\| rouge1 \| /m);
    const f1 = JSON.parse((await run(['text', '--metric', 'f1', '--predictions', 'pred.jsonl', '--references', 'gold.jsonl', '--field', 'text', '--json'])).stdout);
    // both match after SQuAD normalisation: "cat sat on mat" twice, and "a dog" = "the dog" (articles removed)
    assert.equal(f1.exact_match, 100);
    write('labels_pred.txt', 'cat\ndog\ncat\nbird\n');
    write('labels_true.txt', 'cat\ndog\ndog\nbird\n');
    const acc = (await run(['text', '--metric', 'accuracy', '--predictions', 'labels_pred.txt', '--references', 'labels_true.txt', '--json', '--confusion-svg', 'cm.svg']));
    assert.equal(JSON.parse(acc.stdout).accuracy, 0.75);
    assert.deepEqual(JSON.parse(acc.stdout).confusion_matrix, [[1, 0, 0], [0, 1, 0], [0, 1, 1]]);
    assert.ok(existsSync(join(dir, 'cm.svg')));
  });

  it('METEOR says whether the WordNet synonym stage ran', async () => {
    write('m_hyp.txt', 'the kid ran home\n');
    write('m_ref.txt', 'the child ran home\n');
    const bad = (await run(['text', '--metric', 'meteor', '--predictions', 'm_hyp.txt', '--references', 'm_ref.txt', '--json', '--wordnet', join(dir, 'no-such-dir')]));
    assert.equal(bad.code, 1);
    assert.match(errorLines(bad.stderr)[0], /^alignkit eval text: .*no-such-dir: not a WordNet database folder/);
    // No WordNet anywhere: the score is computed without synonyms and both outputs say so.
    const none = (await run(['text', '--metric', 'meteor', '--predictions', 'm_hyp.txt', '--references', 'm_ref.txt', '--json'], { ALIGNKIT_WORDNET: join(dir, 'empty') }));
    assert.equal(none.code, 0, none.stderr);
    assert.equal(JSON.parse(none.stdout).synonym_stage, 'unavailable');
    assert.match(none.stderr, /^alignkit eval text: note: no WordNet database found .* synonym stage is UNAVAILABLE/m);
    const required = (await run(['text', '--metric', 'meteor', '--predictions', 'm_hyp.txt', '--references', 'm_ref.txt', '--require-wordnet'], { ALIGNKIT_WORDNET: join(dir, 'empty') }));
    assert.equal(required.code, 1);
    if (loadWordNet() !== null) {
      const withWn = JSON.parse((await run(['text', '--metric', 'meteor', '--predictions', 'm_hyp.txt', '--references', 'm_ref.txt', '--json'])).stdout);
      assert.equal(withWn.synonym_stage, 'wordnet');
      // kid ~ child through WordNet: 4 of 4 words in one chunk; NLTK gives 0.9921875
      assert.equal(withWn.score, 0.9921875);
      assert.ok(JSON.parse(none.stdout).score < withWn.score);
    }
  });

  it('bad input fails with one line naming file, line and field', async () => {
    write('short.txt', 'only one line\n');
    const len = await spawnRun(['text', '--metric', 'bleu', '--predictions', 'hyp.txt', '--references', 'short.txt']);
    assert.equal(len.code, 1);
    assert.deepEqual(errorLines(len.stderr), ['alignkit eval text: hyp.txt:2: has 3 segments but short.txt has 1']);
    assert.doesNotMatch(len.stderr, /\n\s+at /);
    write('bad_utf8.txt', Buffer.concat([Buffer.from('ok\nfine\n'), Buffer.from([0x61, 0xff, 0xfe, 0x0a])]));
    assert.deepEqual(errorLines((await run(['text', '--metric', 'chrf', '--predictions', 'bad_utf8.txt', '--references', 'hyp.txt'])).stderr), ['alignkit eval text: bad_utf8.txt:3: invalid UTF-8']);
    write('empty_ref.txt', 'a\n\nc\n');
    assert.deepEqual(errorLines((await run(['text', '--metric', 'ter', '--predictions', 'hyp.txt', '--references', 'empty_ref.txt'])).stderr), [
      'alignkit eval text: empty_ref.txt:2: empty reference (pass --allow-empty-references to score it anyway)',
    ]);
    write('nofield.jsonl', '{"text":"a"}\n{"txt":"b"}\n');
    assert.deepEqual(errorLines((await run(['text', '--metric', 'bleu', '--predictions', 'nofield.jsonl', '--references', 'nofield.jsonl', '--field', 'text'])).stderr), [
      "alignkit eval text: nofield.jsonl:2: field 'text' is missing",
    ]);
    assert.deepEqual(errorLines((await run(['text', '--metric', 'bleu', '--predictions', 'missing.txt', '--references', 'hyp.txt'])).stderr), ['alignkit eval text: missing.txt: file not found']);
    write('empty.txt', '');
    assert.deepEqual(errorLines((await run(['text', '--metric', 'bleu', '--predictions', 'empty.txt', '--references', 'hyp.txt'])).stderr), ['alignkit eval text: empty.txt: no segments (the file is empty)']);
    write('obj.jsonl', '{"text":{"a":1}}\n');
    assert.deepEqual(errorLines((await run(['text', '--metric', 'f1', '--predictions', 'obj.jsonl', '--references', 'obj.jsonl', '--field', 'text'])).stderr), [
      "alignkit eval text: obj.jsonl:1: field 'text' must be a string or a non-empty array of strings, got an object",
    ]);
    write('bad.jsonl', '{"text":"a"}\n{text}\n');
    assert.match(errorLines((await run(['text', '--metric', 'f1', '--predictions', 'bad.jsonl', '--references', 'bad.jsonl', '--field', 'text'])).stderr)[0], /^alignkit eval text: bad\.jsonl:2: invalid JSON/);
  });
});

describe('alignkit eval agreement / winrate / significance / fairness', () => {
  it("agreement: Cohen's kappa from CSV, Krippendorff's alpha with missing cells, ragged rows rejected", async () => {
    const rows = ['a,b', ...Array(20).fill('yes,yes'), ...Array(5).fill('yes,no'), ...Array(10).fill('no,yes'), ...Array(15).fill('no,no')];
    write('r.csv', rows.join('\n') + '\n');
    const k = JSON.parse((await run(['agreement', '--ratings', 'r.csv', '--method', 'cohen', '--json'])).stdout);
    assert.ok(Math.abs(k.kappa - 0.4) < 1e-12);
    // Krippendorff (2011) example C, items as rows, coders as columns
    const C = [[1, 1, null, 1], [2, 2, 3, 2], [3, 3, 3, 3], [3, 3, 3, 3], [2, 2, 2, 2], [1, 2, 3, 4], [4, 4, 4, 4], [1, 1, 2, 1], [2, 2, 2, 2], [null, 5, 5, 5], [null, null, 1, 1], [null, 3, null, null]];
    write('c.csv', 'A,B,C,D\n' + C.map((r) => r.map((v) => (v === null ? '' : v)).join(',')).join('\n') + '\n');
    const a = JSON.parse((await run(['agreement', '--ratings', 'c.csv', '--method', 'krippendorff', '--level', 'interval', '--json'])).stdout);
    assert.equal(a.alpha.toFixed(3), '0.849');
    write('ragged.csv', 'A,B\n1,2\n1\n');
    assert.deepEqual(errorLines((await run(['agreement', '--ratings', 'ragged.csv', '--method', 'fleiss'])).stderr), ['alignkit eval agreement: ragged.csv:3: has 1 columns, the header has 2']);
  });

  it('winrate with ties counted half, and a bad winner value named by line', async () => {
    write('w.jsonl', ['a', 'a', 'a', 'b', 'tie'].map((w) => JSON.stringify({ winner: w })).join('\n') + '\n');
    const w = JSON.parse((await run(['winrate', '--file', 'w.jsonl', '--json'])).stdout);
    assert.equal(w.win_rate, 0.7);
    assert.equal(w.sign_test_p, 0.625); // 2 * P(X <= 1), X ~ Bin(4, 1/2) = 2 * 5/16
    write('w_bad.jsonl', '{"winner":"a"}\n{"winner":"c"}\n');
    assert.deepEqual(errorLines((await run(['winrate', '--file', 'w_bad.jsonl'])).stderr), ["alignkit eval winrate: w_bad.jsonl:2: field 'winner' must be 'a', 'b' or 'tie', got 'c'"]);
  });

  it('significance: paired bootstrap p-value and signature in sacreBLEU form', async () => {
    write('sys.txt', "The dog bit the man.\nIt was not surprising.\nThe man had bitten him.\n");
    const r = (await run(['significance', '--baseline', 'hyp.txt', '--system', 'sys.txt', '--references', 'ref1.txt', '--references', 'ref2.txt', '--json']));
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.signature, 'nrefs:2|bs:1000|seed:12345|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0');
    assert.ok(j.p_value > 0 && j.p_value <= 1);
    assert.equal(j.n_samples, 1000);
  });

  it('fairness from JSONL rows', async () => {
    const rows = [['A', 1, 1], ['A', 1, 0], ['A', 0, 1], ['A', 0, 0], ['B', 1, 1], ['B', 1, 1], ['B', 1, 1], ['B', 0, 1]];
    write('f.jsonl', rows.map(([g, y, p]) => JSON.stringify({ g, y, p })).join('\n') + '\n');
    const f = JSON.parse((await run(['fairness', '--file', 'f.jsonl', '--group-field', 'g', '--label-field', 'y', '--prediction-field', 'p', '--json'])).stdout);
    assert.equal(f.demographicParityDifference, 0.5);
    assert.equal(f.predictiveParityDifference, 0.25);
    const md = (await run(['fairness', '--file', 'f.jsonl', '--group-field', 'g', '--label-field', 'y', '--prediction-field', 'q']));
    assert.deepEqual(errorLines(md.stderr), ["alignkit eval fairness: f.jsonl:1: field 'q' is missing"]);
  });
});
