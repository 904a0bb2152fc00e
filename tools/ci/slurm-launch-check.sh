#!/usr/bin/env bash
# Checks gorlhf's Slurm contract on a real two-node Slurm (tools/ci/slurm-local.sh):
#   1) srun -N2 -n3: every task parses its identity (rank, world size, node,
#      driver host = first host of the node list, job id) and finds its
#      placement group;
#   2) deploy/slurm/ppo.sbatch under sbatch --wait, with its training command
#      swapped for `launch env -- train ppo` (same flags), and the run secret
#      reaching every task;
#   3) a command started in the batch script without srun is refused;
#   4) a task count that differs from the placement is refused.
# Starts the cluster and always stops it (by PID). Needs root. Bounded: every
# Slurm command runs under timeout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d)
cd "$ROOT"
CGO_ENABLED=0 go build -o "$W/gorlhf" ./cmd/gorlhf
chmod 755 "$W"
trap '"$ROOT/tools/ci/slurm-local.sh" stop; rm -rf "$W"' EXIT
tools/ci/slurm-local.sh start
export SLURM_CONF=$(tools/ci/slurm-local.sh conf)
cd "$W"
fail() { echo "slurm-launch-check: $*" >&2; exit 1; }

# GRPO with a KL reference, actor and reference co-located: driver, actor-ref, rollout.
FLAGS=(--data.prompt_dataset=/data/p.jsonl --reward.rule=length --algo.advantage.estimator=group_norm
  --rollout.n_samples_per_prompt=4 --train.colocate_actor_ref)
TRAIN=(train ppo --launcher=slurm "${FLAGS[@]}")
"$W/gorlhf" launch plan -- "${TRAIN[@]}"

echo "== 1) srun -N2 -n3 gorlhf launch env"
timeout 60 srun -N2 -n3 --label "$W/gorlhf" launch env -- "${TRAIN[@]}" | sort >"$W/srun.out"
cat "$W/srun.out"
for want in '0: rank 0/3 local 0 node 0 driver n1:7477' '1: rank 1/3 local 1 node 0 driver n1:7477' \
  '2: rank 2/3 local 0 node 1 driver n1:7477' '0:   group driver \[\]' '1:   group actor-ref \[actor,ref\]' '2:   group rollout \[rollout\]'; do
  grep -q "^$want" "$W/srun.out" || fail "missing: $want"
done

echo "== 2) sbatch deploy/slurm/ppo.sbatch (training command swapped for launch env)"
sed 's/"\$GORLHF" train ppo/"$GORLHF" launch env -- train ppo/' "$ROOT/deploy/slurm/ppo.sbatch" >"$W/ppo-env.sbatch"
sed 's/"\$GORLHF" train ppo.*/bash -c '"'"'echo secret_bytes=${#GORLHF_RUN_SECRET}'"'"'/' "$ROOT/deploy/slurm/ppo.sbatch" >"$W/ppo-secret.sbatch"
grep -q 'launch env -- train ppo --launcher slurm' "$W/ppo-env.sbatch" || fail "could not swap the command in ppo.sbatch"
GORLHF=$W/gorlhf timeout 60 sbatch --wait --ntasks=3 -o "$W/sbatch.out" "$W/ppo-env.sbatch" "${FLAGS[@]}"
sort "$W/sbatch.out" | grep -v '  from'
[ "$(grep -c 'run "[0-9]*" (slurm)' "$W/sbatch.out")" = 3 ] || fail "ppo.sbatch: not 3 identities"
grep -q 'group rollout' "$W/sbatch.out" || fail "ppo.sbatch: no rollout rank"
timeout 60 sbatch --wait --ntasks=3 -o "$W/secret.out" "$W/ppo-secret.sbatch"
cat "$W/secret.out"
[ "$(grep -c '^secret_bytes=44$' "$W/secret.out")" = 3 ] || fail "the run secret did not reach every task"

echo "== 3) no srun in the batch script"
printf '#!/bin/bash\n%s launch env\n' "$W/gorlhf" >"$W/nosrun.sh"
if timeout 60 sbatch --wait -N2 -n3 -o "$W/nosrun.out" "$W/nosrun.sh"; then fail "a batch script's rank was accepted"; fi
cat "$W/nosrun.out"
grep -q 'not a task of srun' "$W/nosrun.out" || fail "no batch-script error"

echo "== 4) wrong task count"
if timeout 60 srun -N2 -n4 "$W/gorlhf" launch env -- "${TRAIN[@]}" >"$W/count.out" 2>&1; then fail "4 tasks accepted for 3"; fi
grep -m1 'placement needs 3' "$W/count.out" || fail "no task-count error"
echo "slurm-launch-check: ok"
