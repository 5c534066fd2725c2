// `alignkit eval-bench` as a user runs it (a separate process): the table and --json on ARC and MMLU with a model
// folder saved from the hash model, the --output file, bad input as one error line with exit code 1, and the
// eval-perplexity / eval-embed commands with their SVG plots.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { saveModel } from '../../../src/models/index.ts';
import { asset, assetsDir, repoRoot, SKIP_NO_ASSETS } from '../../shared_assets.ts';
import { hashModel } from './hash_model.ts';

const tmp = mkdtempSync(join(tmpdir(), 'alignkit-eval-bench-cli-'));
const modelDir = join(tmp, 'model');
after(() => rmSync(tmp, { recursive: true, force: true }));
before(() => {
  const m = hashModel();
  saveModel(m, modelDir, { tokenizerDir: null });
  m.dispose();
});

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(repoRoot, 'test', 'eval', 'harness', 'cli_runner.ts'), ...args], {
    cwd: repoRoot, encoding: 'utf8', timeout: 300_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tokenizer = (): string => asset('tokenizers', 'ortx', 'phi-3-mini');

test('eval-bench: ARC table and --json agree with the library; --output holds every document', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const data = asset('benchmarks', 'arc', 'ARC-Easy-Dev.jsonl');
  const base = ['eval-bench', '--task', 'arc_easy', '--model', modelDir, '--tokenizer', tokenizer(), '--data', data, '--limit', '12'];
  const out = join(tmp, 'arc.json');
  const j = run([...base, '--json', '--output', out]);
  assert.equal(j.code, 0, j.stderr);
  const r = JSON.parse(j.stdout) as { results: Record<string, { n: number; metrics: Record<string, { value: number; stderr: number }> }>; documents: number };
  assert.equal(r.results.arc_easy.n, 12);
  // the first 12 documents of the lm_eval fixture (same model, tokenizer, prompts)
  const fx = JSON.parse(readFileSync(join(repoRoot, 'fixtures', 'harness', 'scores', 'arc_easy_0shot.json'), 'utf8')) as { docs: { metrics: { acc: number } }[] };
  const acc = fx.docs.slice(0, 12).reduce((s, d) => s + d.metrics.acc, 0) / 12;
  assert.equal(r.results.arc_easy.metrics.acc.value, acc);
  const saved = JSON.parse(readFileSync(out, 'utf8')) as { results: { arc_easy: { samples: { context: string; loglikelihoods: number[] }[] } } };
  assert.equal(saved.results.arc_easy.samples.length, 12);
  assert.match(saved.results.arc_easy.samples[0].context, /^Question: Which technology was developed most recently\?\nAnswer:$/);
  const h = run(base);
  assert.equal(h.code, 0, h.stderr);
  assert.match(h.stdout, /^\| Tasks  \|Version\|Filter\|n-shot\| Metric \|   \|Value \|   \|Stderr\|\n/);
  assert.match(h.stdout, new RegExp(`\\|arc_easy\\|\\s+1\\|none\\s+\\|\\s+0\\|acc\\s+\\|↑\\s+\\|${acc.toFixed(4)}\\|±`));
});

