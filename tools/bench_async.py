#!/usr/bin/env python3
"""Tabulates tools/bench_async.sh: per run, the median and mean seconds per
RL iteration (time_iteration of the train rows), the generation time in
the iteration's own path (time_generation: sync, and async dynamic
filtering's extra rounds) and overlapped (time_async_generation), the
time waiting for the queue, the staleness, and the final held-out score (the last eval
row's reward: the normalised RM score for the sentiment task, greedy
accuracy for the arithmetic task); then per task the medians over seeds.

usage: python3 tools/bench_async.py OUTDIR
"""
import json
import os
import statistics
import sys


def rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run(out, task, mode, seed):
    sub = "rl_gae" if task == "sentiment" else "grpo"
    path = os.path.join(out, f"{task}-{mode}-{seed}", sub, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    rs = rows(path)
    tr = [r for r in rs if r.get("split") == "train"]
    ev = [r for r in rs if r.get("split") == "eval"]
    if not tr or not ev:
        return None
    it = [r["time_iteration"] for r in tr]
    gen = [r.get("time_generation", 0) for r in tr]  # in the iteration's own path
    agen = [r.get("time_async_generation", 0) for r in tr]  # overlapped (async)
    wait = [r.get("time_async_wait", 0) for r in tr]
    return {
        "iters": len(tr),
        "median": statistics.median(it),
        "mean": statistics.mean(it),
        "rl_wall": sum(it),
        "gen": statistics.mean(gen),
        "agen": statistics.mean(agen),
        "wait": statistics.mean(wait),
        "stale": statistics.mean(r.get("async_staleness_mean", 0) for r in tr),
        "final": ev[-1]["reward"],
        "start": ev[0]["reward"],
    }


def main():
    out = sys.argv[1]
    seeds = sorted({int(d.rsplit("-", 1)[1]) for d in os.listdir(out) if d.count("-") == 2 and not d.endswith(".log")})
    for task in ("sentiment", "arithmetic"):
        print(f"\n{task}")
        print("| seed | mode | iterations | s/iteration median | mean | generation s (in the iteration) | overlapped generation s | async wait s | staleness | held-out start → final |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|")
        agg = {"sync": [], "async": []}
        for seed in seeds:
            for mode in ("sync", "async"):
                r = run(out, task, mode, seed)
                if r is None:
                    continue
                agg[mode].append(r)
                print(f"| {seed} | {mode} | {r['iters']} | {r['median']:.2f} | {r['mean']:.2f} | {r['gen']:.3f} | {r['agen']:.3f} | {r['wait']:.3f} | {r['stale']:.2f} | {r['start']:.3f} → {r['final']:.3f} |")
        if agg["sync"] and agg["async"]:
            ms = statistics.median(r["median"] for r in agg["sync"])
            ma = statistics.median(r["median"] for r in agg["async"])
            fs = [r["final"] for r in agg["sync"]]
            fa = [r["final"] for r in agg["async"]]
            print(f"\nmedian s/iteration: sync {ms:.2f}, async {ma:.2f} (speed-up {ms / ma:.2f}x); "
                  f"final held-out: sync {min(fs):.3f}-{max(fs):.3f} (median {statistics.median(fs):.3f}), "
                  f"async {min(fa):.3f}-{max(fa):.3f} (median {statistics.median(fa):.3f})")


if __name__ == "__main__":
    main()
