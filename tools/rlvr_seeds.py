#!/usr/bin/env python3
"""Run `gorlhf demo --task arithmetic` for several seeds and tabulate them.

Usage (from the repository root):

    go build -o /tmp/gorlhf ./cmd/gorlhf
    python3 tools/rlvr_seeds.py --gorlhf /tmp/gorlhf --seeds 1,2,3 --out /tmp/rlvr
    python3 tools/rlvr_seeds.py --gorlhf /tmp/gorlhf --turns 3 --out /tmp/rlvr3   # multi-turn

Each seed runs the whole recipe (SFT, GRPO, evaluations) in its own folder
<out>/seed<N>; its wall time is measured around the process. With --no-run
the script only reads existing <out>/seed<N>/summary.json files (and the
wall time from <out>/seed<N>.wall when present). Standard library only.
"""

import argparse
import json
import os
import subprocess
import sys
import time


def run_seed(gorlhf, seed, out, threads, turns):
    folder = os.path.join(out, "seed%d" % seed)
    cmd = [gorlhf, "demo", "--task", "arithmetic", "--seed", str(seed), "--output_dir", folder,
           "--threads", str(threads), "--turns", str(turns), "--quiet"]
    start = time.time()
    with open(os.path.join(out, "seed%d.out" % seed), "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.time() - start
    with open(os.path.join(out, "seed%d.wall" % seed), "w") as f:
        f.write("%.1f\n" % wall)
    return wall


def read_seed(out, seed):
    folder = os.path.join(out, "seed%d" % seed)
    with open(os.path.join(folder, "summary.json")) as f:
        s = json.load(f)["Summary"]
    wall = None
    wall_path = os.path.join(out, "seed%d.wall" % seed)
    if os.path.exists(wall_path):
        with open(wall_path) as f:
            wall = float(f.read())
    return s, wall


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gorlhf", default="gorlhf", help="the gorlhf binary")
    ap.add_argument("--seeds", default="1,2,3", help="comma-separated seeds")
    ap.add_argument("--out", default="rlvr-seeds", help="folder for the runs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--turns", type=int, default=1, help="answers per GRPO episode (> 1: multi-turn)")
    ap.add_argument("--no-run", action="store_true", help="only tabulate existing runs")
    a = ap.parse_args()
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    os.makedirs(a.out, exist_ok=True)
    if a.no_run and a.turns > 1:
        multi_turn_table(a.out, seeds)
        return
    if not a.no_run:
        for seed in seeds:
            print("seed %d ..." % seed, file=sys.stderr, flush=True)
            run_seed(a.gorlhf, seed, a.out, a.threads, a.turns)
    if a.turns > 1:
        multi_turn_table(a.out, seeds)
        return

    print("| seed | SFT greedy | GRPO greedy | gain | SFT sampled | GRPO sampled | gain | SFT time | GRPO time | wall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    gains = []
    curves = []
    for seed in seeds:
        s, wall = read_seed(a.out, seed)
        sft, rl = s["SFT"], s["RL"]
        g = 100 * (rl["Greedy"] - sft["Greedy"])
        gs = 100 * (rl["Sampled"] - sft["Sampled"])
        gains.append((g, gs))
        print("| %d | %.1f %% | %.1f %% | %+.1f | %.1f %% | %.1f %% | %+.1f | %.0f s | %.0f s | %s |" % (
            seed, 100 * sft["Greedy"], 100 * rl["Greedy"], g, 100 * sft["Sampled"], 100 * rl["Sampled"], gs,
            s["SFTWall"] / 1e9, s["RLWall"] / 1e9, "%.0f s" % wall if wall is not None else "?"))
        curves.append((seed, s["Curve"]))
    n = len(gains)
    print("\nmean gain over %d seeds: %+.1f points greedy, %+.1f points sampled; smallest greedy gain %+.1f" % (
        n, sum(g for g, _ in gains) / n, sum(g for _, g in gains) / n, min(g for g, _ in gains)))
    print("\nheld-out greedy accuracy (%) during GRPO:")
    for seed, curve in curves:
        pts = ", ".join("%d: %.1f" % (p["iteration"], 100 * p["accuracy"]) for p in curve)
        print("  seed %d: %s" % (seed, pts))


def multi_turn_table(out, seeds):
    """The --turns table: held-out episode return (share of answers right) from the
    GRPO eval curve (iteration 0 is the SFT model), and single answers before/after."""
    print("| seed | SFT episodes | GRPO episodes | gain | SFT single greedy | GRPO single greedy | gain | SFT time | GRPO time | wall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    gains, curves = [], []
    for seed in seeds:
        s, wall = read_seed(out, seed)
        c = s["Curve"]
        g = 100 * (c[-1]["accuracy"] - c[0]["accuracy"])
        gs = 100 * (s["RL"]["Greedy"] - s["SFT"]["Greedy"])
        gains.append(g)
        print("| %d | %.1f %% | %.1f %% | %+.1f | %.1f %% | %.1f %% | %+.1f | %.0f s | %.0f s | %s |" % (
            seed, 100 * c[0]["accuracy"], 100 * c[-1]["accuracy"], g, 100 * s["SFT"]["Greedy"], 100 * s["RL"]["Greedy"], gs,
            s["SFTWall"] / 1e9, s["RLWall"] / 1e9, "%.0f s" % wall if wall is not None else "?"))
        curves.append((seed, c))
    print("\nmean episode-return gain over %d seeds: %+.1f points; smallest %+.1f" % (len(gains), sum(gains) / len(gains), min(gains)))
    print("\nheld-out greedy accuracy per turn, SFT -> GRPO:")
    for seed in seeds:
        s, _ = read_seed(out, seed)
        pairs = zip(s.get("TurnsSFT") or [], s.get("TurnsRL") or [])
        print("  seed %d: %s" % (seed, ", ".join("turn %d %.1f -> %.1f %%" % (k + 1, 100 * a, 100 * b) for k, (a, b) in enumerate(pairs))))
    print("\nheld-out episode return (%) during GRPO:")
    for seed, curve in curves:
        print("  seed %d: %s" % (seed, ", ".join("%d: %.1f" % (p["iteration"], 100 * p["accuracy"]) for p in curve)))


if __name__ == "__main__":
    main()
