#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/ppo.ts: PPO iterations written as a plain eager loop, on the same weights.

usage: torch_ppo.py --threads N --dir MODEL_DIR --spec JSON
  spec: {"prompts": [[ids]], "new_tokens": R, "ppo_epochs": E, "temperature": t, "kl_coef": b, "gamma": g,
         "lam": l, "cliprange": e, "cliprange_value": ev, "vf_coef": c, "lr": lr, "max_grad_norm": m, "seed": s,
         "warmup": W, "repeat": N}
Prints one JSON object {"library","version","threads","phases","samples","peak_rss_mb","mean_logp"}.

One iteration (the work of TRL's PPOTrainer per batch, without its bookkeeping; every prompt has the same length
and every response exactly new_tokens tokens, so there is no padding):
  1. generation: policy.generate(do_sample, temperature, top_k 0, no EOS stop) with the KV cache;
  2. scoring under no_grad: the policy's logits at the response positions / temperature -> log_softmax -> gather,
     an nn.Linear(hidden, 1) value head on the last hidden state; the same log-probs from a second copy (the
     reference); a third copy with a one-label score head (AutoModelForSequenceClassification) scores each row;
  3. training: rewards = -kl_coef * (logp - ref) per token, + score on the last token; GAE (gamma, lam); whitened
     advantages; returns = advantages + values; then ppo_epochs passes, one minibatch of all rows each: forward
     with grad, clipped policy loss + vf_coef * clipped value loss, backward, clip_grad_norm_, AdamW, zero_grad.
Times are medians over `repeat` iterations after `warmup` untimed ones. peak_rss_mb: ru_maxrss of this process.
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
        import transformers
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    except ImportError as e:
        print(json.dumps({"error": f"torch/transformers not importable: {e}"}))
        return
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    spec = json.loads(args.spec)
    torch.manual_seed(spec["seed"])
    R, T = spec["new_tokens"], spec["temperature"]

    policy = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    policy.generation_config.eos_token_id = None
    policy.generation_config.pad_token_id = 0
    hidden = policy.config.hidden_size
    v_head = torch.nn.Linear(hidden, 1)
    ref = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32).eval().requires_grad_(False)
    rm = AutoModelForSequenceClassification.from_pretrained(args.dir, num_labels=1, dtype=torch.float32).eval().requires_grad_(False)
    rm.config.pad_token_id = 0
    params = list(policy.parameters()) + list(v_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)

    prompts = torch.tensor(spec["prompts"], dtype=torch.long)
    B, P = prompts.shape

    def logps_values(model, ids, with_values):
        out = model(input_ids=ids, use_cache=False, output_hidden_states=with_values)
        logits = out.logits[:, P - 1 : -1, :] / T  # positions predicting the response tokens
        lp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, P:].unsqueeze(-1)).squeeze(-1)  # [B, R]
        values = v_head(out.hidden_states[-1][:, P - 1 : -1, :]).squeeze(-1) if with_values else None
        return lp, values

    def whiten(x):
        return (x - x.mean()) / torch.sqrt(x.var() + 1e-8)

    def iteration():
        t0 = time.perf_counter()
        policy.eval()
        with torch.no_grad():
            ids = policy.generate(prompts, attention_mask=torch.ones_like(prompts), do_sample=True, max_new_tokens=R,
                                  temperature=T, top_k=0, top_p=1.0)
        assert ids.shape[1] == P + R, ids.shape
        t1 = time.perf_counter()
        with torch.no_grad():
            old_lp, old_v = logps_values(policy, ids, True)
            ref_lp, _ = logps_values(ref, ids, False)
            scores = rm(input_ids=ids).logits[:, 0]
        t2 = time.perf_counter()
        policy.train()
        with torch.no_grad():
            rewards = -spec["kl_coef"] * (old_lp - ref_lp)
            rewards[:, -1] += scores
            adv = torch.zeros_like(rewards)
            last = torch.zeros(B)
            for t in reversed(range(R)):
                nv = old_v[:, t + 1] if t + 1 < R else torch.zeros(B)
                delta = rewards[:, t] + spec["gamma"] * nv - old_v[:, t]
                last = delta + spec["gamma"] * spec["lam"] * last
                adv[:, t] = last
            returns = adv + old_v
            adv = whiten(adv)
        eps, eps_v = spec["cliprange"], spec["cliprange_value"]
        for _ in range(spec["ppo_epochs"]):
            perm = torch.randperm(B)
            mb = ids[perm]
            lp, v = logps_values(policy, mb, True)
            ratio = torch.exp(lp - old_lp[perm])
            a = adv[perm]
            pg = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - eps, 1 + eps)).mean()
            vc = old_v[perm] + torch.clamp(v - old_v[perm], -eps_v, eps_v)
            vf = 0.5 * torch.max((v - returns[perm]) ** 2, (vc - returns[perm]) ** 2).mean()
            loss = pg + spec["vf_coef"] * vf
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"])
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        t3 = time.perf_counter()
        return {"generation": t1 - t0, "scoring": t2 - t1, "training": t3 - t2, "total": t3 - t0}, old_lp.mean().item()

    samples = []
    mean_logp = None
    for i in range(spec["warmup"] + spec["repeat"]):
        s, m = iteration()
        if i >= spec["warmup"]:
            samples.append(s)
            if mean_logp is None:
                mean_logp = m
    phases = {k: statistics.median(s[k] for s in samples) for k in samples[0]}
    print(json.dumps({
        "library": "torch", "version": torch.__version__, "threads": torch.get_num_threads(), "phases": phases,
        "samples": samples, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "mean_logp": mean_logp,
    }))


if __name__ == "__main__":
    main()
