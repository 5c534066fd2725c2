// Evaluation-metric throughput: corpus BLEU (sacreBLEU semantics, 13a) and ROUGE-1/2/L (rouge-score
// semantics, no stemmer) on generated sentence pairs (100k; 10k with --quick), in thousands of segments per
// second, against sacrebleu and rouge_score in Python when they are importable (bench/peers/eval_peers.py);
// otherwise the peer column stays empty with a note. Both sides read the same generated files and the peer
// also reports its score, which must equal alignkit's.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { corpusBleu } from '../src/eval/bleu.ts';
import { RougeScorer } from '../src/eval/rouge.ts';
import { registerBench, runPythonPeer, timeIt, type BenchContext } from './common.ts';

const WORDS = 'the a of to in and is was for on with as by at from that this it he she they we said new year government people time city market report company police week day state country president minister court water school world house family party group money music game team'.split(' ');

/** Deterministic sentence pairs: a reference and a perturbed hypothesis (drops, substitutions, punctuation). */
function generatePairs(n: number, seed: number): { hyps: string[]; refs: string[] } {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  const hyps: string[] = [], refs: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 8 + Math.floor(next() * 22);
    const ref: string[] = [];
    for (let k = 0; k < len; k++) ref.push(WORDS[Math.floor(next() * WORDS.length)]);
    const hyp = ref.filter(() => next() > 0.1).map((w) => (next() < 0.15 ? WORDS[Math.floor(next() * WORDS.length)] : w));
    const cap = (t: string[]) => t.join(' ').replace(/^./, (c) => c.toUpperCase()) + (next() < 0.8 ? '.' : ' ,');
    refs.push(cap(ref));
    hyps.push(cap(hyp));
  }
  return { hyps, refs };
}

interface PeerResult {
  library: string;
  version: string;
  seconds: number;
  score: number;
}

async function benchEval(ctx: BenchContext): Promise<void> {
  const n = ctx.options.quick ? 10_000 : 100_000;
  const shape = `${n / 1000}k pairs`;
  const wantBleu = ctx.wants('eval-bleu', shape), wantRouge = ctx.wants('eval-rouge', shape);
  if (!wantBleu && !wantRouge) return;
  const { hyps, refs } = generatePairs(n, 20240601);
  const dir = mkdtempSync(join(tmpdir(), 'alignkit-bench-eval-'));
  try {
    writeFileSync(join(dir, 'hyp.txt'), hyps.join('\n') + '\n');
    writeFileSync(join(dir, 'ref.txt'), refs.join('\n') + '\n');
    const repeat = ctx.options.quick ? 1 : 3;
    const timing = { warmup: 0, repeat, minMs: 0, maxRepeat: repeat };
    if (wantBleu) {
      let score = 0;
      const { seconds } = timeIt(() => (score = corpusBleu(hyps, [refs]).score), timing);
      const peer = runPythonPeer('eval_peers.py', ['--metric', 'bleu', '--hyp', join(dir, 'hyp.txt'), '--ref', join(dir, 'ref.txt'), '--repeat', String(repeat)]) as PeerResult | null;
      if (peer === null) ctx.note('eval-bleu: peer unavailable (python3 with sacrebleu not importable)');
      else if (Math.abs(peer.score - score) > 1e-9) ctx.note(`eval-bleu: score differs from ${peer.library}: ${score} vs ${peer.score}`);
      ctx.report({ bench: 'eval-bleu', shape, unit: 'ksent/s', value: n / seconds / 1e3, peer: peer ? `sacrebleu ${peer.version}` : null, peer_value: peer ? n / peer.seconds / 1e3 : null });
    }
    if (wantRouge) {
      const scorer = new RougeScorer(['rouge1', 'rouge2', 'rougeL']);
      let f = 0;
      const { seconds } = timeIt(() => {
        f = 0;
        for (let i = 0; i < n; i++) f += scorer.score(refs[i], hyps[i]).rougeL.fmeasure;
        f /= n;
      }, timing);
      const peer = runPythonPeer('eval_peers.py', ['--metric', 'rouge', '--hyp', join(dir, 'hyp.txt'), '--ref', join(dir, 'ref.txt'), '--repeat', String(repeat)]) as PeerResult | null;
      if (peer === null) ctx.note('eval-rouge: peer unavailable (python3 with rouge_score not importable)');
      else if (Math.abs(peer.score - f) > 1e-9) ctx.note(`eval-rouge: mean rougeL F differs from ${peer.library}: ${f} vs ${peer.score}`);
      ctx.report({ bench: 'eval-rouge', shape: `${shape} rouge1+2+L`, unit: 'ksent/s', value: n / seconds / 1e3, peer: peer ? `rouge_score ${peer.version}` : null, peer_value: peer ? n / peer.seconds / 1e3 : null });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

registerBench('eval', benchEval);
