// Benchmark loaders: every native format of the shared assets parses, equivalent formats give equal documents
// (TruthfulQA's CSV vs its mc_task.json, AI2 ARC vs the Hugging Face layout), MMLU's subject table matches the
// harness's 57 task YAMLs, and bad input is an error naming file, line and field (or is skipped and counted).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import {
  loadArc, loadBbq, loadBenchmark, loadHellaswag, loadMcJsonl, loadMmlu, loadTruthfulqa, hellaswagPreprocess, MMLU_SUBJECTS, mmluDescription, pyCapitalize,
  pyStrip,
} from '../../../src/eval/harness/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-harness-data-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const file = (name: string, text: string | Buffer): string => {
  const p = join(tmp, name);
  writeFileSync(p, text);
  return p;
};

test('MMLU subjects and descriptions equal the harness task YAMLs (all 57)', () => {
  const fx = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'harness', 'mmlu_subjects.json'), 'utf8')) as { subjects: Record<string, { category: string; description: string }> };
  assert.deepEqual(Object.keys(MMLU_SUBJECTS).sort(), Object.keys(fx.subjects).sort());
  for (const [s, v] of Object.entries(fx.subjects)) {
    assert.equal(MMLU_SUBJECTS[s], v.category, s);
    assert.equal(mmluDescription(s), v.description, s);
  }
});

test('loaders read every shipped benchmark file', async (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const B = (...p: string[]): string => asset('benchmarks', ...p);
  assert.equal((await loadMmlu(B('mmlu', 'mmlu_dev_cais.jsonl'))).docs.length, 285);
  assert.equal((await loadMmlu(B('mmlu', 'hendrycks_csv', 'test', 'anatomy_test.csv'))).docs.length, 135);
  assert.equal((await loadArc(B('arc', 'ARC-Challenge-Dev.jsonl'))).docs.length, 299);
  assert.equal((await loadHellaswag(B('hellaswag', 'hellaswag_val_first500.llamacpp.derived.jsonl'))).docs.length, 500);
  assert.equal((await loadTruthfulqa(B('truthfulqa', 'truthfulqa_mc_hf_layout_817q.derived.jsonl'))).docs.length, 817);
  assert.equal((await loadBbq(B('bbq', 'Religion.jsonl'))).docs.length, 1200);
  // the whole MMLU dev folder: 57 subjects x 5, one task each, grouped into the four categories
  const b = await loadBenchmark({ task: 'mmlu', data: B('mmlu', 'hendrycks_csv', 'dev') });
  assert.equal(b.tasks.length, 57);
  assert.equal(b.tasks.reduce((s, x) => s + x.requests.length, 0), 285);
  assert.deepEqual(b.groups.map((g) => g.name), ['mmlu', 'mmlu_humanities', 'mmlu_other', 'mmlu_social_sciences', 'mmlu_stem']);
  // the cais JSONL holds the same 285 questions as the CSVs
  const cais = await loadBenchmark({ task: 'mmlu', data: B('mmlu', 'mmlu_dev_cais.jsonl') });
  assert.deepEqual(cais.tasks.map((x) => x.requests.map((r) => r.context)), b.tasks.map((x) => x.requests.map((r) => r.context)));
});

test('TruthfulQA.csv gives the same mc1 / mc2 targets as mc_task.json (2025, 790 questions)', async (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const csv = await loadTruthfulqa(asset('benchmarks', 'truthfulqa', 'TruthfulQA.csv'));
  const json = await loadTruthfulqa(asset('benchmarks', 'truthfulqa', 'mc_task_2025-01_790q.json'));
  assert.equal(csv.docs.length, 790);
  assert.deepEqual(csv.docs.map((d) => d.doc), json.docs.map((d) => d.doc));
});

test('ARC: the AI2 layout and the Hugging Face layout give the same documents', async (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const ai2 = await loadArc(asset('benchmarks', 'arc', 'ARC-Easy-Dev.jsonl'));
  const lines = ai2.docs.slice(0, 5).map(({ doc }) => JSON.stringify({ id: doc.id, question: doc.question, choices: { text: doc.texts, label: doc.labels }, answerKey: doc.answerKey }));
  const hf = await loadArc(file('arc_hf.jsonl', `${lines.join('\n')}\n`));
  assert.deepEqual(hf.docs.map((d) => d.doc), ai2.docs.slice(0, 5).map((d) => d.doc));
});

test('HellaSwag: llama.cpp text format, native rows, preprocess', async (t) => {
  const txt = file('hs.txt', 'Roof shingle removal: A man is sitting on a roof. he\n3\nis a.\nis b.\nis c [title] d.\nstarts [x] e.\n');
  const d = (await loadHellaswag(txt)).docs[0].doc;
  assert.deepEqual(d, { activityLabel: 'Roof shingle removal', ctxA: 'A man is sitting on a roof. he', ctxB: '', endings: ['is a.', 'is b.', 'is c [title] d.', 'starts [x] e.'], label: 3 });
  assert.equal(hellaswagPreprocess(' is c [title] d. '), 'is c. d.');
  assert.equal(hellaswagPreprocess('starts [x] e.'), 'starts e.');
  assert.equal(pyCapitalize('the LADY'), 'The lady');
  assert.equal(pyStrip('\x1c\u3000 a b \x85'), 'a b');
  await assert.rejects(loadHellaswag(file('bad.txt', 'ctx\n7\na\nb\nc\nd\n')), /bad\.txt line 2, field 'label': expected 0-3, got '7'/);
  await assert.rejects(loadHellaswag(file('short.txt', 'ctx\n1\na\nb\n')), /short\.txt line 1: the file has 4 lines, not a multiple of 6/);
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  await assert.rejects(loadHellaswag(asset('benchmarks', 'hellaswag', 'hellaswag_val_full.llamacpp.txt.bz2')), /decompress it first/);
});

