// The harness's prompts, character for character: fixtures/harness/prompts/*.json hold the requests lm_eval 0.4.13
// itself built (ConfigurableTask.build_all_requests on the pinned task YAMLs) for the first documents of every
// task and data format, zero- and few-shot; alignkit must build identical contexts, continuations and targets.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadBenchmark } from '../../../src/eval/harness/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';

interface GoldenDoc {
  doc_id: number;
  context: string;
  continuations: string[];
  target: number;
}
interface GoldenCase {
  case: string;
  task: string;
  num_fewshot: number;
  data: string;
  fewshot_data?: string;
  limit: number;
  docs: GoldenDoc[];
}

const dir = join(repoRoot, 'fixtures', 'harness', 'prompts');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as GoldenCase);

test('prompt fixtures cover every task', () => {
  const tasks = new Set(cases.map((c) => c.task.replace(/^mmlu_.*/, 'mmlu')));
  for (const t of ['mmlu', 'arc_easy', 'arc_challenge', 'hellaswag', 'truthfulqa_mc1', 'truthfulqa_mc2', 'bbq', 'bbq_ambig', 'bbq_disambig']) assert.ok(tasks.has(t), t);
  assert.ok(cases.some((c) => c.num_fewshot > 0 && c.fewshot_data), 'few-shot from another file');
  assert.ok(cases.some((c) => c.num_fewshot > 0 && !c.fewshot_data), 'few-shot from the same split');
});

for (const c of cases) {
  test(`prompts: ${c.case} (${c.docs.length} docs, ${c.num_fewshot}-shot) equal lm_eval's`, async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const b = await loadBenchmark({
      task: c.task,
      data: asset(c.data),
      fewshotData: c.fewshot_data ? asset(c.fewshot_data) : null,
      numFewshot: c.num_fewshot,
      limit: c.limit,
    });
    assert.equal(b.tasks.length, 1);
    const reqs = b.tasks[0].requests;
    assert.equal(reqs.length, c.docs.length, 'number of documents');
    c.docs.forEach((g, i) => {
      const r = reqs[i];
      assert.equal(r.context, g.context, `doc ${g.doc_id}: context`);
      assert.deepEqual(r.continuations, g.continuations, `doc ${g.doc_id}: continuations`);
      assert.equal(r.target, g.target, `doc ${g.doc_id}: target`);
    });
  });
}
