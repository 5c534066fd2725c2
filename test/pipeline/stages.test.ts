// Every registered stage type runs inside a pipeline with its trainer's or tool's own config: a tiny model through
// two steps each of KTO, ORPO, SimPO, GRPO and RLOO, and best-of-n with a reward module — each writes its declared
// output, its completion marker, and (where it has one) a target metric with before and after numbers.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';
import { loadPipeline } from '../../src/pipeline/spec.ts';
import { runPipeline } from '../../src/pipeline/run.ts';
import { STAGE_REGISTRY } from '../../src/pipeline/registry.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-pipeline-stages-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const pref = (f: string) => join(root, 'data', 'preference', f);
const toy = join(root, 'src', 'trainers', 'rl', 'toy_task.ts');
const prompts = join(root, 'data', 'rl', 'say_yes_prompts.jsonl');

it('kto, orpo, simpo, grpo, rloo and best-of-n stages run with their own configs', async () => {
  const pairs = `      model_name_or_path: \${stages.base.output}
      eval_file: ${pref('rule_pairs_eval.jsonl')}
      max_steps: 2
      per_device_train_batch_size: 4
      per_device_eval_batch_size: 50
      max_length: 48
      max_prompt_length: 40
      report_to: none
`;
  const rl = `      model_name_or_path: \${stages.base.output}
      dataset_path: ${prompts}
      reward_funcs: ["module:${toy}"]
      max_steps: 2
      report_to: none
`;
  const file = join(dir, 'p.yaml');
  writeFileSync(file, `output_dir: ${join(dir, 'out')}
stages:
  - {name: base, type: init-model, config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}}
  - name: kto
    type: kto
    config:
      dataset_path: ${pref('rule_kto.jsonl')}
${pairs.replace(pref('rule_pairs_eval.jsonl'), pref('rule_kto.jsonl'))}  - name: orpo
    type: orpo
    config:
      dataset_path: ${pref('rule_pairs.jsonl')}
${pairs}  - name: simpo
    type: simpo
    config:
      dataset_path: ${pref('rule_pairs.jsonl')}
${pairs}  - name: grpo
    type: grpo
    config:
      num_generations: 2
      per_device_train_batch_size: 4
      max_completion_length: 4
${rl}  - name: rloo
    type: rloo
    config:
      rloo_k: 2
      per_device_train_batch_size: 4
      response_length: 4
${rl}  - name: bon
    type: best-of-n
    config:
      model: \${stages.base.output}
      prompts: ${prompts}
      scorer: "module:${toy}"
      n: 3
      max_new_tokens: 4
`);
  const r = await runPipeline(loadPipeline(file), { console: false, log: () => {} });
  const s = Object.fromEntries(r.stages.map((x) => [x.name, x]));
  assert.deepEqual(r.stages.map((x) => x.status), Array(7).fill('ran'));
  for (const n of ['kto', 'orpo', 'simpo', 'grpo', 'rloo']) {
    assert.equal(s[n].metrics.global_step, 2, n);
    assert.ok(existsSync(join(dir, 'out', n, 'model.safetensors')), `${n} saved its model`);
    const t = s[n].target;
    assert.ok(t && Number.isFinite(t.before) && Number.isFinite(t.after), `${n}: target ${JSON.stringify(t)}`);
    assert.equal(t?.metric, STAGE_REGISTRY.get(n)?.target?.metric);
  }
  assert.equal(s.grpo.target?.metric, 'mean_reward');
  assert.equal(s.kto.target?.metric, 'eval_loss');
  // best-of-n: the kept responses score at least the mean of all samples; the output is SFT data
  const rows = readFileSync(join(dir, 'out', 'bon', 'best_of_n.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { prompt: string; completion: string; score: number; candidates: { score: number }[] });
  assert.equal(rows.length, 16);
  for (const row of rows) assert.equal(row.score, Math.max(...row.candidates.map((c) => c.score)));
  assert.equal(s.bon.outputs.output, join(dir, 'out', 'bon', 'best_of_n.jsonl'));
  assert.ok((s.bon.target?.after as number) >= (s.bon.target?.before as number));
  assert.equal(s.bon.metrics.prompts, 16);
});
