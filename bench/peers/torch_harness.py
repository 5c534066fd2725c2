#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/harness.ts: multiple-choice log-likelihoods on the same weights and token ids.

usage: torch_harness.py --threads N --dir MODEL_DIR --requests FILE
  FILE: JSON list of {"context": [ids], "continuations": [[ids], ...]}
Prints one JSON object {"library","version","threads","seconds","lls": [[sum log p(continuation | context)]]}.

Per question, one batch of the context+continuation rows (right-padded, attention mask), under
torch.inference_mode(); the log-probs of each continuation's tokens are gathered from log_softmax of the logits
and summed, as lm-evaluation-harness's HF model does for loglikelihood requests. One untimed warm-up question,
then one timed pass over all questions.
"""
import argparse
import json
import os
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--requests", required=True)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    try:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        print(json.dumps({"error": f"torch/transformers not importable: {e}"}))
        return
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    with open(args.requests) as f:
        requests = json.load(f)
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    model.eval()

    def score(req):
        ctx = req["context"]
        rows = [ctx + c for c in req["continuations"]]
        T = max(len(r) for r in rows)
        ids = torch.zeros((len(rows), T), dtype=torch.long)
        mask = torch.zeros((len(rows), T), dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
            mask[b, : len(r)] = 1
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        out = []
        for b, c in enumerate(req["continuations"]):
            s = 0.0
            for k, tok in enumerate(c):
                s += logp[b, len(ctx) + k - 1, tok].item()
            out.append(s)
        return out

    score(requests[0])
    t0 = time.perf_counter()
    lls = [score(r) for r in requests]
    seconds = time.perf_counter() - t0
    print(json.dumps({"library": "torch", "version": torch.__version__, "threads": torch.get_num_threads(), "seconds": seconds, "lls": lls}))


if __name__ == "__main__":
    main()
