#!/usr/bin/env bash
# Async vs sync PPO on the two demos, roles in worker processes
# (--launcher local), alternating sync/async for each seed.
# usage: tools/bench_async.sh BIN OUTDIR RM "SEEDS" SENTIMENT_ITERS ARITH_ITERS
# RM is a reward model folder an earlier `gorlhf demo` trained
# (<output_dir>/reward_model): every sentiment run uses it instead of
# training its own. TASKS="sentiment" or "arithmetic" runs one task only;
# EXTRA holds more demo flags (e.g. "--gemm avx2": the same GEMM kernel
# in every run, rather than the one a timing probe picks under load);
# MODES="async sync" runs async first (to balance a load trend).
# Tabulate with: python3 tools/bench_async.py OUTDIR
set -u
bin=$1 out=$2 rm=$3 seeds=${4:-"1 2 3"} sit=${5:-40} ait=${6:-60}
mkdir -p "$out"
for task in ${TASKS:-sentiment arithmetic}; do
  for seed in $seeds; do
    it=$sit; [ "$task" = arithmetic ] && it=$ait
    for mode in ${MODES:-sync async}; do
      dir="$out/$task-$mode-$seed"
      rm -rf "$dir"
      flags=()
      [ "$mode" = async ] && flags=(--train.async_enable)
      [ "$task" = sentiment ] && flags+=(--reward_model "$rm")
      start=$(date +%s.%N)
      "$bin" demo --quiet --task "$task" --seed "$seed" --iterations "$it" --launcher local \
        --output_dir "$dir" "${flags[@]}" ${EXTRA:-} > "$dir.log" 2>&1
      rc=$?
      end=$(date +%s.%N)
      echo "$task $mode seed=$seed rc=$rc wall=$(echo "$end - $start" | bc) load=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/runs.txt"
    done
  done
done
