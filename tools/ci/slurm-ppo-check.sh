#!/usr/bin/env bash
# A small PPO run (GAE, KL reference: actor, ref, critic and rollout in their
# own ranks, the rule reward in the driver) across the two nodes of a real
# local Slurm (tools/ci/slurm-local.sh) must equal the same run in one
# process: the final actor and critic weights byte for byte, and
# metrics.jsonl line for line with the timings left out.
#
#   1) srun -N2 -n<count> --kill-on-bad-exit=1 gorlhf train ppo --launcher slurm ...
#   2) the same through sbatch --wait deploy/slurm/ppo.sbatch (unchanged)
#   3) gorlhf train ppo --launcher inproc ... (the reference)
#
# Every task gets the same command line. The local nodes n1 and n2 are both
# 127.0.0.1 and their names do not resolve here, so the check passes
# --driver_addr 127.0.0.1:PORT and --worker_host 127.0.0.1 to every task; on a
# real cluster the node names resolve and neither flag is needed. The GEMM
# kernel and threads are pinned (--gemm, --threads) because they are part of
# the config digest every rank must agree on, and of the bit-identical bar.
#
# Needs root (to start Slurm). Starts the cluster and always stops it (by
# PID); every Slurm command runs under timeout. The last line is
#   slurm: P passed, F failed
# and the exit status is non-zero when any check failed.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
cd "$ROOT"
CGO_ENABLED=0 go build -o "$W/gorlhf" ./cmd/gorlhf
chmod 755 "$W"
trap '"$ROOT/tools/ci/slurm-local.sh" stop; rm -rf "$W"' EXIT
tools/ci/slurm-local.sh start
SLURM_CONF=$(tools/ci/slurm-local.sh conf)
export SLURM_CONF
cd "$W"

PASSED=0 FAILED=0
pass() { PASSED=$((PASSED + 1)); echo "PASS $*"; }
failed() { FAILED=$((FAILED + 1)); echo "FAIL $*"; }

# same_metrics A B: the two metrics.jsonl files agree line for line, every
# key but the wall-clock ones (time, time_*, tokens_per_sec*).
same_metrics() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" "$2" <<'PY'
import json, sys
def rows(path):
    with open(path) as f:
        return [{k: v for k, v in json.loads(line).items()
                 if not (k.startswith("time") or k.startswith("tokens_per_sec"))}
                for line in f if line.strip()]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
if a != b:
    for i, (x, y) in enumerate(zip(a, b)):
        for k in sorted(set(x) | set(y)):
            if x.get(k) != y.get(k):
                print(f"  line {i+1} {k}: {x.get(k)!r} != {y.get(k)!r}")
    if len(a) != len(b):
        print(f"  {len(a)} lines != {len(b)} lines")
    sys.exit(1)
if not a:
    print("  no metrics")
    sys.exit(1)
PY
  elif command -v jq >/dev/null 2>&1; then
    local f='with_entries(select((.key | startswith("time") or startswith("tokens_per_sec")) | not))'
    [ -s "$1" ] && cmp -s <(jq -cS "$f" "$1") <(jq -cS "$f" "$2")
  else
    echo "  neither python3 nor jq: cannot compare metrics"
    return 1
  fi
}

# compare NAME DIR: DIR's final actor, critic and metrics equal the in-process run's.
compare() {
  local f
  for f in model.safetensors critic/model.safetensors; do
    if cmp "$W/inproc/$f" "$2/$f"; then pass "$1: $f identical to inproc"; else failed "$1: $f differs from inproc"; fi
  done
  if same_metrics "$W/inproc/metrics.jsonl" "$2/metrics.jsonl"; then
    pass "$1: metrics.jsonl equal to inproc (timings aside)"
  else
    failed "$1: metrics.jsonl differs from inproc"
  fi
}

# run NAME CMD...: run CMD with its output in $W/NAME.log, shown on failure.
run() {
  local name=$1; shift
  if "$@" >"$W/$name.log" 2>&1; then
    pass "$name: ran"
  else
    failed "$name: exit status $?"
    tail -n 40 "$W/$name.log" | sed 's/^/  /'
    return 1
  fi
}

ANIMALS=(cat dog bird fish frog bear)
for i in $(seq 0 11); do printf '{"input": "Once upon a time there was a little %s"}\n' "${ANIMALS[i % 6]}"; done >"$W/prompts.jsonl"
FLAGS=(--data.prompt_dataset="$W/prompts.jsonl" --reward.rule=length --algo.advantage.estimator=gae --algo.kl.init_coef=0.01
  --rollout.batch_size=4 --rollout.n_samples_per_prompt=2 --rollout.max_new_tokens=12
  --train.batch_size=8 --train.micro_batch_size=4 --train.max_iterations=2 --threads=1 --gemm=avx2 --quiet)
grep -qw avx2 /proc/cpuinfo || FLAGS+=(--gemm=go) # the last --gemm wins
"$W/gorlhf" launch plan -- train ppo --launcher=slurm "${FLAGS[@]}" | tee "$W/plan.txt"
N=$(sed -n '1s/.*, \([0-9]*\) processes$/\1/p' "$W/plan.txt")
[ -n "$N" ] || { echo "slurm-ppo-check: no process count in: $(head -n1 "$W/plan.txt")"; exit 1; }
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 17477)
HERE=(--driver_addr="127.0.0.1:$PORT" --worker_host=127.0.0.1) # node names do not resolve on this host
GORLHF_RUN_SECRET=$(head -c 32 /dev/urandom | base64)
export GORLHF_RUN_SECRET

echo "== the reference: --launcher inproc"
run inproc "$W/gorlhf" train ppo "${FLAGS[@]}" --ckpt.output_dir="$W/inproc"

echo "== 1) srun -N2 -n$N --kill-on-bad-exit=1 across n1 and n2"
# Who runs where: `launch env` takes the identity flags before its --.
timeout 60 srun -N2 -n"$N" --label "$W/gorlhf" launch env --driver_addr="127.0.0.1:$PORT" -- train ppo --launcher=slurm "${FLAGS[@]}" >"$W/ident.txt" 2>&1 || true
sort -n "$W/ident.txt" | grep -Ev '^ *[0-9]+:   from' || true
if grep -q ' node 0 driver 127.0.0.1:' "$W/ident.txt" && grep -q ' node 1 driver 127.0.0.1:' "$W/ident.txt" &&
  [ "$(grep -c '  group ' "$W/ident.txt")" = "$N" ]; then
  pass "srun: $N ranks over both nodes, each in its group"
else
  failed "srun: ranks not spread over both nodes, or not all in a group"
fi
if run srun timeout 300 srun -N2 -n"$N" --kill-on-bad-exit=1 "$W/gorlhf" train ppo --launcher=slurm "${FLAGS[@]}" "${HERE[@]}" --ckpt.output_dir="$W/srun"; then
  compare srun "$W/srun"
fi

echo "== 2) sbatch --wait deploy/slurm/ppo.sbatch"
export GORLHF=$W/gorlhf # the binary ppo.sbatch runs
if run sbatch timeout 300 sbatch --wait --nodes=2 --ntasks="$N" -o "$W/sbatch.out" \
  "$ROOT/deploy/slurm/ppo.sbatch" "${FLAGS[@]}" "${HERE[@]}" --ckpt.output_dir="$W/sbatch"; then
  compare sbatch "$W/sbatch"
else
  tail -n 40 "$W/sbatch.out" 2>/dev/null | sed 's/^/  /' || true
fi

echo "slurm: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
