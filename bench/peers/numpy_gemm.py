#!/usr/bin/env python3
"""NumPy (BLAS) SGEMM peer for bench/gemm.ts.

usage: numpy_gemm.py --threads N --cases '[{"m":..,"n":..,"k":..,"transA":false,"transB":false}, ...]'
                     [--repeat R] [--min-ms T]
Prints one JSON object: {"library", "version", "blas", "threads", "results": [{"seconds", "gflops"}, ...]}
in the order of the cases. Times are MEDIANS of C = op(A) @ op(B) written into a preallocated C.
A transposed operand is a transposed view of row-major storage, so BLAS sees the same layout and
transpose flag as alignkit's sgemm (no copies).
"""
import argparse
import json
import os
import sys


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--min-ms", type=float, default=200.0)
    args = ap.parse_args()

    # The BLAS thread pool is sized when NumPy loads: set every common knob before the import.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    try:
        import numpy as np
    except ImportError as e:  # the caller treats this as "peer unavailable"
        print(json.dumps({"error": f"numpy not importable: {e}"}))
        return
    limiter = None
    try:  # optional: enforce the limit even if the BLAS ignored the environment
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(limits=args.threads)
    except ImportError:
        pass

    import time

    blas = "unknown"
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {}).get("name", "unknown")
    except Exception:
        pass

    rng = np.random.default_rng(0)
    results = []
    for case in json.loads(args.cases):
        m, n, k = case["m"], case["n"], case["k"]
        a_store = (rng.random((k, m) if case.get("transA") else (m, k), dtype=np.float32) - 0.5)
        b_store = (rng.random((n, k) if case.get("transB") else (k, n), dtype=np.float32) - 0.5)
        a = a_store.T if case.get("transA") else a_store
        b = b_store.T if case.get("transB") else b_store
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)  # warm-up
        samples = []
        total = 0.0
        while len(samples) < args.repeat or (total * 1e3 < args.min_ms and len(samples) < 50):
            t0 = time.perf_counter()
            np.matmul(a, b, out=c)
            dt = time.perf_counter() - t0
            samples.append(dt)
            total += dt
        samples.sort()
        h = len(samples) // 2
        med = samples[h] if len(samples) % 2 else 0.5 * (samples[h - 1] + samples[h])
        results.append({"seconds": med, "gflops": 2.0 * m * n * k / med / 1e9})
    if limiter is not None:
        limiter.unregister() if hasattr(limiter, "unregister") else None
    print(json.dumps({"library": "numpy", "version": np.__version__, "blas": blas, "threads": args.threads, "results": results}))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report, do not crash the bench
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
        sys.exit(0)
