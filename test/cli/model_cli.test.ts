// Model commands end to end: init-model -> model-info / score / generate, their agreement, and bad input.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
function json<T>(args: string[]): T {
  const r = run([...args, '--json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

describe('model commands', () => {
  let dir = '';
  let model = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-cli-'));
    model = join(dir, 'tiny-llama');
    const r = json<{ parameters: number; vocab: number }>(['init-model', '--arch', 'llama', '--hidden', '32', '--layers', '2', '--heads', '4', '--kv-heads', '2', '--vocab', '97', '--seed', '5', '--out', model]);
    assert.equal(r.vocab, 97);
    assert.ok(r.parameters > 0);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('init-model writes a Hugging Face folder', () => {
    assert.deepEqual(readdirSync(model).sort(), ['config.json', 'generation_config.json', 'model.safetensors']);
  });

  it('info --model reports the shape and memory estimates', () => {
    const info = json<{ modelType: string; layers: number; kvHeads: number; parameters: number; memoryGiB: { inference: number; fullFineTune: number; lora: number } }>(['info', '--model', model]);
    assert.equal(info.modelType, 'llama');
    assert.equal(info.layers, 2);
    assert.equal(info.kvHeads, 2);
    assert.ok(info.memoryGiB.fullFineTune > info.memoryGiB.lora && info.memoryGiB.lora > 0);
  });

  it('greedy generate is deterministic and its log-probs are what score computes (one code path)', () => {
    const g1 = json<{ ids: number[]; logprobs: number[]; finishReason: string }>(['generate', '--model', model, '--prompt-ids', '1,2,3', '--max-new-tokens', '6', '--temperature', '0']);
    const g2 = json<{ ids: number[] }>(['generate', '--model', model, '--prompt-ids', '1,2,3', '--max-new-tokens', '6', '--temperature', '0']);
    assert.deepEqual(g2.ids, g1.ids);
    assert.equal(g1.ids.length, 6);
    const s = json<{ logprobs: number[]; nll: number; perplexity: number }>(['score', '--model', model, '--ids', [1, 2, 3, ...g1.ids].join(',')]);
    const tail = s.logprobs.slice(2); // log p(new token i | prefix)
    tail.forEach((lp, i) => assert.ok(Math.abs(lp - g1.logprobs[i]) < 1e-5, `token ${i}: score ${lp} vs generate ${g1.logprobs[i]}`));
    assert.ok(Math.abs(s.perplexity - Math.exp(s.nll)) < 1e-9);
  });

  it('seeded sampling repeats for the same seed', () => {
    const a = json<{ ids: number[] }>(['generate', '--model', model, '--prompt-ids', '4,5', '--max-new-tokens', '8', '--seed', '11', '--top-k', '20']);
    const b = json<{ ids: number[] }>(['generate', '--model', model, '--prompt-ids', '4,5', '--max-new-tokens', '8', '--seed', '11', '--top-k', '20']);
    assert.deepEqual(b.ids, a.ids);
  });

  it('convert: folder -> GGUF -> folder keeps the greedy continuation', () => {
    const gguf = join(dir, 'tiny.gguf');
    const back = join(dir, 'back');
    const w = json<{ architecture: string; tensors: number }>(['convert', model, gguf, '--type', 'F32']);
    assert.equal(w.architecture, 'llama');
    json(['convert', gguf, back]);
    const a = json<{ ids: number[] }>(['generate', '--model', model, '--prompt-ids', '7,8,9', '--max-new-tokens', '5', '--temperature', '0']);
    const b = json<{ ids: number[] }>(['generate', '--model', back, '--prompt-ids', '7,8,9', '--max-new-tokens', '5', '--temperature', '0']);
    assert.deepEqual(b.ids, a.ids);
    const bad = run(['convert', model, join(dir, 'out-folder')]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /OUT must end in \.gguf/);
  });

  it('bad input: one-line errors, non-zero exit, nothing written', () => {
    const unknown = run(['init-model', '--arch', 'bert', '--hidden', '8', '--layers', '1', '--heads', '1', '--vocab', '10', '--out', join(dir, 'x')]);
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.stderr, /unknown --arch 'bert'/);
    assert.equal(existsSync(join(dir, 'x')), false);
    const missing = run(['score', '--model', join(dir, 'nope'), '--ids', '1,2']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /nope/);
    assert.doesNotMatch(missing.stderr, /\n\s+at /);
    const both = run(['score', '--model', model]);
    assert.match(both.stderr, /exactly one of --text and --ids/);
    const outOfVocab = run(['score', '--model', model, '--ids', '1,500']);
    assert.notEqual(outOfVocab.code, 0);
    assert.match(outOfVocab.stderr, /500/);
  });
});
