// Bad input across the evaluation commands: each problem is one error naming the file, the line and (where there
// is one) the field. Complements eval_cli.test.ts (text files) and harness/data.test.ts (benchmark loaders) with
// the cases they do not cover: JSONL predictions of a different length, invalid UTF-8 in JSONL references and in a
// benchmark file, benchmark records with a missing field (MMLU cais, ARC, HellaSwag), and pass@k / compare inputs.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNonEmpty, checkSameLength, readSegments } from '../../src/eval/io.ts';
import { loadBenchmark } from '../../src/eval/harness/index.ts';
import { readCompletions, readProblems } from '../../src/eval/passatk.ts';
import { compareRuns } from '../../src/eval/compare.ts';

let dir = '';
const file = (name: string, content: string | Buffer): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

before(() => (dir = mkdtempSync(join(tmpdir(), 'alignkit-bad-input-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('bad input names file, line and field', () => {
  it('JSONL predictions and references of different lengths', () => {
    const pred = readSegments(file('pred.jsonl', '{"t":"a"}\n{"t":"b"}\n{"t":"c"}\n'), 't');
    const ref = readSegments(file('ref.jsonl', '{"t":"a"}\n\n{"t":"b"}\n'), 't'); // a blank JSONL line is skipped
    assert.throws(() => checkSameLength(pred, ref), { message: `${pred.file}:3: has 3 segments but ${ref.file} has 2` });
  });

  it('an empty line among references; empty predictions are allowed (sacreBLEU scores them)', () => {
    const ref = readSegments(file('refs.txt', 'one\n\nthree\n'), undefined);
    assert.throws(() => checkNonEmpty(ref, 'reference'), { message: `${ref.file}:2: empty reference (pass --allow-empty-references to score it anyway)` });
    const pred = readSegments(file('preds.txt', 'one\n\nthree\n'), undefined);
    assert.deepEqual(pred.items.map((x) => x[0]), ['one', '', 'three']);
  });

  it('invalid UTF-8 in a JSONL file and in a benchmark file', async () => {
    const bad = file('bad.jsonl', Buffer.concat([Buffer.from('{"t":"ok"}\n{"t":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}\n')]));
    assert.throws(() => readSegments(bad, 't'), { message: `${bad}:2: invalid UTF-8` });
    const mmlu = file('mmlu_utf8.jsonl', Buffer.concat([Buffer.from('{"question":"q","subject":"anat'), Buffer.from([0xff]), Buffer.from('omy","choices":["a","b","c","d"],"answer":1}\n')]));
    await assert.rejects(loadBenchmark({ task: 'mmlu', data: mmlu }), /mmlu_utf8\.jsonl line 1: invalid UTF-8: byte 0xff/);
  });

  it('benchmark records with a missing field', async () => {
    const mmlu = file('mmlu.jsonl', '{"question":"q","subject":"anatomy","choices":["a","b","c","d"],"answer":1}\n{"question":"q2","subject":"anatomy","answer":2}\n');
    await assert.rejects(loadBenchmark({ task: 'mmlu', data: mmlu }), /mmlu\.jsonl line 2, field 'choices': missing field/);
    const arc = file('arc.jsonl', '{"id":"x","question":{"choices":[{"label":"A","text":"a"},{"label":"B","text":"b"}]},"answerKey":"A"}\n');
    await assert.rejects(loadBenchmark({ task: 'arc_easy', data: arc }), /arc\.jsonl line 1, field 'question\.stem': expected a string, got nothing \(the field is missing\)/);
    const hs = file('hs.jsonl', '{"ctx":"c","endings":["a","b","c","d"],"label":1,"activity_label":"x"}\n');
    await assert.rejects(loadBenchmark({ task: 'hellaswag', data: hs }), /hs\.jsonl line 1, field 'ctx_a': missing field/);
  });

  it('pass@k problems and completions', () => {
    const problems = file('problems.jsonl', '{"task_id":"a","test":"pass"}\n{"task_id":"b","test":"pass","language":"ruby"}\n');
    assert.throws(() => readProblems(problems), { message: `${problems}:2: field 'language' must be one of python, node, got 'ruby'` });
    const ok = readProblems(file('ok.jsonl', '{"task_id":"a","test":"pass"}\n'));
    const comps = file('comps.jsonl', '{"task_id":"a","completion":"x"}\n{"task_id":"a"}\n');
    assert.throws(() => readCompletions(comps, ok), { message: `${comps}:2: field 'completion' is missing` });
    const utf = file('comps_utf8.jsonl', Buffer.concat([Buffer.from('{"task_id":"a","completion":"'), Buffer.from([0xe2, 0x82]), Buffer.from('"}\n')]));
    assert.throws(() => readCompletions(utf, ok), { message: `${utf}:1: invalid UTF-8` });
  });

  it('compare: malformed per-sample data', () => {
    const a = file('a.json', JSON.stringify({ score: 1, per_sample: { score: [1, 'x'] } }));
    assert.throws(() => compareRuns(a, a), { message: `${a}: per_sample.score must be an array of numbers` });
  });
});
