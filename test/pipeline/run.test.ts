// Running pipelines of tiny stages: the stage folders, completion markers and report; a rerun skips finished stages;
// a changed config re-runs that stage and every stage downstream of it; a pipeline killed (SIGKILL, through the
// training loop's fault injection) in the middle of a stage resumes at that stage from its checkpoint and ends with
// exactly the metrics and weights of an uninterrupted run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { loadPipeline, type LoadPipelineOptions } from '../../src/pipeline/spec.ts';
import { runPipeline, STAGE_COMPLETE_FILE, STAGE_STARTED_FILE, type StageOutcome } from '../../src/pipeline/run.ts';
import { writeReport } from '../../src/pipeline/report.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-pipeline-run-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// A tiny model, 4 SFT steps, 8 DPO steps (a checkpoint every 4), and an eval of both models.
const PIPELINE = `output_dir: ${join(dir, 'unused')}
seed: 3
vars: {sft_lr: 0.003, dpo_beta: 0.1}
stages:
  - name: base
    type: init-model
    config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}
  - name: sft
    type: sft
    config:
      model_name_or_path: \${stages.base.output}
      dataset_path: ${join(root, 'data', 'rl', 'say_yes_sft.jsonl')}
      eval_fraction: 0.125
      max_steps: 4
      learning_rate: \${vars.sft_lr}
      per_device_train_batch_size: 8
      max_length: 32
      report_to: none
      logging_steps: 1
  - name: dpo
    type: dpo
    config:
      model_name_or_path: \${stages.sft.output}
      dataset_path: ${join(root, 'data', 'preference', 'rule_pairs.jsonl')}
      eval_file: ${join(root, 'data', 'preference', 'rule_pairs_eval.jsonl')}
      max_steps: 8
      save_steps: 4
      learning_rate: 0.001
      beta: \${vars.dpo_beta}
      per_device_train_batch_size: 4
      per_device_eval_batch_size: 50
      max_length: 48
      max_prompt_length: 40
      report_to: none
      logging_steps: 1
  - name: eval
    type: eval
    config:
      models: {sft: "\${stages.sft.output}", dpo: "\${stages.dpo.output}"}
      preference_file: ${join(root, 'data', 'preference', 'rule_pairs_eval.jsonl')}
      max_length: 48
`;
const file = join(dir, 'pipeline.yaml');
writeFileSync(file, PIPELINE);

const run = async (out: string, o: LoadPipelineOptions = {}) => runPipeline(loadPipeline(file, { outputDir: out, ...o }), { console: false, log: () => {} });
const byName = (stages: StageOutcome[]) => Object.fromEntries(stages.map((s) => [s.name, s]));
/** What must be identical between two runs of the same pipeline (not timings or statuses). */
const essentials = (stages: StageOutcome[]) => stages.map((s) => ({ name: s.name, hash: s.configHash, metrics: s.metrics, target: s.target, tables: s.tables }));

