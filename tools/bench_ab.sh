#!/usr/bin/env bash
# A/B of gorlhf binaries on the bench GPT train step: each round runs every
# binary once (alternating, so machine noise hits all alike); prints each
# binary's median step time over the rounds, the rounds, and the peak RSS.
# Usage: tools/bench_ab.sh ROUNDS BINARY... (extra bench flags in $BENCH_FLAGS)
# e.g.   go build -o /tmp/a ./cmd/gorlhf; (change); go build -o /tmp/b ./cmd/gorlhf
#        tools/bench_ab.sh 5 /tmp/a /tmp/b
set -euo pipefail
rounds=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
  for b in "$@"; do
    # shellcheck disable=SC2086
    "$b" bench train --threads 2 --gemm avx512 --json --time_forward=false --steps 20 --peak 0 ${BENCH_FLAGS:-} 2>/dev/null |
      python3 -c "import json,sys; r=json.load(sys.stdin); print('$b', r['step_ms_median'], r['peak_rss_mb'])" >>"$out"
  done
done
python3 - "$out" <<'PY'
import collections, statistics, sys
steps, rss = collections.defaultdict(list), collections.defaultdict(list)
for line in open(sys.argv[1]):
    b, s, m = line.split()
    steps[b].append(float(s))
    rss[b].append(float(m))
for b in steps:
    print(f"{b}: median {statistics.median(steps[b]):.1f} ms, rounds {[round(x, 1) for x in steps[b]]}, peak RSS ≤ {max(rss[b]):.0f} MB")
PY