test('eval-bench: MMLU folder with test/ and dev/ uses the dev split for 1-shot; groups in the table', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const r = run(['eval-bench', '--task', 'mmlu', '--model', modelDir, '--tokenizer', tokenizer(), '--data', asset('benchmarks', 'mmlu', 'hendrycks_csv'), '--num-fewshot', '1', '--limit', '3', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { results: Record<string, { n: number }>; groups: Record<string, { n: number; metrics: { acc: { value: number } } }>; config: { fewshot: Record<string, string> } };
  assert.deepEqual(Object.keys(j.results).sort(), ['mmlu_abstract_algebra', 'mmlu_anatomy', 'mmlu_high_school_mathematics']);
  assert.equal(j.groups.mmlu.n, 9);
  assert.equal(j.groups.mmlu_stem.n, 9);
  assert.match(j.config.fewshot.mmlu_anatomy, /dev[\\/]anatomy_dev\.csv$/);
  const table = run(['eval-bench', '--task', 'mmlu', '--model', modelDir, '--tokenizer', tokenizer(), '--data', asset('benchmarks', 'mmlu', 'hendrycks_csv'), '--limit', '2']);
  assert.equal(table.code, 0, table.stderr);
  const lines = table.stdout.split('\n');
  assert.match(lines[2], /^\|mmlu +\| +2\|none +\| +\|acc +\|↑ +\|/);
  assert.match(lines[3], /^\| - stem +\| +2\|/);
  assert.match(lines[4], /^\| {2}- abstract_algebra +\| +1\|none +\| +0\|acc/);
  assert.ok(lines.some((l) => /^\| *Groups *\|Version\|/.test(l)), table.stdout);
});

test('eval-bench: bad input is one error line and exit code 1', (t) => {
  const bad = join(tmp, 'bad.jsonl');
  writeFileSync(bad, '{"question": "q", "choices": ["a", "b"], "answer": 3}\n');
  const r = run(['eval-bench', '--format', 'mc-jsonl', '--model', modelDir, '--data', bad]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.trim(), `alignkit eval-bench: ${bad} line 1, field 'answer': 3 is not a valid index into 2 choices`);
  const u = run(['eval-bench', '--task', 'winogrande', '--model', modelDir, '--data', bad]);
  assert.equal(u.code, 1);
  assert.match(u.stderr, /^alignkit eval-bench: unknown task 'winogrande'/);
  const m = run(['eval-bench', '--task', 'arc_easy', '--data', bad]);
  assert.equal(m.code, 1);
  assert.match(m.stderr, /required option '--model <dir>' not specified/);
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
});

test('eval-perplexity and eval-embed: numbers, JSON and SVG plots', (t) => {
  if (assetsDir === null) return t.skip(SKIP_NO_ASSETS);
  const rows = join(tmp, 'texts.jsonl');
  const texts = ['The cat sat on the mat.', 'A dog slept on the rug.', 'Stock markets fell sharply today.', 'Investors sold shares as prices dropped.', 'Photosynthesis turns light into energy.', 'Plants grow toward the sun.'];
  writeFileSync(rows, texts.map((x, i) => JSON.stringify({ text: x, topic: ['pets', 'money', 'plants'][Math.floor(i / 2)] })).join('\n') + '\n');
  const p = run(['eval-perplexity', '--model', modelDir, '--tokenizer', tokenizer(), '--data', rows, '--max-length', '8', '--stride', '4', '--json']);
  assert.equal(p.code, 0, p.stderr);
  const pj = JSON.parse(p.stdout) as { perplexity: number; scored_tokens: number; texts: number };
  assert.equal(pj.texts, 6);
  assert.ok(pj.perplexity > 1 && Number.isFinite(pj.perplexity), `perplexity ${pj.perplexity}`);
  const pca = join(tmp, 'pca.svg');
  const tsneSvg = join(tmp, 'tsne.svg');
  const e = run(['eval-embed', '--model', modelDir, '--tokenizer', tokenizer(), '--data', rows, '--label-field', 'topic', '--pca-svg', pca, '--tsne-svg', tsneSvg, '--json']);
  assert.equal(e.code, 0, e.stderr);
  const ej = JSON.parse(e.stdout) as { texts: number; dimensions: number; silhouette: number; neighbours: { index: number }[][] };
  assert.equal(ej.texts, 6);
  assert.equal(ej.dimensions, 32);
  assert.ok(ej.silhouette >= -1 && ej.silhouette <= 1, `silhouette ${ej.silhouette}`);
  assert.equal(ej.neighbours[0].length, 3);
  for (const f of [pca, tsneSvg]) assert.match(readFileSync(f, 'utf8'), /^<svg [\s\S]*<\/svg>\n$/);
});