describe('running pipelines', () => {
  const ref = join(dir, 'ref');
  let first: StageOutcome[] = [];

  it('runs every stage into <output>/<name>/, writes markers and a report with each target metric', async () => {
    const r = await run(ref);
    first = r.stages;
    assert.deepEqual(r.stages.map((s) => [s.name, s.status]), [['base', 'ran'], ['sft', 'ran'], ['dpo', 'ran'], ['eval', 'ran']]);
    const s = byName(r.stages);
    for (const n of ['base', 'sft', 'dpo', 'eval']) {
      const m = JSON.parse(readFileSync(join(ref, n, STAGE_COMPLETE_FILE), 'utf8')) as { config_hash: string; stage: string };
      assert.equal(m.stage, n);
      assert.equal(m.config_hash, s[n].configHash);
      assert.ok(existsSync(join(ref, n, STAGE_STARTED_FILE)));
    }
    assert.ok(existsSync(join(ref, 'sft', 'model.safetensors')) && existsSync(join(ref, 'dpo', 'model.safetensors')));
    assert.equal(s.dpo.config.model_name_or_path, join(ref, 'sft'), 'references resolve to the referenced stage folder');
    assert.equal(s.sft.metrics.global_step, 4);
    // eval_on_start is switched on for stages with eval data: the "before" numbers
    assert.equal(s.sft.target?.metric, 'eval_loss');
    assert.ok(s.sft.target?.before !== null && s.sft.target?.improved === true, JSON.stringify(s.sft.target));
    assert.equal(s.dpo.target?.before, 0, 'DPO starts as its own reference: every margin 0, accuracy 0');
    assert.equal(s.dpo.target?.after, s.dpo.metrics['eval_rewards/accuracies']);
    // the eval stage's table: both models, the DPO model's preference accuracy measured by the same code as DPO's eval
    const t = s.eval.tables[0];
    assert.deepEqual(t.columns, ['model', 'preference_accuracy']);
    assert.deepEqual(t.rows.map((x) => x[0]), ['sft', 'dpo']);
    assert.ok(existsSync(join(ref, 'eval', 'eval.json')));

    const files = writeReport(r);
    const html = readFileSync(files.html, 'utf8');
    assert.ok((html.match(/<svg /g) ?? []).length >= 4, 'loss and target curves of sft and dpo');
    assert.match(html, /eval_rewards\/accuracies/);
    const md = readFileSync(files.markdown, 'utf8');
    assert.match(md, /\| sft \| sft \| ran \| [\d.]+ \| eval_loss \| [\d.]+ \| [\d.]+ \| yes \|/);
    assert.deepEqual(JSON.parse(readFileSync(files.json, 'utf8')).stages.map((x: StageOutcome) => x.name), ['base', 'sft', 'dpo', 'eval']);
  });

  it('a rerun skips every finished stage and reports the same numbers', async () => {
    const before = readFileSync(join(ref, 'dpo', 'model.safetensors'));
    const r = await run(ref);
    assert.deepEqual(r.stages.map((s) => s.status), ['skipped', 'skipped', 'skipped', 'skipped']);
    assert.deepEqual(essentials(r.stages), essentials(first));
    assert.ok(readFileSync(join(ref, 'dpo', 'model.safetensors')).equals(before), 'nothing was retrained');
    const dry = await runPipeline(loadPipeline(file, { outputDir: ref }), { dryRun: true });
    assert.deepEqual(dry.plan.map((p) => p.action), ['skip', 'skip', 'skip', 'skip']);
  });

  it('a changed config re-runs that stage and the stages that depend on it, nothing else', async () => {
    const dpoOnly = await run(ref, { vars: { dpo_beta: '0.2' } });
    assert.deepEqual(dpoOnly.stages.map((s) => [s.name, s.status]), [['base', 'skipped'], ['sft', 'skipped'], ['dpo', 'ran'], ['eval', 'ran']]);
    assert.notEqual(byName(dpoOnly.stages).dpo.configHash, byName(first).dpo.configHash);
    const fromSft = await runPipeline(loadPipeline(file, { outputDir: ref, vars: { sft_lr: '0.002' } }), { dryRun: true });
    assert.deepEqual(fromSft.plan.map((p) => p.action), ['skip', 'run', 'run', 'run'], 'an upstream change invalidates everything downstream');
    const reseeded = loadPipeline(file, { outputDir: ref });
    reseeded.seed = 4;
    assert.deepEqual((await runPipeline(reseeded, { dryRun: true })).plan.map((p) => p.action), ['run', 'run', 'run', 'run'], 'the pipeline seed is part of every seeded stage\'s config');
    // back to the original config: the stages run again and reproduce the first run exactly (seeded)
    const back = await run(ref);
    assert.deepEqual(back.stages.map((s) => s.status), ['skipped', 'skipped', 'ran', 'ran']);
    assert.deepEqual(essentials(back.stages), essentials(first));
  });

  it('killed in the middle of a stage, a rerun resumes at that stage and ends with the uninterrupted metrics', () => {
    const out = join(dir, 'killed');
    const cli = (env: Record<string, string>) =>
      spawnSync(process.execPath, [bin, 'pipeline', file, '--output', out, '--json'], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 300_000 });
    // sft has 4 steps, so step 6 is in dpo, after its checkpoint at step 4
    const killed = cli({ ALIGNKIT_FAULT_INJECT: 'after-step:6' });
    assert.equal(killed.signal, 'SIGKILL', `the run was not killed: ${killed.stderr}`);
    assert.ok(existsSync(join(out, 'sft', STAGE_COMPLETE_FILE)), 'sft finished before the crash');
    assert.ok(!existsSync(join(out, 'dpo', STAGE_COMPLETE_FILE)) && existsSync(join(out, 'dpo', 'checkpoint-4')), 'dpo was interrupted after its checkpoint');
    const resumed = cli({ ALIGNKIT_FAULT_INJECT: '' });
    assert.equal(resumed.status, 0, resumed.stderr);
    const r = JSON.parse(resumed.stdout) as { stages: { name: string; status: string; metrics: Record<string, number>; target: unknown }[]; report: { html: string } };
    assert.deepEqual(r.stages.map((s) => [s.name, s.status]), [['base', 'skipped'], ['sft', 'skipped'], ['dpo', 'resumed'], ['eval', 'ran']]);
    const ref1 = byName(first);
    for (const s of r.stages) {
      assert.deepEqual(s.metrics, ref1[s.name].metrics, `${s.name}: metrics differ from the uninterrupted run`);
      assert.deepEqual(s.target, ref1[s.name].target, `${s.name}: target differs`);
    }
    assert.ok(readFileSync(join(out, 'dpo', 'model.safetensors')).equals(readFileSync(join(ref, 'dpo', 'model.safetensors'))), 'final DPO weights differ from the uninterrupted run');
    assert.ok(existsSync(r.report.html));
  });

  it('a stage that fails names itself; the stages before it stay finished', async () => {
    const f = join(dir, 'failing.yaml');
    writeFileSync(f, `output_dir: ${join(dir, 'failing')}
stages:
  - {name: base, type: init-model, config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}}
  - name: sft
    type: sft
    config: {model_name_or_path: "\${stages.base.output}", dataset_path: ${join(dir, 'nope.jsonl')}, max_steps: 1, report_to: none}
`);
    await assert.rejects(runPipeline(loadPipeline(f), { console: false, log: () => {} }), (e: Error) => {
      assert.match(e.message, /^stage 'sft' \(sft\) failed: .*nope\.jsonl/);
      return true;
    });
    assert.ok(existsSync(join(dir, 'failing', 'base', STAGE_COMPLETE_FILE)));
    assert.ok(!existsSync(join(dir, 'failing', 'sft', STAGE_COMPLETE_FILE)));
    const plan = await runPipeline(loadPipeline(f), { dryRun: true });
    assert.deepEqual(plan.plan.map((p) => p.action), ['skip', 'run']);
  });
});
