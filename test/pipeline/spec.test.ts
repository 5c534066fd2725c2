// Reading a pipeline file: every problem is reported before anything runs, naming the file, line, stage and field;
// references between stages define the order; vars, profiles and --var overrides.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadPipeline } from '../../src/pipeline/spec.ts';
import { ConfigError } from '../../src/train/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'alignkit-pipeline-spec-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function file(text: string): string {
  const f = join(dir, `p${n++}.yaml`);
  writeFileSync(f, text);
  return f;
}

/** The problems loadPipeline reports for a file. */
function problems(f: string, o: Parameters<typeof loadPipeline>[1] = {}): string[] {
  try {
    loadPipeline(f, o);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    return [...e.problems];
  }
  assert.fail('expected the pipeline to be rejected');
}

const SFT = `    config:
      model_name_or_path: \${stages.base.output}
      dataset_path: data/rl/say_yes_sft.jsonl
      max_steps: 2
`;

describe('pipeline files', () => {
  it('a valid file: stages ordered by their references, outputs resolved, seed and output_dir filled in', () => {
    const f = file(`output_dir: ${join(dir, 'out')}
seed: 7
stages:
  - name: dpo
    type: dpo
    config:
      model_name_or_path: \${stages.sft.output}
      dataset_path: data/preference/rule_pairs.jsonl
  - name: sft
    type: sft
${SFT}  - name: base
    type: init-model
    config: {hidden: 16, layers: 1, heads: 2, kv_heads: 1}
`);
    const spec = loadPipeline(f);
    assert.deepEqual(spec.stages.map((s) => s.name), ['base', 'sft', 'dpo']);
    assert.deepEqual(spec.stages.map((s) => s.deps), [[], ['base'], ['sft']]);
    assert.equal(spec.seed, 7);
    assert.equal(spec.stages[1].outputDir, join(dir, 'out', 'sft'));
    assert.deepEqual(spec.stages[0].declaredOutputs, { output: join(dir, 'out', 'base', 'model') });
    assert.equal(spec.stages[2].line, 4);
  });

  it('an unknown stage type, an unknown reference, a missing output key and a bad name: all reported, with lines', () => {
    const f = file(`output_dir: out
stages:
  - name: base
    type: init-modle
  - name: sft
    type: sft
    config:
      model_name_or_path: \${stages.bsae.output}
      dataset_path: \${stages.sft2.output}/x.jsonl
  - name: sft2
    type: sft
    config:
      model_name_or_path: \${stages.sft.weights}
      dataset_path: \${vars.nope}
  - name: 2bad
    type: eval
`);
    const p = problems(f);
    assert.ok(p.some((x) => x.startsWith(`${f}: line 4: stage 'base': key 'type': unknown stage type "init-modle"; known types: init-model, sft,`)), p.join('\n'));
    assert.ok(p.includes(`${f}: line 8: stage 'sft': key 'model_name_or_path': \${stages.bsae.output}: no stage named 'bsae' (stages: base, sft, sft2)`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 13: stage 'sft2': key 'model_name_or_path': \${stages.sft.weights}: stage 'sft' (sft) has no output 'weights' (it has: output)`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 14: stage 'sft2': key 'dataset_path': \${vars.nope}: no such variable (vars: none)`), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith(`${f}: line 15: stage 4: key 'name': must be a name`)), p.join('\n'));
  });

  it('a cycle between stages is an error naming it', () => {
    const f = file(`output_dir: out
stages:
  - name: a
    type: sft
    config: {model_name_or_path: "\${stages.b.output}", dataset_path: d.jsonl}
  - name: b
    type: sft
    config: {model_name_or_path: "\${stages.a.output}", dataset_path: d.jsonl}
`);
    assert.deepEqual(problems(f), [`${f}: the stages reference each other in a cycle: a -> b -> a (each stage needs the output of the next)`]);
    const self = file(`output_dir: out
stages:
  - name: a
    type: sft
    config: {model_name_or_path: "\${stages.a.output}", dataset_path: d.jsonl}
`);
    assert.deepEqual(problems(self), [`${self}: line 5: stage 'a': key 'model_name_or_path': \${stages.a.output}: a stage cannot use its own output`]);
  });

  it('an invalid stage config names the file, line, stage, type and field — the trainer schema\'s own checks', () => {
    const f = file(`output_dir: out
stages:
  - name: base
    type: init-model
    config:
      hidden: 30
      heads: 4
  - name: sft
    type: sft
    config:
      model_name_or_path: \${stages.base.output}
      dataset_path: data/rl/say_yes_sft.jsonl
      learning_rate: -1
      max_seq_length: 64
      output_dir: somewhere
`);
    const p = problems(f);
    assert.ok(p.includes(`${f}: line 7: stage 'base' (init-model): key 'heads': 4 must divide hidden (30)`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 13: stage 'sft' (sft): key 'learning_rate': must be > 0, got -1`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 14: stage 'sft' (sft): key 'max_seq_length': unknown key; it is called 'max_length' now`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 15: stage 'sft' (sft): key 'output_dir': set by the pipeline (the stage folder ${join(process.cwd(), 'out', 'sft')}); remove it`), p.join('\n'));
  });

  it('a missing required field, unknown top-level and stage keys, duplicate names, no stages', () => {
    const f = file(`output_dir: out
stgaes: []
stages:
  - name: a
    type: dpo
    confg: {}
  - name: a
    type: eval
    config: {models: {m: x}}
`);
    const p = problems(f);
    assert.ok(p.includes(`${f}: line 2: key 'stgaes': unknown key (a pipeline file has description, output_dir, seed, vars, profiles, stages)`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 6: stage 1: key 'confg': unknown key; did you mean 'config'? (a stage has name, type, config, description)`), p.join('\n'));
    assert.ok(p.includes(`${f}: line 7: stage 'a': the name is used by an earlier stage`), p.join('\n'));
    assert.ok(p.some((x) => x.startsWith(`${f}: line 3: stage 'a' (dpo): key 'model_name_or_path': required`) || x.startsWith(`${f}: line 4: stage 'a' (dpo): key 'model_name_or_path': required`)), p.join('\n'));
    assert.deepEqual(problems(file('output_dir: out\nstages: []\n')), [`${join(dir, `p${n - 1}.yaml`)}: line 2: key 'stages': required: a non-empty list of stages ({name, type, config})`]);
    assert.match(problems(join(dir, 'missing.yaml'))[0], /missing\.yaml: file not found$/);
    assert.match(problems(file('stages: [a, \n'))[0], /: line \d+: invalid YAML: /);
  });

  it('vars: whole-string references keep their type; profiles and --var override them; unknown ones are errors', () => {
    const f = file(`output_dir: out
vars: {steps: 5, lr: 0.01, name: qa}
profiles: {quick: {steps: 2}}
stages:
  - name: base
    type: init-model
  - name: sft
    type: sft
    config:
      model_name_or_path: \${stages.base.output}
      dataset_path: \${pipeline.dir}/\${vars.name}.jsonl
      max_steps: \${vars.steps}
      learning_rate: \${vars.lr}
`);
    const sft = (o: Parameters<typeof loadPipeline>[1] = {}) => loadPipeline(f, o).stages[1].config;
    assert.deepEqual(sft(), { model_name_or_path: '${stages.base.output}', dataset_path: join(dir, 'qa.jsonl'), max_steps: 5, learning_rate: 0.01 });
    assert.equal(sft({ profile: 'quick' }).max_steps, 2);
    assert.equal(sft({ profile: 'quick', vars: { steps: '9' } }).max_steps, 9);
    assert.deepEqual(problems(f, { vars: { stepz: '1' } }), [`--var stepz: 'stepz' is not one of the vars of ${f} (steps, lr, name)`]);
    assert.deepEqual(problems(f, { profile: 'slow' }), [`${f}: --profile slow: no such profile (the file has: quick)`]);
    // a var of the wrong type is caught by the stage's schema
    assert.ok(problems(f, { vars: { steps: 'many' } }).includes(`${f}: line 12: stage 'sft' (sft): key 'max_steps': must be a number, got 'many' (a string)`));
  });
});
