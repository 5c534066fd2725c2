// `alignkit demo` end to end, as a user runs it (the CLI in a child process), at the `--quick` size: every stage of
// the bundled pipeline (data/demo/pipeline.yaml) improves its target metric — SFT lowers the eval loss, the reward
// model ranks held-out pairs well above chance, PPO raises the mean reward, DPO raises the preference accuracy — and
// the HTML report with tables and plots is written and its path printed. A second run skips every stage.
// (The full-size demo is the same pipeline with more steps; its timing is in docs/pipeline.md.)
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, it } from 'node:test';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const dir = mkdtempSync(join(tmpdir(), 'alignkit-demo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Target {
  metric: string;
  before: number | null;
  after: number | null;
  improved: boolean | null;
}
interface DemoResult {
  report: { html: string; json: string; markdown: string };
  stages: { name: string; type: string; status: string; target: Target | null; metrics: Record<string, number> }[];
}

const demo = (...args: string[]) => spawnSync(process.execPath, [bin, 'demo', '--quick', '--output', join(dir, 'out'), ...args], { cwd: dir, encoding: 'utf8', timeout: 600_000 });

it('alignkit demo --quick: every stage improves its target metric, and the report is written', () => {
  const p = demo();
  assert.equal(p.status, 0, p.stderr);
  assert.match(p.stderr, /\[1\/7\] base \(init-model\): running/);
  assert.match(p.stderr, /step \d+\/\d+ \(\d+%\)/, 'progress lines (a bar on a terminal)');
  const html = /report: (.+\.html)$/m.exec(p.stdout)?.[1];
  assert.ok(html && existsSync(html), `the report path is printed: ${p.stdout}`);

  const r = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as DemoResult;
  const t = Object.fromEntries(r.stages.map((s) => [s.name, s.target]));
  assert.deepEqual(r.stages.map((s) => s.name), ['base', 'sft', 'reward', 'ppo', 'dpo', 'cai', 'eval']);
  const sft = t.sft as Target;
  assert.equal(sft.metric, 'eval_loss');
  assert.ok((sft.after as number) < (sft.before as number) - 1, `SFT eval loss ${sft.before} -> ${sft.after}`);
  const rm = t.reward as Target;
  assert.equal(rm.metric, 'eval_accuracy');
  assert.ok((rm.after as number) >= 0.8, `reward model accuracy on held-out pairs ${rm.after} (chance 0.5)`);
  const ppo = t.ppo as Target;
  assert.equal(ppo.metric, 'mean_reward');
  assert.ok((ppo.after as number) >= (ppo.before as number) + 0.3, `PPO mean reward ${ppo.before} -> ${ppo.after}`);
  const dpo = t.dpo as Target;
  assert.equal(dpo.metric, 'eval_rewards/accuracies');
  assert.ok((dpo.after as number) >= 0.8 && (dpo.after as number) > (dpo.before as number), `DPO preference accuracy ${dpo.before} -> ${dpo.after}`);
  for (const s of ['sft', 'reward', 'ppo', 'dpo']) assert.equal(t[s]?.improved, true, `${s} improved`);

  const page = readFileSync(html, 'utf8');
  assert.ok((page.match(/<svg /g) ?? []).length >= 6, 'plots of the training curves');
  assert.match(page, /models compared/);
  for (const m of ['base', 'sft', 'ppo', 'dpo']) assert.match(page, new RegExp(`<td>${m}</td>`));
  const cai = r.stages.find((s) => s.name === 'cai');
  assert.equal((cai?.metrics.revisions ?? 0) + (cai?.metrics.skipped ?? 0), 8, 'the CAI pass revised every red-team prompt');
  assert.ok(existsSync(join(dir, 'out', 'cai', 'trace.jsonl')));
  const evalStage = r.stages.find((s) => s.name === 'eval');
  assert.ok((evalStage?.metrics['ppo/reward/say_yes'] as number) > (evalStage?.metrics['sft/reward/say_yes'] as number), 'the eval stage sees PPO\'s gain too');

  const again = demo('--json');
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual((JSON.parse(again.stdout) as DemoResult).stages.map((s) => s.status), ['skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
});
