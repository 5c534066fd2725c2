#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/dpo.ts: one DPO optimizer step, the plain eager recipe, on the same weights.

usage: torch_dpo.py --threads N --dir MODEL_DIR --spec JSON
  spec: {"pairs": N, "prompt": P, "completion": C, "beta": b, "lr": lr, "max_grad_norm": g,
         "input_ids": [[2N rows of P + C ids]], "warmup": W, "repeat": R}
  Rows 0..N-1 are prompt + chosen, rows N..2N-1 prompt + rejected (alignkit's collatePairs layout). No padding:
  every row has P + C real tokens, so the attention mask is all ones.
Prints one JSON object {"library","version","transformers","threads","step_s","step_samples","phases",
"peak_rss_mb","ref_fwd_s","ref_logps"}.

One step (what a hand-written eager DPO loop does; TRL's DPOTrainer adds bookkeeping around the same work):
  1. policy forward on the 2N concatenated rows: model(input_ids, attention_mask).logits  [2N, T, V] (full
     logits, as HF computes them), log_softmax over the vocabulary, gather of the completion tokens (labels
     shifted by one, -100 on the prompt), per-row sums;
  2. the same on a SECOND model copy (the reference) under torch.no_grad();
  3. the sigmoid DPO loss -logsigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r))), mean over pairs; backward;
  4. clip_grad_norm_(max_grad_norm), AdamW step (lr, weight_decay 0 like alignkit's DpoConfig default),
     zero_grad(set_to_none=True).
Times are MEDIANS over `repeat` timed steps after `warmup` untimed ones; `phases` are medians per phase of the
timed steps. peak_rss_mb: ru_maxrss of this process (both model copies, AdamW state, activations).
"""
import argparse
import json
import os
import resource
import statistics
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--spec", required=True)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    try:
        import torch
        import torch.nn.functional as F
        import transformers
        from transformers import AutoModelForCausalLM
    except ImportError as e:
        print(json.dumps({"error": f"torch/transformers not importable: {e}"}))
        return
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    n_pairs, prompt = spec["pairs"], spec["prompt"]
    beta, warmup, repeat = spec["beta"], spec["warmup"], spec["repeat"]

    policy = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    policy.train()  # dropout is 0 in this config; train() only for the usual recipe
    ref = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    ref.eval()
    ref.requires_grad_(False)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=spec["lr"], weight_decay=0.0)

    input_ids = torch.tensor(spec["input_ids"], dtype=torch.long)  # [2N, T]
    attention_mask = torch.ones_like(input_ids)
    labels = input_ids.clone()
    labels[:, :prompt] = -100  # score the completion only
    # logits at t predict token t + 1
    targets = labels[:, 1:]
    scored = targets != -100
    gather_ids = targets.clamp(min=0).unsqueeze(-1)

    def row_logps(model):
        logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits  # [2N, T, V]
        logp = torch.log_softmax(logits[:, :-1, :], dim=-1).gather(-1, gather_ids).squeeze(-1)  # [2N, T-1]
        return (logp * scored).sum(-1)  # [2N]

    phase_names = ["policy_fwd", "ref_fwd", "backward", "clip", "adamw"]

    ref_logps = {}

    def step(phases):
        t0 = time.perf_counter()
        pi = row_logps(policy)
        t1 = time.perf_counter()
        with torch.no_grad():
            rf = row_logps(ref)
        t2 = time.perf_counter()
        ref_logps.setdefault("v", rf.tolist())
        margin = (pi[:n_pairs] - rf[:n_pairs]) - (pi[n_pairs:] - rf[n_pairs:])
        loss = -F.logsigmoid(beta * margin).mean()
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), spec["max_grad_norm"])
        t4 = time.perf_counter()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        if phases is not None:
            for name, dt in zip(phase_names, [t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4]):
                phases.setdefault(name, []).append(dt)
        return t5 - t0

    for _ in range(warmup):
        step(None)
    phases = {}
    samples = [step(phases) for _ in range(repeat)]
    print(json.dumps({
        "library": "torch", "version": torch.__version__, "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "step_s": statistics.median(samples), "step_samples": samples,
        "phases": {k: statistics.median(v) for k, v in phases.items()},
        "ref_fwd_s": statistics.median(phases["ref_fwd"]),
        "ref_logps": ref_logps["v"],  # [2N] summed completion log-probs under the reference, for a cross-check
        # Linux reports ru_maxrss in KiB
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    main()
