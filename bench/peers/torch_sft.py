#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/sft.ts: SFT training steps of a transformers model on the same weights,
the same batch and the same optimizer settings as alignkit's side. One case per process, so the process's
peak RSS belongs to that case alone.

usage: torch_sft.py --threads N --dir MODEL_DIR --spec JSON
  spec: {"mode": "full" | "lora", "lora": {"r", "alpha", "targets": [module-name regexes, full match]} | null,
         "batch": B, "seq": T, "ids": [B*T token ids, row-major], "lr", "weight_decay", "max_grad_norm",
         "warmup": W, "steps": N}
Prints one JSON object: {"library","version","transformers","threads","lora_impl","step_s","samples","cpu_s" (process CPU seconds per timed step),
  "phases": {"zero_grad","fwd","bwd","clip","opt"} (median seconds), "losses",
  "peak_rss_mb" (whole process: VmHWM), "train_peak_rss_mb" (from just before the first step, VmHWM after a
  /proc/self/clear_refs reset; null where the kernel refuses), "rss_before_train_mb", "trainable"}.

One step is the plain eager recipe: opt.zero_grad(); model(input_ids, labels=labels).loss.backward();
clip_grad_norm_(trainable, max_grad_norm); opt.step(). labels = input_ids (HF shifts them inside, so every
position but the last of each row is a target, as on alignkit's side). AdamW with torch's defaults otherwise,
in two groups like Hugging Face's Trainer (and alignkit's weightDecayGroups): no decay for biases, norms and
other 1-D tensors.

LoRA: via peft (get_peft_model with a LoraConfig) when peft is importable, else a small hand-written wrapper
(LoraWrap below, lora_impl "hand-written") with PEFT's math and init: y = base(x) + (alpha / r) * B(A(x)),
A ~ U(+-1/sqrt(in)) (kaiming_uniform with a = sqrt(5)), B = 0, no dropout, base weights frozen. GPT-2's Conv1D
projections (weight [in, out]) are wrapped the same way: the update only needs in/out features.
"""
import argparse
import json
import math
import os
import re
import resource
import statistics
import time


def proc_status_mb(field):
    """VmHWM / VmRSS of this process in MiB, or None when /proc is unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def reset_peak_rss():
    """Resets VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs). False where that is refused."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


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
    torch.manual_seed(0)
    spec = json.loads(args.spec)
    # The whole-process peak, including loading, is what the bench reports; see train_peak_rss_mb for the rest.
    model = AutoModelForCausalLM.from_pretrained(args.dir, dtype=torch.float32)
    model.train()  # dropout is 0 in the bench's configs; train() for the usual recipe

    lora_impl = None
    if spec["mode"] == "lora":
        lo = spec["lora"]
        try:
            from peft import LoraConfig, get_peft_model

            cfg = LoraConfig(r=lo["r"], lora_alpha=lo["alpha"], lora_dropout=0.0, bias="none",
                             target_modules="|".join(f"(?:{t})" for t in lo["targets"]))
            model = get_peft_model(model, cfg)
            lora_impl = "peft"
        except ImportError:
            wrap_lora(torch, model, lo["r"], lo["alpha"], lo["targets"])
            lora_impl = "hand-written"

    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if not (p.ndim < 2 or re.search(r"(^|\.)bias$", n) or re.search(r"norm|ln_\d|ln_f", n, re.I))]
    no_decay = [p for n, p in named if not any(p is q for q in decay)]
    groups = [g for g in ({"params": decay, "weight_decay": spec["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}) if g["params"]]
    opt = torch.optim.AdamW(groups, lr=spec["lr"])
    params = [p for _, p in named]

    B, T = spec["batch"], spec["seq"]
    ids = torch.tensor(spec["ids"], dtype=torch.long).view(B, T)
    labels = ids.clone()

    phases = {k: [] for k in ("zero_grad", "fwd", "bwd", "clip", "opt")}
    samples, losses = [], []

    def step(record):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        loss = model(input_ids=ids, labels=labels, use_cache=False).loss
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"])
        t4 = time.perf_counter()
        opt.step()
        t5 = time.perf_counter()
        losses.append(loss.item())
        if record:
            samples.append(t5 - t0)
            for k, a, b in (("zero_grad", t0, t1), ("fwd", t1, t2), ("bwd", t2, t3), ("clip", t3, t4), ("opt", t4, t5)):
                phases[k].append(b - a)

    rss_before = proc_status_mb("VmRSS")
    load_peak = proc_status_mb("VmHWM")
    reset_ok = reset_peak_rss()
    for _ in range(spec["warmup"]):
        step(False)
    cpu0 = time.process_time()
    for _ in range(spec["steps"]):
        step(True)
    cpu_s = (time.process_time() - cpu0) / spec["steps"]
    train_peak = proc_status_mb("VmHWM")
    ru_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux; never reset
    peak = max(x for x in (load_peak, train_peak, ru_peak) if x is not None)

    print(json.dumps({
        "library": "torch", "version": torch.__version__, "transformers": transformers.__version__,
        "threads": torch.get_num_threads(), "lora_impl": lora_impl,
        "step_s": statistics.median(samples), "samples": samples, "cpu_s": cpu_s,
        "phases": {k: statistics.median(v) for k, v in phases.items()},
        "losses": losses,
        "peak_rss_mb": peak, "train_peak_rss_mb": train_peak if reset_ok else None, "rss_before_train_mb": rss_before,
        "trainable": sum(p.numel() for p in params),
    }))


def wrap_lora(torch, model, r, alpha, targets):
    """Replaces every module whose full name matches one of `targets` (re.fullmatch) by a LoRA wrapper."""
    nn = torch.nn

    class LoraWrap(nn.Module):
        def __init__(self, base, in_features, out_features):
            super().__init__()
            self.base = base
            self.scaling = alpha / r
            self.lora_A = nn.Linear(in_features, r, bias=False)
            self.lora_B = nn.Linear(r, out_features, bias=False)
            nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B.weight)

        def forward(self, x):
            return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling

    for p in model.parameters():
        p.requires_grad_(False)
    pats = [re.compile(t) for t in targets]
    chosen = [(n, m) for n, m in model.named_modules() if n and any(p.fullmatch(n) for p in pats)]
    if not chosen:
        raise SystemExit(f"LoRA: no module matches {targets}")
    for name, mod in chosen:
        if isinstance(mod, nn.Linear):
            fin, fout = mod.in_features, mod.out_features
        else:  # transformers' Conv1D: weight [in, out]
            fin, fout = mod.weight.shape
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoraWrap(mod, fin, fout))


if __name__ == "__main__":
    main()
