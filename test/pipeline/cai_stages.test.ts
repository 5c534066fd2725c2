// The Constitutional AI stages inside a pipeline: cai-revise writes SFT data that the next stage trains on (and
// revision-over-answer pairs a DPO stage can use); cai-label with a local judge labels sampled response pairs; an unreachable judge
// endpoint fails the whole pipeline before its first stage runs.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { loadPipeline } from '../../src/pipeline/spec.ts';
import { runPipeline } from '../../src/pipeline/run.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-pipeline-cai-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const prompts = join(root, 'data', 'cai', 'red_team_prompts.jsonl');

function write(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

test('cai-revise feeds an SFT stage; cai-label samples two responses per prompt and labels them', async () => {
  const out = join(dir, 'run');
  const file = write('cai.yaml', `output_dir: ${out}
seed: 5
stages:
  - name: base
    type: init-model
    config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}
  - name: revise
    type: cai-revise
    config: {model: "\${stages.base.output}", prompts: ${prompts}, rounds: 2, max_new_tokens: 6}
  - name: sft
    type: sft
    config:
      model_name_or_path: \${stages.base.output}
      dataset_path: \${stages.revise.output}
      max_steps: 2
      per_device_train_batch_size: 4
      max_length: 256
      report_to: none
  - name: label
    type: cai-label
    config: {model: "\${stages.base.output}", input: ${prompts}, max_new_tokens: 4}
`);
  const r = await runPipeline(loadPipeline(file), { console: false, log: () => {} });
  const byName = Object.fromEntries(r.stages.map((s) => [s.name, s]));
  assert.equal(byName.revise.metrics.revisions + byName.revise.metrics.skipped, 8, 'one trace per red-team prompt');
  const principles = Object.entries(byName.revise.metrics).filter(([k]) => k.startsWith('principle/'));
  assert.equal(principles.reduce((a, [, n]) => a + n, 0), 16, '2 rounds x 8 prompts critiques, each under one principle');
  const trace = readFileSync(join(out, 'revise', 'trace.jsonl'), 'utf8').trim().split('\n');
  assert.equal(trace.length, 8);
  assert.equal(byName.sft.metrics.global_step, 2, 'the SFT stage trained on the revisions');
  assert.ok(existsSync(join(out, 'label', 'preferences.jsonl')));
  assert.ok(byName.label.metrics.mean_confidence >= 0.5 && byName.label.metrics.mean_confidence <= 1);
  // rerun: every stage finished with the same config is skipped (no endpoint, nothing to probe)
  const again = await runPipeline(loadPipeline(file), { console: false, log: () => {} });
  assert.deepEqual(again.stages.map((s) => s.status), ['skipped', 'skipped', 'skipped', 'skipped']);
});

test('an unreachable judge endpoint fails the pipeline before its first stage runs', async () => {
  // a port that was free a moment ago: nothing listens there
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const out = join(dir, 'unreachable');
  const file = write('bad_judge.yaml', `output_dir: ${out}
stages:
  - name: base
    type: init-model
    config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}
  - name: label
    type: cai-label
    config: {judge: "http://127.0.0.1:${port}/v1", input: ${prompts}}
`);
  await assert.rejects(runPipeline(loadPipeline(file), { console: false, log: () => {} }), (e: Error) => {
    assert.match(e.message, /stage 'label' \(cai-label\): field 'judge'/);
    assert.match(e.message, /before any stage ran/);
    return true;
  });
  assert.ok(!existsSync(join(out, 'base')), 'the init-model stage never ran');
});

test('cai-label needs exactly one of model and judge', () => {
  const file = write('both.yaml', `output_dir: ${join(dir, 'x')}
stages:
  - name: label
    type: cai-label
    config: {input: ${prompts}}
`);
  assert.throws(() => loadPipeline(file), /stage 'label'.*model.*exactly one of model/s);
});

test('a constitution with a missing template field fails the pipeline before its first stage runs', async () => {
  const bad = write('bad_constitution.yaml', 'principles:\n  - name: honest\n    critique_request: "Is {response} honest?"\n');
  const out = join(dir, 'bad_constitution');
  const file = write('bad_constitution_pipeline.yaml', `output_dir: ${out}
stages:
  - name: base
    type: init-model
    config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}
  - name: revise
    type: cai-revise
    config: {model: "\${stages.base.output}", prompts: ${prompts}, constitution: ${bad}}
`);
  await assert.rejects(runPipeline(loadPipeline(file), { console: false, log: () => {} }), (e: Error) => {
    assert.match(e.message, /stage 'revise' \(cai-revise\)/);
    assert.match(e.message, /revision_request/);
    assert.match(e.message, /before any stage ran/);
    return true;
  });
  assert.ok(!existsSync(join(out, 'base')), 'the init-model stage never ran');
});
