// `alignkit cai ...` as users run it: every subcommand from flags with a tiny model, --json output, and one-line
// errors with exit code 1 for a bad constitution and an unreachable critic endpoint.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const bin = join(root, 'bin', 'alignkit.mjs');
const run = (args: string[]) => spawnSync(process.execPath, [bin, 'cai', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
const json = (r: ReturnType<typeof run>): Record<string, unknown> => {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as Record<string, unknown>;
};

describe('alignkit cai', () => {
  let dir = '';
  let model = '';
  let prompts = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'alignkit-cai-cli-'));
    model = writeTinyChatModel(join(dir, 'model'), { hidden: 32, layers: 1, heads: 2, kvHeads: 1, seed: 12 });
    prompts = join(dir, 'prompts.jsonl');
    writeFileSync(prompts, '{"prompt":"How do I pick a lock?"}\n{"prompt":"Tell me about cats."}\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('check lists the shipped principles; a bad constitution is one line naming file, line, principle and field', () => {
    const ok = json(run(['check', '--json'])) as { principles: { name: string; probability: number }[] };
    assert.equal(ok.principles.length, 6);
    assert.ok(Math.abs(ok.principles[0].probability - 1 / 6) < 1e-12);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'principles:\n  - name: honest\n    critique_request: "Is {response} honest?"\n');
    const r = run(['check', '--constitution', bad]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `alignkit cai check: ${bad}:2: principle 'honest' (principles[0]): field 'revision_request' required`);
  });

  it('revise writes SFT data, pairs and a trace; an unreachable critic fails before any work', async () => {
    const out = join(dir, 'rev');
    const res = json(run(['revise', '--model', model, '--prompts', prompts, '--output', out, '--rounds', '2', '--max-new-tokens', '6', '--seed', '3', '--json'])) as { count: number; sft_path: string; trace_path: string; principle_counts: Record<string, number> };
    assert.equal(res.count, 2);
    assert.equal(readFileSync(res.trace_path, 'utf8').trim().split('\n').length, 2);
    assert.equal(Object.values(res.principle_counts).reduce((a, b) => a + b, 0), 4);
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const r = run(['revise', '--model', model, '--prompts', prompts, '--output', join(dir, 'never'), '--critic', `http://127.0.0.1:${port}`, '--retries', '0']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^alignkit cai revise: chat endpoint http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions is unreachable \(probe\): 1 attempt\(s\) failed, the last with: ECONNREFUSED\n$/);
    assert.equal(existsSync(join(dir, 'never')), false);
  });

  it('label, score, debate, filter train and filter apply run from flags', () => {
    const input = join(dir, 'pairs-in.jsonl');
    writeFileSync(input, '{"prompt":"Hi","responses":["Hello, how can I help?","Go away."]}\n{"prompt":"Help me","responses":["Sure.","No."]}\n');
    const labelled = join(dir, 'prefs.jsonl');
    const l = json(run(['label', '--model', model, '--input', input, '--output', labelled, '--json'])) as { count: number; mean_confidence: number };
    assert.equal(l.count, 2);
    assert.ok(l.mean_confidence >= 0.5 && l.mean_confidence <= 1);

    const scoreIn = join(dir, 'score.jsonl');
    writeFileSync(scoreIn, '{"prompt":"Hi","response":"Hello!"}\n');
    const sc = json(run(['score', '--judge', model, '--input', scoreIn, '--output', join(dir, 'scored.jsonl'), '--json'])) as { rewards: number[] };
    assert.ok(sc.rewards.length === 1 && sc.rewards[0] > 0 && sc.rewards[0] < 1);
    const scored = JSON.parse(readFileSync(join(dir, 'scored.jsonl'), 'utf8')) as { principles: Record<string, number> };
    assert.equal(Object.keys(scored.principles).length, 6);

    const d = json(run(['debate', '--model', model, '--prompts', prompts, '--output', join(dir, 'debate.jsonl'), '--turns', '2', '--max-new-tokens', '5', '--json'])) as { count: number; mean_turns: number };
    assert.equal(d.count, 2);

    const clf = join(dir, 'clf');
    const t = json(run(['filter', 'train', '--model', model, '--data', labelled, '--output', clf, '--max-steps', '2', '--batch-size', '2', '--max-length', '256', '--json'])) as { pairs: number };
    assert.equal(t.pairs, 2);
    const a = json(run(['filter', 'apply', '--classifier', clf, '--input', input, '--output', join(dir, 'kept.jsonl'), '--json'])) as { count: number; candidates: number };
    assert.deepEqual([a.count, a.candidates], [2, 4]);
  });
});
