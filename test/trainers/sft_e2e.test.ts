// SFT end to end on the dataset shipped in data/sft/: a tiny chat model (byte-level tokenizer, ChatML template)
// learns it — held-in eval loss falls by a clear margin and greedy generations reproduce the trained answers —
// and a run killed with SIGKILL (after a step, or in the middle of writing a checkpoint) and resumed with
// --resume ends with weights bit-identical to an uninterrupted run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { writeTinyChatModel } from '../../src/demo/tiny_chat.ts';
import { loadModel } from '../../src/models/index.ts';
import { generate } from '../../src/generate/index.ts';
import { loadChatTemplate, loadTokenizer } from '../../src/tokenizer/index.ts';
import { parseConfig, SftConfigSchema } from '../../src/train/config.ts';
import { runSft } from '../../src/trainers/sft.ts';
import { batchNll } from '../../src/trainers/sft_loss.ts';
import { SftDataset } from '../../src/data/sft_dataset.ts';
import { collate } from '../../src/data/collate.ts';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const DATA = join(root, 'data', 'sft', 'tiny_qa.jsonl');
const bin = join(root, 'bin', 'alignkit.mjs');

interface Row {
  prompt?: string;
  completion?: string;
  messages?: { role: string; content: string }[];
}

/** (question, answer) pairs of the shipped dataset, whatever TRL format its rows use. */
function qaPairs(): { q: string; a: string }[] {
  return readFileSync(DATA, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Row)
    .map((r) => {
      if (r.messages) return { q: r.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '', a: r.messages.filter((m) => m.role === 'assistant').at(-1)?.content ?? '' };
      return { q: String(r.prompt), a: String(r.completion) };
    });
}

async function evalLoss(modelDir: string, dataPath: string): Promise<number> {
  const tok = loadTokenizer(modelDir);
  const model = loadModel(modelDir, { trainable: false });
  const ds = await SftDataset.open(dataPath, tok, { maxLength: 512, chatTemplate: loadChatTemplate(modelDir) });
  try {
    let nll = 0;
    let n = 0;
    for (let i = 0; i < ds.length; i += 16) {
      const rows = [];
      for (let j = i; j < Math.min(ds.length, i + 16); j++) rows.push(await ds.get(j));
      const r = batchNll(model, collate(rows, { padTokenId: tok.padId ?? 0 }));
      nll += r.nll;
      n += r.tokens;
    }
    return nll / n;
  } finally {
    await ds.close();
    model.dispose();
  }
}

test('SFT learns the shipped dataset: eval loss falls and greedy answers reproduce held-in completions', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-sft-e2e-'));
  try {
    const base = writeTinyChatModel(join(dir, 'base'), { hidden: 96, layers: 2, heads: 4, kvHeads: 2, seed: 1 });
    const out = join(dir, 'out');
    const before = await evalLoss(base, DATA);
    const cfg = parseConfig(SftConfigSchema, {
      overrides: {
        model_name_or_path: base, dataset_path: DATA, eval_file: DATA, output_dir: out, max_steps: 400, learning_rate: 3e-3, lr_scheduler_type: 'cosine',
        warmup_ratio: 0.05, per_device_train_batch_size: 8, weight_decay: 0, save_strategy: 'no', eval_strategy: 'no', logging_steps: 50, seed: 3, report_to: ['none'],
        disable_tqdm: true, max_length: 512,
      },
    });
    const r = await runSft(cfg, { console: false });
    assert.equal(r.globalStep, 400);
    const after = r.lastEval?.eval_loss as number;
    assert.ok(after < before / 4, `eval loss ${before.toFixed(3)} -> ${after.toFixed(3)}: expected at least a 4x drop`);
    assert.ok(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'tokenizer.json')) && existsSync(join(out, 'metrics.jsonl')));
    // greedy generations of the fine-tuned model (loaded back from its HF folder) reproduce trained answers
    const tok = loadTokenizer(out);
    const model = loadModel(out, { trainable: false });
    try {
      const pairs = qaPairs().slice(0, 6);
      let exact = 0;
      for (const { q, a } of pairs) {
        // prompt/completion strings are trained as plain text (TRL's rule: chat templates are for messages)
        const [g] = generate(model, { inputIds: [tok.encode(q)], maxNewTokens: 48, temperature: 0, stopTokenIds: tok.stopIds });
        const text = tok.decode(g.ids, { skipSpecialTokens: true }).trim();
        if (text === a.trim()) exact++;
      }
      assert.ok(exact >= 5, `only ${exact}/6 held-in answers reproduced exactly`);
    } finally {
      model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { cwd: root, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 180_000 });
}

test('kill -9 after a step or in the middle of a checkpoint, then --resume: bit-identical final weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-sft-resume-'));
  try {
    const base = writeTinyChatModel(join(dir, 'base'), { hidden: 32, layers: 2, heads: 2, kvHeads: 1, seed: 2 });
    const yaml = (out: string) =>
      [
        `model_name_or_path: ${base}`, `dataset_path: ${DATA}`, `output_dir: ${out}`, 'max_steps: 14', 'learning_rate: 0.002', 'per_device_train_batch_size: 4',
        'gradient_accumulation_steps: 2', 'save_steps: 5', 'logging_steps: 1', 'seed: 11', 'dropout: 0.1', 'eval_fraction: 0.1', 'eval_strategy: steps', 'eval_steps: 5',
        'report_to: [tensorboard]', 'disable_tqdm: true', 'max_length: 512',
      ].join('\n');
    const run = (name: string, fault: string | null): string => {
      const out = join(dir, name);
      const cfgFile = join(dir, `${name}.yaml`);
      writeFileSync(cfgFile, yaml(out));
      if (fault) {
        const killed = cli(['sft', '--config', cfgFile], { ALIGNKIT_FAULT_INJECT: fault });
        assert.equal(killed.signal, 'SIGKILL', `${name}: the run was not killed (${killed.status}): ${killed.stderr}`);
        assert.ok(!existsSync(join(out, 'model.safetensors')), `${name}: a final model exists after the crash`);
        const resumed = cli(['sft', '--config', cfgFile, '--resume', '--json']);
        assert.equal(resumed.status, 0, resumed.stderr);
        assert.match(resumed.stdout, /"resumed_from":"[^"]*checkpoint-(5|10)"/);
      } else {
        const r = cli(['sft', '--config', cfgFile, '--json']);
        assert.equal(r.status, 0, r.stderr);
      }
      assert.ok(readdirSync(out).every((f) => !f.includes('staging')), `${name}: staging leftovers`);
      // no duplicated metric lines after the resume
      const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; loss?: number }).filter((m) => m.loss !== undefined).map((m) => m.step);
      assert.deepEqual(steps, Array.from({ length: 14 }, (_, i) => i + 1), `${name}: metrics.jsonl steps`);
      return out;
    };
    const straight = readFileSync(join(run('straight', null), 'model.safetensors'));
    for (const fault of ['after-step:7', 'mid-save:10']) {
      const got = readFileSync(join(run(fault.replace(':', '-'), fault), 'model.safetensors'));
      assert.ok(got.equals(straight), `${fault}: resumed weights differ from the uninterrupted run`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
