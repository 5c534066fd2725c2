// The runs dashboard's data: run folders found under the root, metrics read incrementally (after a step) while
// a run is still writing (a partial last line is skipped), sample generations, and the file names the trainers
// use (MetricsLogger's metrics.jsonl, the RL trainers' samples.jsonl).
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { MetricsLogger } from '../../src/train/logging.ts';
import { SAMPLES_FILE as ROLLOUT_SAMPLES_FILE } from '../../src/trainers/rl/rollout.ts';
import { listRuns, runMetrics, runSamples, SAMPLES_FILE } from '../../src/studio/runs.ts';
import { testStudio } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'alignkit-studio-runs-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('runs', () => {
  it('finds run folders, reads metrics after a step, skips a partial last line, reads samples', async () => {
    const sft = new MetricsLogger(join(root, 'sft'), { tensorboard: false, console: false, totalSteps: 3 });
    for (let step = 1; step <= 3; step++) sft.log(step, { loss: 3 - step / 2, learning_rate: 1e-4, tokens_per_second: 1000 + step });
    sft.close();
    const ppo = new MetricsLogger(join(root, 'rl', 'ppo'), { tensorboard: false, console: false, totalSteps: 2 });
    ppo.log(1, { 'objective/kl': 0.1, 'objective/entropy': 2.5, 'objective/rlhf_reward': 0.3 });
    ppo.close();
    appendFileSync(join(root, 'rl', 'ppo', 'metrics.jsonl'), '{"step": 2, "objective/kl": 0.'); // mid-write
    writeFileSync(join(root, 'rl', 'ppo', SAMPLES_FILE), [JSON.stringify({ step: 1, iteration: 0, prompt: 'Say yes', response: 'yes', score: 1 }), '{"step": 2, "prom'].join('\n'));
    mkdirSync(join(root, 'empty'));

    const runs = listRuns(root);
    assert.deepEqual(runs.map((r) => [r.name, r.records, r.lastStep, r.hasSamples]), [['rl/ppo', 1, 1, true], ['sft', 3, 3, false]]);
    assert.deepEqual(runs[1].metrics, ['loss', 'learning_rate', 'tokens_per_second']);
    assert.deepEqual(runMetrics(root, 'sft', 1).map((r) => [r.step, r.loss]), [[2, 2], [3, 1.5]]);
    assert.deepEqual(runMetrics(root, 'rl/ppo').map((r) => r['objective/kl']), [0.1]);
    assert.deepEqual(runSamples(root, 'rl/ppo'), [{ step: 1, prompt: 'Say yes', response: 'yes', score: 1 }]);
    assert.equal(SAMPLES_FILE, ROLLOUT_SAMPLES_FILE);

    const s = testStudio({ runsDir: root });
    const listed = await s.call('GET', '/api/runs', { as: 'auditor' });
    assert.deepEqual(listed.json.runs.map((r: { name: string }) => r.name), ['rl/ppo', 'sft']);
    const polled = await s.call('GET', '/api/runs/metrics?run=sft&after=2', { as: 'admin' });
    assert.deepEqual(polled.json.records.map((r: { step: number }) => r.step), [3]);
    assert.equal((await s.call('GET', '/api/runs/samples?run=rl%2Fppo', { as: 'admin' })).json.samples.length, 1);
  });
});
