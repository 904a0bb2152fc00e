#!/usr/bin/env python3
"""Single-stream (and multi-stream) greedy decode, side by side: gorlhf
(`gorlhf bench decode`, one line per weight format) and llama.cpp through
node-llama-cpp's prebuilt CPU binaries (tools/gguf-greedy/bench.mjs) on the
same F32 weights: a llama2.c checkpoint for gorlhf, its GGUF (`gorlhf
convert --to gguf`) for llama.cpp. Rounds alternate (llama.cpp, gorlhf,
llama.cpp, …) so machine noise hits both alike; prints medians, ratios
and the load average.

Run: /usr/bin/python3 tools/decode_compare.py --model /tmp/decode-bench/tiny26m.bin
       [--gguf M.gguf] [--rounds 5] [--threads 2] [--gen-len 128] [--streams 1]
       [--dtypes f32,bf16,f16] [--node-path /tmp/gguf-node/node_modules] [--gorlhf BIN]
The model: /usr/bin/python3 tools/decode_make_llama.py /tmp/decode-bench/tiny26m.bin
(and tok512.bin copied next to it as tokenizer.bin for the GGUF export).
"""
import argparse
import json
import os
import statistics
import subprocess


def load():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_json_lines(cmd, env=None, timeout=900):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env, timeout=timeout).stdout
    return [json.loads(line) for line in out.strip().splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="llama2.c checkpoint (gorlhf)")
    ap.add_argument("--gguf", default="", help="its GGUF (default: MODEL with .gguf; made with gorlhf convert if missing)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--gen-len", type=int, default=128)
    ap.add_argument("--streams", type=int, default=1, help="gorlhf streams (llama.cpp runs single-stream only)")
    ap.add_argument("--dtypes", default="f32,bf16,f16")
    ap.add_argument("--gemm", default="", help="gorlhf --gemm (default: auto)")
    ap.add_argument("--node-path", default="/tmp/gguf-node/node_modules")
    ap.add_argument("--no-llama-cpp", action="store_true")
    ap.add_argument("--gorlhf", default="")
    ap.add_argument("--llama-timeout", type=int, default=180, help="seconds before a llama.cpp round counts as stalled")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = a.gorlhf or "/tmp/gorlhf-decode-bench"
    if not a.gorlhf:
        subprocess.run(["go", "build", "-o", binary, "./cmd/gorlhf"], check=True, cwd=root)
    gguf = a.gguf or os.path.splitext(a.model)[0] + ".gguf"
    if not a.no_llama_cpp and not os.path.exists(gguf):
        subprocess.run([binary, "convert", "--model", a.model, "--to", "gguf", "--out", gguf], check=True)
    env = dict(os.environ, NODE_PATH=a.node_path)
    g_cmd = [binary, "bench", "decode", "--model", a.model, "--threads", str(a.threads), "--gen-len", str(a.gen_len),
             "--streams", str(a.streams), "--dtypes", a.dtypes, "--rounds", "1", "--json"]
    if a.gemm:
        g_cmd += ["--gemm", a.gemm]
    l_cmd = ["node", os.path.join(root, "tools/gguf-greedy/bench.mjs"), gguf, str(a.gen_len), "1", str(a.threads)]
    tps, tpc = {}, {}
    print(f"load average before: {load()}")
    for r in range(a.rounds):
        if not a.no_llama_cpp:
            try:
                lines = run_json_lines(l_cmd, env, timeout=a.llama_timeout)
            except subprocess.TimeoutExpired:
                # llama.cpp's workers spin-wait for each other; on an
                # oversubscribed machine a round can stall for minutes
                print(f"round {r + 1}: llama.cpp stalled past {a.llama_timeout} s (not counted)", flush=True)
                lines = []
            for line in lines:
                tps.setdefault("llama.cpp f32", []).append(line["tokens_per_sec_median"])
                tpc.setdefault("llama.cpp f32", []).append(line["tokens_per_cpu_sec_median"])
        for line in run_json_lines(g_cmd):
            tps.setdefault(f"gorlhf {line['dtype']}", []).append(line["tokens_per_sec_median"])
            tpc.setdefault(f"gorlhf {line['dtype']}", []).append(line["tokens_per_cpu_sec_median"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in tps.items()) + f"  (load {load()})", flush=True)
    print(f"\n{a.streams} stream(s) × {a.gen_len} greedy tokens, {a.threads} threads, medians of {a.rounds} alternating rounds:")
    for what, d in (("tok/s (wall)", tps), ("tok per CPU-second", tpc)):
        med = {k: statistics.median(v) for k, v in d.items()}
        base = med.get("llama.cpp f32")
        print(f" {what}:")
        for k, v in med.items():
            ratio = f"  ({v / base:.2f}× llama.cpp)" if base else ""
            print(f"  {k:16s} {v:8.1f}{ratio}")
        if "gorlhf f32" in med:
            for k, v in med.items():
                if k.startswith("gorlhf") and k != "gorlhf f32":
                    print(f"  {k} / gorlhf f32 = {v / med['gorlhf f32']:.2f}")
    print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
