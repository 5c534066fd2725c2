#!/usr/bin/env python3
"""sacrebleu / rouge_score peer for bench/eval.ts.

usage: eval_peers.py --metric bleu|rouge --hyp FILE --ref FILE [--repeat R]
Prints one JSON object {"library", "version", "seconds", "score"}: the MEDIAN seconds of scoring the whole
corpus (sacrebleu.corpus_bleu with defaults; rouge_score RougeScorer(['rouge1','rouge2','rougeL']) per pair)
and the score (BLEU, or the mean rougeL F1) so the caller can check both sides agree.
When the library is missing it prints {"error": ...} and exits 0; the bench then reports 'peer unavailable'.
"""
import argparse
import json
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--metric", choices=["bleu", "rouge"], required=True)
    ap.add_argument("--hyp", required=True)
    ap.add_argument("--ref", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with open(args.hyp, encoding="utf-8") as f:
        hyps = [line.rstrip("\n") for line in f]
    with open(args.ref, encoding="utf-8") as f:
        refs = [line.rstrip("\n") for line in f]

    if args.metric == "bleu":
        try:
            import sacrebleu
        except ImportError as e:
            print(json.dumps({"error": f"sacrebleu not importable: {e}"}))
            return
        lib, version = "sacrebleu", sacrebleu.__version__

        def run():
            return sacrebleu.corpus_bleu(hyps, [refs]).score
    else:
        try:
            import rouge_score
            from rouge_score import rouge_scorer
        except ImportError as e:
            print(json.dumps({"error": f"rouge_score not importable: {e}"}))
            return
        lib, version = "rouge_score", getattr(rouge_score, "__version__", "unknown")
        scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"])

        def run():
            total = 0.0
            for h, r in zip(hyps, refs):
                total += scorer.score(r, h)["rougeL"].fmeasure
            return total / len(hyps)

    times = []
    score = None
    for _ in range(max(1, args.repeat)):
        t0 = time.perf_counter()
        score = run()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"library": lib, "version": version, "seconds": statistics.median(times), "score": score}))


if __name__ == "__main__":
    main()
