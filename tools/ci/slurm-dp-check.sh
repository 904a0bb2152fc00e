#!/usr/bin/env bash
# Data-parallel SFT with ZeRO stage 3 over 4 ranks spread across the two
# nodes of a real local Slurm (tools/ci/slurm-local.sh) must equal the same
# run under the local launcher: the final model byte for byte and
# metrics.jsonl line for line (timings aside); and ZeRO stage 0 under Slurm
# must equal stage 3 byte for byte.
#
#   1) gorlhf train sft --launcher local --model.num_workers_per_node 4 --ds.zero_stage 3 (reference)
#   2) srun -N2 -n4 --kill-on-bad-exit=1 gorlhf train sft --launcher slurm
#        --model.num_nodes 2 --model.num_workers_per_node 2 --ds.zero_stage 3
#   3) the same at --ds.zero_stage 0
#   4) PPO (GAE) with the actor and the critic data-parallel on 2 ranks each
#      at ZeRO stage 2: srun -N2 vs --launcher local, actor and critic byte
#      for byte, metrics equal
#
# As in slurm-ppo-check.sh the local nodes' names do not resolve, so every
# task gets --driver_addr 127.0.0.1:PORT (rank 0's collective rendezvous);
# the kernel and threads are pinned for the bit-identical bar. Needs root;
# starts the cluster and always stops it. Last line: slurm-dp: P passed, F failed.
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

# same FILE A B: FILE is identical in the run folders A and B.
same() {
  if cmp -s "$2/$1" "$3/$1"; then pass "$(basename "$3"): $1 identical to $(basename "$2")"; else failed "$(basename "$3"): $1 differs from $(basename "$2")"; fi
}

# same_metrics A B: metrics.jsonl of A and B agree line for line, every
# key but the wall-clock ones (time, time_*, *tokens_per_sec*).
same_metrics() {
  if python3 - "$1/metrics.jsonl" "$2/metrics.jsonl" <<'PY'; then
import json, sys
def rows(path):
    with open(path) as f:
        return [{k: v for k, v in json.loads(line).items()
                 if not (k.startswith("time") or "tokens_per_sec" in k)}
                for line in f if line.strip()]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
for i, (x, y) in enumerate(zip(a, b)):
    for k in sorted(set(x) | set(y)):
        if x.get(k) != y.get(k):
            print(f"  line {i+1} {k}: {x.get(k)!r} != {y.get(k)!r}")
sys.exit(0 if a and a == b else 1)
PY
    pass "$(basename "$2"): metrics equal to $(basename "$1") (timings aside)"
  else
    failed "$(basename "$2"): metrics differ from $(basename "$1")"
  fi
}

for i in $(seq 0 15); do
  printf '{"input": "What did Lily find on day %d?", "output": "Lily found %d shells by the sea and was very happy."}\n' "$i" "$i"
done >"$W/stories.jsonl"
FLAGS=(--data.dataset="$W/stories.jsonl" --data.output_key=output --data.max_len=64 --train.batch_size=4
  --train.micro_batch_size=1 --train.max_steps=4 --adam.lr=3e-3 --sft.samples=0 --threads=1 --gemm=avx2 --quiet)
grep -qw avx2 /proc/cpuinfo || FLAGS+=(--gemm=go) # the last --gemm wins
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 17479)
GORLHF_RUN_SECRET=$(head -c 32 /dev/urandom | base64)
export GORLHF_RUN_SECRET
SLURM_DP=(--launcher=slurm --model.num_nodes=2 --model.num_workers_per_node=2 --driver_addr="127.0.0.1:$PORT")

echo "== the reference: --launcher local, 4 ranks, ZeRO stage 3"
run local "$W/gorlhf" train sft "${FLAGS[@]}" --launcher=local --model.num_workers_per_node=4 --ds.zero_stage=3 --ckpt.output_dir="$W/local"

echo "== srun -N2 -n4: 4 ranks across n1 and n2, ZeRO stage 3"
if run srun-s3 timeout 300 srun -N2 -n4 --kill-on-bad-exit=1 "$W/gorlhf" train sft "${FLAGS[@]}" "${SLURM_DP[@]}" --ds.zero_stage=3 --ckpt.output_dir="$W/srun-s3"; then
  same model.safetensors "$W/local" "$W/srun-s3"
  same_metrics "$W/local" "$W/srun-s3"
fi

echo "== srun -N2 -n4, ZeRO stage 0"
if run srun-s0 timeout 300 srun -N2 -n4 --kill-on-bad-exit=1 "$W/gorlhf" train sft "${FLAGS[@]}" "${SLURM_DP[@]}" --ds.zero_stage=0 --ckpt.output_dir="$W/srun-s0"; then
  same model.safetensors "$W/srun-s3" "$W/srun-s0"
fi

echo "== PPO (GAE) with the actor and the critic on 2 ranks each, ZeRO stage 2: srun vs --launcher local"
for i in $(seq 0 11); do printf '{"input": "Once upon a time there was a little %s"}\n' "$i"; done >"$W/prompts.jsonl"
PPO=(--data.prompt_dataset="$W/prompts.jsonl" --reward.rule=length --algo.advantage.estimator=gae --algo.kl.init_coef=0.01
  --rollout.batch_size=4 --rollout.n_samples_per_prompt=2 --rollout.max_new_tokens=12 --train.batch_size=8
  --train.micro_batch_size=2 --train.max_iterations=2 --threads=1 --gemm=avx2 --quiet
  --actor.num_workers_per_node=2 --critic.num_workers_per_node=2 --ds.zero_stage=2)
grep -qw avx2 /proc/cpuinfo || PPO+=(--gemm=go)
"$W/gorlhf" launch plan -- train ppo --launcher=slurm "${PPO[@]}" >"$W/ppo-plan.txt"
N=$(sed -n '1s/.*, \([0-9]*\) processes$/\1/p' "$W/ppo-plan.txt")
if [ -z "$N" ]; then
  failed "ppo: no process count in: $(head -n1 "$W/ppo-plan.txt")"
else
  run ppo-local "$W/gorlhf" train ppo --launcher=local "${PPO[@]}" --ckpt.output_dir="$W/ppo-local"
  PORT2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 17481)
  if run ppo-srun timeout 300 srun -N2 -n"$N" --kill-on-bad-exit=1 "$W/gorlhf" train ppo --launcher=slurm "${PPO[@]}" \
    --driver_addr="127.0.0.1:$PORT2" --worker_host=127.0.0.1 --ckpt.output_dir="$W/ppo-srun"; then
    same model.safetensors "$W/ppo-local" "$W/ppo-srun"
    same critic/model.safetensors "$W/ppo-local" "$W/ppo-srun"
    same_metrics "$W/ppo-local" "$W/ppo-srun"
  fi
fi

echo "slurm-dp: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