test('bad input: errors name file, line and field; skipInvalid counts and skips', async () => {
  const mc = file('mc.jsonl', [
    '{"question": "q1", "choices": ["a", "b"], "answer": 1}',
    '{"question": "q2", "choices": ["a", "b"], "answer": 5}',
    '{"question": "q3", "choices": ["a", "b"]}',
    '{"question": "q4", "choices": "ab", "answer": 0}',
    '{not json',
    '{"question": "q6", "choices": ["x", "y"], "answer": "y"}',
    '',
  ].join('\n'));
  await assert.rejects(loadMcJsonl(mc), /mc\.jsonl line 2, field 'answer': 5 is not a valid index into 2 choices/);
  const skipped = await loadMcJsonl(mc, { skipInvalid: true });
  assert.deepEqual(skipped.docs.map((d) => [d.doc.question, d.doc.answer, d.line]), [['q1', 1, 1], ['q6', 1, 6]]);
  assert.equal(skipped.skipped, 4);
  assert.match(skipped.samples.join('\n'), /line 3, field 'answer': missing field/);
  assert.match(skipped.samples.join('\n'), /line 4, field 'choices': expected a list of strings, got a string/);
  assert.match(skipped.samples.join('\n'), /line 5: invalid JSON/);

  const ragged = file('x_test.csv', 'q1,a,b,c,d,A\n"q2, quoted",a,b,c,B\nq3,a,b,c,d,E\n');
  await assert.rejects(loadMmlu(ragged), /x_test\.csv line 2: ragged row: 5 fields, expected 6/);
  const s = await loadMmlu(ragged, { skipInvalid: true });
  assert.equal(s.docs.length, 1);
  assert.equal(s.docs[0].doc.subject, 'x');
  assert.match(s.samples[1], /line 3, field 'answer': expected A, B, C or D, got 'E'/);
  await assert.rejects(loadMmlu(file('u_test.csv', Buffer.from([0x71, 0x2c, 0x61, 0x0a, 0xff, 0x0a]))), /u_test\.csv line 2: invalid UTF-8: byte 0xff/);

  const arc = file('arc.jsonl', '{"id": "1", "question": {"stem": "s", "choices": [{"text": "t", "label": "A"}, {"text": "u", "label": "B"}]}, "answerKey": "E"}\n');
  await assert.rejects(loadArc(arc), /arc\.jsonl line 1, field 'answerKey': 'E' is not one of the choice labels A, B/);
  const tq = file('tq.jsonl', '{"question": "q", "mc1_targets": {"choices": ["a", "b"], "labels": [0, 1]}, "mc2_targets": {"choices": ["a"], "labels": [1]}}\n');
  await assert.rejects(loadBenchmark({ task: 'truthfulqa_mc1', data: tq }), /tq\.jsonl line 1, field 'mc1_targets': the first mc1 choice must be the true one/);
  const bbq = file('bbq.jsonl', '{"context": "c", "question": "q", "ans0": "x", "ans1": "y", "ans2": "z", "label": 1, "context_condition": "ambig", "question_polarity": "neg", "category": "Age", "answer_info": {"ans0": ["x", "old"], "ans1": ["y", "young"], "ans2": ["z", "unknown"]}, "additional_metadata": {"stereotyped_groups": ["old"]}}\n');
  await assert.rejects(loadBenchmark({ task: 'bbq', data: bbq }), /bbq\.jsonl line 1, field 'ans0': none of the answers is one of the harness's unknown phrasings/);
  await assert.rejects(loadBenchmark({ task: 'nope', data: mc }), /unknown task 'nope'/);
  await assert.rejects(loadBenchmark({ task: 'arc_easy', data: join(tmp, 'missing.jsonl') }), /missing\.jsonl: file not found/);
});

test('few-shot needs enough documents; mc-jsonl styles', async () => {
  const mc = file('mc2.jsonl', '{"question": "Sky?", "choices": ["blue", "green"], "answer": 0}\n{"question": "Grass?", "choices": ["blue", "green"], "answer": "green"}\n');
  await assert.rejects(loadBenchmark({ format: 'mc-jsonl', data: mc, numFewshot: 2 }), /2-shot needs 3 few-shot documents \(k \+ 1: the evaluated document is drawn from the same 2\), only 2 available/);
  const cloze = await loadBenchmark({ format: 'mc-jsonl', data: mc, numFewshot: 1 });
  assert.equal(cloze.tasks[0].requests[0].context, 'Question: Grass?\nAnswer: green\n\nQuestion: Sky?\nAnswer:');
  assert.deepEqual(cloze.tasks[0].requests[0].continuations, [' blue', ' green']);
  const letters = await loadBenchmark({ format: 'mc-jsonl', data: mc, mcStyle: 'letters', task: 'colors' });
  assert.equal(letters.tasks[0].name, 'colors');
  assert.equal(letters.tasks[0].requests[1].context, 'Grass?\nA. blue\nB. green\nAnswer:');
  assert.deepEqual(letters.tasks[0].requests[1].continuations, [' A', ' B']);
  assert.equal(letters.tasks[0].requests[1].target, 1);
});
