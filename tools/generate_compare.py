#!/usr/bin/env python3
"""Side-by-side rollout benchmark: `gorlhf bench generate` (prefix sharing
on and off) and the PyTorch 1.13 twin tools/generate_bench.py, alternating
in rounds so that machine noise hits every contender alike; prints medians,
ratios and the machine load.

Defaults are the issue's bars: 64 prompts × n=8, generate 64, prompt 64
(gorlhf vs PyTorch) and prompt 256 (prefix sharing vs none).

PyTorch runs with its best OpenBLAS kernel for this CPU: before the rounds,
each OPENBLAS_CORETYPE of --coretypes (and OpenBLAS's own choice, "default")
times the first workload in alternating probe rounds; the fastest median is
printed and used for every PyTorch round.

Run: /usr/bin/python3 tools/generate_compare.py [--rounds 3] [--threads 2]
       [--gorlhf /path/to/gorlhf] [--gemm avx512] [--prompt-lens 64,256]
       [--dtypes bf16] [--coretypes Haswell,SkylakeX,Zen] [--probe-rounds 2]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys


def uptime():
    try:
        with open("/proc/loadavg") as f:
            return "load average " + " ".join(f.read().split()[:3])
    except OSError:
        return "load average unknown"


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gorlhf", default="", help="gorlhf binary (default: go build ./cmd/gorlhf)")
    ap.add_argument("--gemm", default="", help="gorlhf GEMM kernel (default: automatic)")
    ap.add_argument("--prompt-lens", default="64,256")
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--gen-len", type=int, default=64)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch (e.g. where it is not installed)")
    ap.add_argument("--torch-share-prefill", action="store_true", help="also time PyTorch with one prefill per prompt")
    ap.add_argument("--dtypes", default="", help="also time gorlhf with these --dtype weight formats (e.g. bf16,f16)")
    ap.add_argument("--coretypes", default="Haswell,SkylakeX,Zen", help="OPENBLAS_CORETYPE values to probe for PyTorch")
    ap.add_argument("--probe-rounds", type=int, default=2, help="alternating probe rounds per core type")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = a.gorlhf
    if not binary:
        binary = "/tmp/gorlhf-generate-bench"
        subprocess.run(["go", "build", "-o", binary, "./cmd/gorlhf"], check=True, cwd=root)
    # With a gorlhf kernel (not BLAS), keep OpenBLAS (loaded to probe it)
    # from parking spinning worker threads; PyTorch keeps the default.
    genv = dict(os.environ)
    if a.gemm and not a.gemm.startswith("blas"):
        genv["OPENBLAS_NUM_THREADS"] = "1"
    common = ["--prompts", str(a.prompts), "--n", str(a.n), "--gen-len", str(a.gen_len)]
    print(f"before: {uptime()}", flush=True)
    tenv = dict(os.environ)
    if not a.no_torch:
        tenv = pick_coretype(a, root)
    rows = {}
    for plen in [int(x) for x in a.prompt_lens.split(",")]:
        size = common + ["--prompt-len", str(plen)]
        contenders = {
            "gorlhf": [binary, "bench", "generate", "--json", "--threads", str(a.threads)] + size,
            "gorlhf-no-sharing": [binary, "bench", "generate", "--json", "--no-prefix-sharing", "--threads", str(a.threads)] + size,
        }
        for dt in filter(None, a.dtypes.split(",")):
            contenders[f"gorlhf-{dt}"] = [binary, "bench", "generate", "--json", "--dtype", dt, "--threads", str(a.threads)] + size
        if a.gemm:
            for c in contenders.values():
                c += ["--gemm", a.gemm]
        if not a.no_torch:
            torch = [sys.executable, os.path.join(root, "tools", "generate_bench.py"), "--json", "--threads", str(a.threads)] + size
            contenders["torch"] = torch
            if a.torch_share_prefill:
                contenders["torch-share-prefill"] = torch + ["--share-prefill"]
        for r in range(a.rounds):
            for name, cmd in contenders.items():
                res = run_json(cmd, tenv if name.startswith("torch") else genv)
                rows.setdefault((plen, name), []).append(res)
                print(f"  round {r + 1} prompt {plen} {name}: {res['tokens_per_sec']:.0f} tok/s", flush=True)
    print(f"after: {uptime()}\n")
    print(f"{'prompt':>6} {'contender':<20} {'tok/s':>8} {'TTFT ms':>8} {'RSS MB':>7} {'KV blocks':>10} {'vs torch':>9}")
    for plen in sorted({p for p, _ in rows}):
        med = {n: statistics.median(r["tokens_per_sec"] for r in v) for (p, n), v in rows.items() if p == plen}
        for name, tps in sorted(med.items(), key=lambda kv: -kv[1]):
            rs = rows[(plen, name)]
            ttft = statistics.median(r["ttft_ms_median"] for r in rs)
            rss = max(r["peak_rss_mb"] for r in rs)
            kv = rs[0].get("kv_blocks_peak", "")
            vs = f"{tps / med['torch']:.2f}x" if "torch" in med else ""
            if name.startswith("torch"):
                name += f" ({tenv.get('OPENBLAS_CORETYPE', 'default')})"
            print(f"{plen:>6} {name:<20} {tps:>8.0f} {ttft:>8.0f} {rss:>7.0f} {kv!s:>10} {vs:>9}")
        if "gorlhf-no-sharing" in med:
            print(f"{plen:>6} prefix sharing speed-up: {med['gorlhf'] / med['gorlhf-no-sharing']:.2f}x")
    print(f"(medians of {a.rounds} alternating rounds, {a.threads} threads; engine {rows[next(iter(rows))][0]['engine']})")


def pick_coretype(a, root):
    """Times PyTorch on the first workload under each OPENBLAS_CORETYPE
    (alternating probe rounds) and returns the environment of the fastest."""
    plen = a.prompt_lens.split(",")[0]
    cmd = [sys.executable, os.path.join(root, "tools", "generate_bench.py"), "--json", "--threads", str(a.threads),
           "--prompts", str(a.prompts), "--n", str(a.n), "--gen-len", str(a.gen_len), "--prompt-len", plen]
    types = ["default"] + [t for t in a.coretypes.split(",") if t]
    got = {}
    for r in range(a.probe_rounds):
        for t in types:
            env = dict(os.environ)
            env.pop("OPENBLAS_CORETYPE", None)
            if t != "default":
                env["OPENBLAS_CORETYPE"] = t
            got.setdefault(t, []).append(run_json(cmd, env)["tokens_per_sec"])
    med = {t: statistics.median(v) for t, v in got.items()}
    best = max(med, key=med.get)
    print("PyTorch OPENBLAS_CORETYPE probe (tok/s, median of %d): %s → using %s" % (
        a.probe_rounds, ", ".join(f"{t} {v:.0f}" for t, v in med.items()), best), flush=True)
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    if best != "default":
        env["OPENBLAS_CORETYPE"] = best
    return env


if __name__ == "__main__":
    main()
