#!/usr/bin/env bash
# Side-by-side training-step benchmark: gorlhf (each GEMM path) vs PyTorch 1.13,
# alternating in one run so machine noise hits all of them alike.
# Usage: tools/bench_compare.sh [rounds=3] [threads=2]
# Needs: go, /usr/bin/python3 with torch (apt-get install -y python3-torch);
# the blas path needs a system BLAS (apt-get install -y libopenblas0).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
threads=${2:-2}
go build -o /tmp/gorlhf-bench ./cmd/gorlhf
paths="avx512 blas avx2"   # each is skipped if unavailable here (bench train exits non-zero)
out=$(mktemp)
for r in $(seq "$rounds"); do
  for p in $paths; do
    [ "$p" = ref ] && continue
    /tmp/gorlhf-bench bench train --json --threads "$threads" --gemm "$p" | sed "s/^/$p /" >>"$out" || true
  done
  /usr/bin/python3 tools/bench_train.py --json --threads "$threads" | sed 's/^/torch /' >>"$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, js = line.split(" ", 1)
    rows.setdefault(name, []).append(json.loads(js))
med = {k: statistics.median(r["step_ms_median"] for r in v) for k, v in rows.items()}
fwd = {k: statistics.median(r["fwd_tokens_per_sec"] for r in v) for k, v in rows.items()}
rss = {k: max(r["peak_rss_mb"] for r in v) for k, v in rows.items()}
t = med.get("torch")
print(f"{'engine':<10} {'step ms':>9} {'tok/s':>8} {'fwd tok/s':>10} {'RSS MB':>7} {'vs torch':>9}")
for k in sorted(med, key=med.get):
    tok = rows[k][0]["batch"] * rows[k][0]["seq"] / (med[k] / 1e3)
    print(f"{k:<10} {med[k]:9.1f} {tok:8.0f} {fwd[k]:10.0f} {rss[k]:7.0f} {t / med[k] if t else float('nan'):8.2f}x")
print(f"(medians of {len(rows['torch'])} rounds, each the median of 10 steps)")
PY
rm -f "$out"
