// Scores against lm_eval itself: fixtures/harness/scores/*.json hold what lm_eval.evaluator.evaluate() with HFLM
// computed (float64) on the hash model (test/eval/harness/hash_model.ts) with the Phi-3 / Llama-2 tokenizer of the
// shared assets: the token ids of the first requests, every choice's log-likelihood, the per-document metrics and
// the aggregated metrics with their stderr. alignkit (float32) must agree: ids exactly, log-likelihoods to 1e-4,
// accuracies exactly.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeRequest, loadBenchmark, runBenchmark, aggregateGroups, type McScore, type Mc2Score, type BbqScore } from '../../../src/eval/harness/index.ts';
import { loadTokenizer, type Tokenizer } from '../../../src/tokenizer/index.ts';
import type { PretrainedLM } from '../../../src/models/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';
import { hashModel } from './hash_model.ts';

interface ScoreCase {
  case: string;
  task: string;
  num_fewshot: number;
  data: string;
  fewshot_data?: string;
  limit: number;
  tokenizer: string;
  results: Record<string, number | 'N/A' | null>;
  n: number;
  encoded: { doc_id: number; idx: number; context_ids: number[]; continuation_ids: number[] }[];
  docs: { doc_id: number; loglikelihoods: number[]; metrics: Record<string, number> }[];
}

const dir = join(repoRoot, 'fixtures', 'harness', 'scores');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json') && !f.includes('group'))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as ScoreCase);
const group = JSON.parse(readFileSync(join(dir, 'mmlu_stem_group.json'), 'utf8')) as { subtasks: string[]; acc: number; acc_stderr: number };

let model: PretrainedLM | null = null;
let tok: Tokenizer | null = null;
function setup(): { model: PretrainedLM; tok: Tokenizer } {
  model ??= hashModel();
  tok ??= loadTokenizer(asset('tokenizers', 'ortx', 'phi-3-mini'));
  return { model, tok };
}

const close = (a: number, b: number, tol: number): boolean => Math.abs(a - b) <= tol;
const accOf = new Map<string, { acc: number; stderr: number; n: number }>();

for (const c of cases) {
  test(`scores: ${c.case} (${c.n} docs) equal lm_eval's`, async (t) => {
    if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
    const { model, tok } = setup();
    const b = await loadBenchmark({ task: c.task, data: asset(c.data), fewshotData: c.fewshot_data ? asset(c.fewshot_data) : null, numFewshot: c.num_fewshot, limit: c.limit });
    const reqs = b.tasks[0].requests;
    for (const e of c.encoded) {
      const r = reqs[e.doc_id];
      const enc = encodeRequest(tok, r.context, [r.continuations[e.idx]]);
      assert.deepEqual(enc.contextIds, e.context_ids, `doc ${e.doc_id}: context ids`);
      assert.deepEqual(enc.continuationIds[0], e.continuation_ids, `doc ${e.doc_id} choice ${e.idx}: continuation ids`);
    }
    const res = runBenchmark(b, model, tok).tasks[0];
    assert.equal(res.n, c.n);
    let worst = 0;
    c.docs.forEach((g, i) => {
      const s = res.samples[i];
      assert.equal(s.loglikelihoods.length, g.loglikelihoods.length, `doc ${g.doc_id}: number of choices`);
      s.loglikelihoods.forEach((ll, j) => {
        worst = Math.max(worst, Math.abs(ll - g.loglikelihoods[j]));
        assert.ok(close(ll, g.loglikelihoods[j], 1e-4), `doc ${g.doc_id} choice ${j}: ll ${ll} vs lm_eval ${g.loglikelihoods[j]}`);
      });
      const r = s.result as Partial<McScore & Mc2Score & BbqScore>;
      if ('acc' in g.metrics) {
        const acc = r.item ? r.item.acc : (r.acc as number);
        assert.ok(close(acc, g.metrics.acc, c.task === 'truthfulqa_mc2' ? 1e-5 : 0), `doc ${g.doc_id}: acc ${acc} vs ${g.metrics.acc}`);
      }
      if ('acc_norm' in g.metrics) assert.equal(r.accNorm, g.metrics.acc_norm, `doc ${g.doc_id}: acc_norm`);
    });
    t.diagnostic(`max |ll - lm_eval| = ${worst.toExponential(2)}`);
    for (const m of res.metrics) {
      const want = c.results[m.metric];
      const wantSe = c.results[`${m.metric}_stderr`];
      assert.ok(want !== undefined, `metric ${m.metric} missing from the fixture`);
      if (want === null) assert.ok(Number.isNaN(m.value), `${m.metric}: expected nan, got ${m.value}`);
      else assert.ok(close(m.value, want as number, c.task === 'truthfulqa_mc2' ? 1e-6 : 1e-12), `${m.metric}: ${m.value} vs ${want}`);
      if (wantSe === 'N/A' || wantSe === undefined) assert.equal(m.stderr, null, `${m.metric}_stderr: expected N/A`);
      else assert.ok(m.stderr !== null && close(m.stderr, wantSe as number, c.task === 'truthfulqa_mc2' ? 1e-6 : 1e-12), `${m.metric}_stderr: ${m.stderr} vs ${wantSe}`);
    }
    const acc = res.metrics.find((m) => m.metric === 'acc');
    if (acc && acc.stderr !== null) accOf.set(c.case, { acc: acc.value, stderr: acc.stderr, n: res.n });
  });
}

test('scores: a group aggregates its subtasks as lm_eval does (size-weighted mean, pooled stderr)', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const parts = group.subtasks.map((s) => accOf.get(s));
  if (parts.some((p) => p === undefined)) return t.skip('subtask cases did not run');
  const tasks = parts.map((p, i) => ({
    name: group.subtasks[i], alias: group.subtasks[i], version: 1, numFewshot: 0, n: p!.n, samples: [],
    metrics: [{ metric: 'acc', value: p!.acc, stderr: p!.stderr, higherIsBetter: true }],
  }));
  const [g] = aggregateGroups([{ name: 'mmlu_stem', alias: 'stem', version: 2, children: group.subtasks, leaves: group.subtasks }], tasks);
  assert.ok(close(g.metrics[0].value, group.acc, 1e-12), `acc ${g.metrics[0].value} vs ${group.acc}`);
  assert.ok(close(g.metrics[0].stderr as number, group.acc_stderr, 1e-12), `stderr ${g.metrics[0].stderr} vs ${group.acc_stderr}`);
});
