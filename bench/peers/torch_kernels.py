#!/usr/bin/env python3
"""PyTorch eager CPU peer for bench/kernels.ts: fused attention and LM-head cross-entropy.

usage: torch_kernels.py --threads N --cases '[{"kind":"attention", ...}, {"kind":"lmhead", ...}]' [--repeat R]
Prints one JSON object {"library","version","threads","results":[{"fwd_s","fwdbwd_s","peak_mb"}...]}.
Attention uses torch.nn.functional.scaled_dot_product_attention (causal; GQA via repeat_interleave of k/v,
which torch needs on CPU); the LM head is F.linear + F.cross_entropy, the usual unfused PyTorch recipe.
Times are MEDIANS; peak_mb is the growth of the process's max RSS over the case (a rough figure).
"""
import argparse
import json
import os
import resource
import statistics
import time


def median_time(fn, repeat):
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
    ap.add_argument("--cases", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as e:
        print(json.dumps({"error": f"torch not importable: {e}"}))
        return
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results = []
    for c in json.loads(args.cases):
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if c["kind"] == "attention":
            B, Hq, Hkv, T, D = c["batch"], c["headsQ"], c["headsKV"], c["seq"], c["headDim"]
            q = torch.randn(B, Hq, T, D, requires_grad=True)
            k = torch.randn(B, Hkv, T, D, requires_grad=True)
            v = torch.randn(B, Hkv, T, D, requires_grad=True)
            g = torch.randn(B, Hq, T, D)

            def fwd():
                with torch.no_grad():
                    kk = k.repeat_interleave(Hq // Hkv, dim=1)
                    vv = v.repeat_interleave(Hq // Hkv, dim=1)
                    F.scaled_dot_product_attention(q, kk, vv, is_causal=True)

            def fwdbwd():
                kk = k.repeat_interleave(Hq // Hkv, dim=1)
                vv = v.repeat_interleave(Hq // Hkv, dim=1)
                out = F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
                out.backward(g)
                q.grad = k.grad = v.grad = None
        else:
            N, H, V = c["tokens"], c["hidden"], c["vocab"]
            h = (torch.randn(N, H) * 0.5).requires_grad_(True)
            w = (torch.randn(V, H) * 0.02).requires_grad_(True)
            t = torch.randint(0, V, (N,))

            def fwd():
                with torch.no_grad():
                    F.cross_entropy(F.linear(h, w), t)

            def fwdbwd():
                F.cross_entropy(F.linear(h, w), t).backward()
                h.grad = w.grad = None
        f = median_time(fwd, args.repeat)
        fb = median_time(fwdbwd, args.repeat)
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        results.append({"fwd_s": f, "fwdbwd_s": fb, "peak_mb": max(0, rss1 - rss0) / 1024})
    print(json.dumps({"library": "torch", "version": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
