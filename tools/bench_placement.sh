#!/usr/bin/env bash
# Placed roles vs in-process, side by side on this machine (docs/BENCHMARKS.md):
#   1) `gorlhf demo` with --launcher inproc and --launcher local, alternating rounds:
#      wall time and the mean seconds per iteration of every phase (metrics.jsonl time_*);
#   2) the experience phase of a GAE run (reference, critic and reward model in separate
#      worker processes) with the calls overlapped (default) vs one after another
#      (--train.no_overlap), alternating rounds.
# Usage: tools/bench_placement.sh [ROUNDS] [THREADS] [ITERATIONS]
set -euo pipefail
ROUNDS=${1:-2}; THREADS=${2:-2}; ITERS=${3:-40}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
cd "$ROOT" && CGO_ENABLED=0 go build -o "$W/gorlhf" ./cmd/gorlhf
G=$W/gorlhf
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p')  threads: $THREADS  iterations: $ITERS  date: $(date -u +%F)"

phases() { # metrics.jsonl → mean seconds per phase over train rows
  python3 - "$1" <<'PY'
import json, sys, collections
s, n = collections.defaultdict(float), 0
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("split", "train") != "train" or "time_iteration" not in r: continue
    n += 1
    for k, v in r.items():
        if k.startswith("time_"): s[k[5:]] += v
print("  ".join(f"{k}={v/n:.3f}" for k, v in sorted(s.items())))
PY
}

echo "== 1) gorlhf demo: inproc vs local"
for r in $(seq "$ROUNDS"); do
  for l in inproc local; do
    out=$W/demo-$l-$r
    start=$(date +%s.%N)
    "$G" demo --threads "$THREADS" --quiet --iterations "$ITERS" --launcher "$l" --output_dir "$out" >/dev/null
    end=$(date +%s.%N)
    printf 'round %d %-6s wall %6.1fs  ' "$r" "$l" "$(echo "$end - $start" | bc)"
    phases "$out/rl_gae/metrics.jsonl"
  done
  cmp "$W/demo-inproc-$r/rl_gae/model.safetensors" "$W/demo-local-$r/rl_gae/model.safetensors" && echo "round $r: final models byte-identical"
done

echo "== 2) experience phase: overlapped vs sequential (GAE, reward model, local launcher, --threads 1 per process)"
RM=$W/demo-inproc-1/reward_model
python3 - "$W/p.jsonl" <<'PY'
import json, sys
names = ["Lily", "Tom", "Sue", "Max", "Ben", "Mia"]
with open(sys.argv[1], "w") as f:
    for i in range(32): f.write(json.dumps({"input": f"Once upon a time, {names[i % 6]} saw a {i}."}) + "\n")
PY
ARGS=(--data.prompt_dataset "$W/p.jsonl" --reward.model_name_or_path "$RM" --rollout.batch_size 8 --rollout.n_samples_per_prompt 4
  --rollout.max_new_tokens 48 --train.batch_size 32 --train.micro_batch_size 8 --train.max_iterations 6 --threads 1 --quiet --launcher local)
for r in $(seq "$ROUNDS"); do
  for mode in overlap sequential; do
    extra=(); [ $mode = sequential ] && extra=(--train.no_overlap)
    out=$W/exp-$mode-$r
    "$G" train ppo "${ARGS[@]}" "${extra[@]}" --ckpt.output_dir "$out"
    printf 'round %d %-10s ' "$r" "$mode"; phases "$out/metrics.jsonl"
  done
done
