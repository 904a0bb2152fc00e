#!/usr/bin/env python3
"""Time torch.matmul the way `gorlhf bench matmul` times its GEMM kernels.

Run both on the same machine, one after the other, and compare GFLOP/s:

    gorlhf bench matmul --n 1024 --threads 2
    /usr/bin/python3 tools/bench_matmul.py --n 1024 --threads 2

Same flags and output shape as the Go command: C(m×n) = A·B with an inner
dimension k, optional stored transposes, the median of --reps timed calls
after one warm-up call, and --json for one JSON object.

Debian's PyTorch 1.13 does its f32 GEMM through the system BLAS (OpenBLAS).
OpenBLAS 0.3.21 does not recognise recent Xeons and falls back to its SSE3
"Prescott" kernels; gorlhf sets OPENBLAS_CORETYPE (SkylakeX with AVX-512,
Haswell with AVX2) before it opens the library, and so does this script by
default (--openblas-coretype auto), so both sides use the same kernels.
Pass --openblas-coretype none to keep the library's own detection.
"""

import argparse
import json
import os
import statistics
import sys
import time


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def coretype_hint(choice):
    """The OPENBLAS_CORETYPE to set, or None (gorlhf's rule for 'auto')."""
    if choice == "none" or "OPENBLAS_CORETYPE" in os.environ:
        return None
    if choice != "auto":
        return choice
    flags = cpu_flags()
    if {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        return "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    return None


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1024, help="size of the square product")
    p.add_argument("--m", type=int, default=0, help="rows of C (0 = --n)")
    p.add_argument("--k", type=int, default=0, help="inner dimension (0 = --n)")
    p.add_argument("--trans-a", action="store_true", help="A is stored transposed (k×m)")
    p.add_argument("--trans-b", action="store_true", help="B is stored transposed (n×k)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions after one warm-up call")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    p.add_argument("--openblas-coretype", default="auto",
                   help="OPENBLAS_CORETYPE to set before importing torch: auto, none, or a core name")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    a = p.parse_args(argv)
    a.m = a.m or a.n
    a.k = a.k or a.n
    if min(a.m, a.n, a.k) < 1 or a.reps < 1 or a.threads < 1:
        p.error("sizes, --reps and --threads must be >= 1")
    return a


def main(argv):
    args = parse_args(argv)
    core = coretype_hint(args.openblas_coretype)
    if core:
        os.environ["OPENBLAS_CORETYPE"] = core  # must precede loading the library
    import torch  # noqa: E402  (after the environment is set)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m, n, k = args.m, args.n, args.k
    a = torch.rand(k, m).t() if args.trans_a else torch.rand(m, k)
    b = torch.rand(n, k).t() if args.trans_b else torch.rand(k, n)
    c = torch.empty(m, n)

    torch.matmul(a, b, out=c)  # warm-up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        torch.matmul(a, b, out=c)
        times.append(time.perf_counter() - t0)
    flop = 2.0 * m * n * k
    median = statistics.median(times)
    result = {
        "kernel": "torch.matmul",
        "median_ms": median * 1e3,
        "gflops": flop / median / 1e9,
        "best_gflops": flop / min(times) / 1e9,
    }
    if args.json:
        print(json.dumps({
            "m": m, "n": n, "k": k, "trans_a": args.trans_a, "trans_b": args.trans_b,
            "threads": torch.get_num_threads(), "reps": args.reps, "torch": torch.__version__,
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""), "results": [result],
        }))
        return 0
    print(f"torch {torch.__version__}, threads={torch.get_num_threads()}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")
    print(f"C({m}x{n}) = A·B, k={k}, transA={args.trans_a} transB={args.trans_b}, "
          f"median of {args.reps} reps after a warm-up")
    print(f"{'kernel':<16} {'median ms':>12} {'GFLOP/s':>10} {'best':>10}")
    print(f"{result['kernel']:<16} {result['median_ms']:12.3f} {result['gflops']:10.1f} {result['best_gflops']:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
