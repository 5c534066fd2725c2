// Benchmark-harness throughput: MMLU's dev split (the cais JSONL of the shared assets: 57 subjects x 5 = 285
// questions; --quick: the first question of each subject, 57), zero-shot, scored by log-likelihood with the
// SmolLM2-135M shape (random weights: 30 layers, hidden 576, 9 heads / 3 KV heads, MLP 1536, tied embeddings).
// The vocabulary is the GPT-2 tokenizer's (50257, the shared assets' gpt2 tokenizer.json) instead of SmolLM2's
// 49152, since SmolLM2's tokenizer is not among the assets; the LM head is applied to a handful of rows per question,
// so this changes the work by well under 1%.
//
// alignkit: scoreRequest per question, as `alignkit eval bench` runs it (the context once through a KV cache, the
// four " A"/" B"/" C"/" D" continuations as one batch on copies of its keys/values). Prompts are tokenized before
// the clock starts. PyTorch peer (bench/peers/torch_harness.py): the same token ids; per question one batch of
// the four context+continuation rows (what lm-evaluation-harness sends to a HF model), summed continuation
// log-probs. Unit: questions/s; the bench also reports the largest difference between the two sides'
// log-likelihoods and whether the predicted answers agree.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeBackend, withBackend } from '../src/backend/index.ts';
import { initModel, loadModel } from '../src/models/index.ts';
import { loadTokenizer } from '../src/tokenizer/index.ts';
import { encodeRequest, loadBenchmark, scoreRequest } from '../src/eval/harness/index.ts';
import { nativeAddon } from '../src/native/addon.ts';
import { assetsDir } from '../test/shared_assets.ts';
import { registerBench, runPythonPeer, timeIt, type BenchContext } from './common.ts';

const SMOLLM2_SHAPE = { arch: 'llama', vocab: 50257, hidden: 576, layers: 30, heads: 9, kvHeads: 3, intermediate: 1536, tieWordEmbeddings: true, maxPositions: 2048, seed: 3 } as const;

interface PeerResult {
  library: string;
  version: string;
  threads: number;
  seconds: number;
  lls: number[][];
}

async function benchHarness(ctx: BenchContext): Promise<void> {
  const quick = ctx.options.quick;
  const perSubject = quick ? 1 : 5;
  const shape = `SmolLM2-135M MMLU dev ${57 * perSubject} questions 0-shot`;
  if (!ctx.wants('harness', shape)) return;
  if (!nativeBackend || !nativeAddon) {
    ctx.note('harness: native addon not built; skipping');
    return;
  }
  if (assetsDir === null) {
    ctx.note('harness: shared assets not found (../shared/assets or ALIGNKIT_ASSETS); skipping');
    return;
  }
  const bench = await loadBenchmark({ task: 'mmlu', data: join(assetsDir, 'benchmarks', 'mmlu', 'mmlu_dev_cais.jsonl'), numFewshot: 0, limit: perSubject });
  const tok = loadTokenizer(join(assetsDir, 'tokenizers', 'gpt2-gpt-neox-tests'), { requireConfig: false });
  const requests = bench.tasks.flatMap((t) => t.requests.map((r) => encodeRequest(tok, r.context, r.continuations)));
  const tokens = requests.reduce((s, r) => s + r.contextIds.length + r.continuationIds.reduce((a, c) => a + c.length, 0), 0);
  ctx.note(`harness: ${requests.length} questions, ${tokens} prompt + continuation tokens (${(tokens / requests.length).toFixed(0)} per question)`);
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-harness-'));
  try {
    initModel({ ...SMOLLM2_SHAPE, dir }).dispose();
    const reqFile = join(dir, 'requests.json');
    writeFileSync(reqFile, JSON.stringify(requests.map((r) => ({ context: r.contextIds, continuations: r.continuationIds }))));
    const threads = nativeAddon.info().threads;
    const timing = { warmup: 0, repeat: 1, minMs: 0, maxRepeat: 1 };
    // Passive OpenMP waits, as the other torch peers: spinning threads would inflate its times on a shared machine.
    const peer = runPythonPeer('torch_harness.py', ['--threads', String(threads), '--dir', dir, '--requests', reqFile], { OMP_WAIT_POLICY: 'PASSIVE' }) as PeerResult | null;
    withBackend(nativeBackend!, () => {
      const model = loadModel(dir, { trainable: false });
      try {
        scoreRequest(model, requests[0]); // warm-up (first-call allocations)
        let lls: number[][] = [];
        const { seconds } = timeIt(() => (lls = requests.map((r) => scoreRequest(model, r))), timing);
        if (peer) {
          let maxDiff = 0;
          let sameAnswer = 0;
          const argmax = (xs: readonly number[]) => xs.indexOf(Math.max(...xs));
          lls.forEach((row, i) => {
            row.forEach((v, j) => (maxDiff = Math.max(maxDiff, Math.abs(v - peer.lls[i][j]))));
            if (argmax(row) === argmax(peer.lls[i])) sameAnswer++;
          });
          ctx.note(`harness: log-likelihoods vs torch: max |diff| ${maxDiff.toExponential(2)}; same predicted answer on ${sameAnswer}/${lls.length} questions`);
        } else ctx.note('harness: peer unavailable (python3 with torch + transformers not importable)');
        ctx.report({ bench: 'harness', shape, unit: 'q/s', value: requests.length / seconds, peer: peer ? `torch ${peer.version.split('+')[0]}` : null, peer_value: peer ? requests.length / peer.seconds : null });
      } finally {
        model.dispose();
      }
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

registerBench('harness', benchHarness);
