#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/models.ts: whole transformers models on the same weights as alignkit.

usage: torch_models.py --threads N --dir MODEL_DIR --spec JSON
  spec: {"fwd": {"seq": T} | null, "gen": [{"batch": B, "prompts": [[ids]...], "new": K}...],
         "train": {"seq": T} | null, "ids": [T int token ids for fwd/train], "warmup": W, "repeat": R}
Prints one JSON object {"library","version","threads","fwd_s","gen":[{"s","tokens"}...],"train_s"}.

- fwd: model(ids, logits_to_keep=1) under torch.inference_mode(): the whole body on [1, T] and the LM head on
  the LAST position only (what alignkit's bench computes too).
- gen: model.generate(do_sample=False, use_cache=True, min_new_tokens=max_new_tokens=K, eos_token_id=None),
  with an all-ones attention mask (equal-length prompts: no padding). The generated ids come back so the
  bench can check both sides produce the same greedy continuations.
- train: model(ids, labels=ids).loss.backward() (HF shifts the labels inside; full [1, T, V] logits, the
  usual eager recipe), grads set to None afterwards. No optimizer step.
Times are MEDIANS over `repeat` timed calls after `warmup` untimed ones.
"""
import argparse
import json
import os
import statistics
import time


def median_time(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--spec", required=True)
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
    spec = json.loads(args.spec)
    warmup, repeat = spec["warmup"], spec["repeat"]
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    model.eval()
    out = {"library": "torch", "version": torch.__version__, "transformers": transformers.__version__,
           "threads": torch.get_num_threads(), "fwd_s": None, "gen": [], "train_s": None}

    if spec.get("fwd"):
        ids = torch.tensor([spec["ids"][: spec["fwd"]["seq"]]], dtype=torch.long)

        def fwd():
            with torch.inference_mode():
                model(ids, logits_to_keep=1, use_cache=False)

        out["fwd_s"] = median_time(fwd, warmup, repeat)

    for g in spec.get("gen", []):
        prompts = torch.tensor(g["prompts"], dtype=torch.long)
        mask = torch.ones_like(prompts)
        k = g["new"]
        result = {}

        def gen():
            with torch.inference_mode():
                result["ids"] = model.generate(
                    input_ids=prompts, attention_mask=mask, do_sample=False, use_cache=True,
                    max_new_tokens=k, min_new_tokens=k, eos_token_id=None, pad_token_id=0,
                )

        s = median_time(gen, warmup, repeat)
        out["gen"].append({"s": s, "tokens": result["ids"][:, prompts.shape[1]:].tolist()})

    if spec.get("train"):
        ids = torch.tensor([spec["ids"][: spec["train"]["seq"]]], dtype=torch.long)
        model.train()  # dropout is 0 in these configs; train() only for the usual recipe

        def step():
            loss = model(ids, labels=ids, use_cache=False).loss
            loss.backward()
            for p in model.parameters():
                p.grad = None

        out["train_s"] = median_time(step, warmup, repeat)
        model.eval()

    print(json.dumps(out))


if __name__ == "__main__":
    main()
