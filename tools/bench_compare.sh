#!/usr/bin/env bash
# Side-by-side training-step benchmark: gorlhf (each GEMM path) vs PyTorch 1.13,
# alternating in one run so machine noise hits all of them alike.
# Usage: tools/bench_compare.sh [rounds=3] [threads=2]
# PyTorch runs once per round under each OPENBLAS_CORETYPE in $TORCH_CORETYPES
# (default "auto Haswell Zen"; auto = SkylakeX where the CPU has AVX-512, as
# bench_train.py picks), with any OPENBLAS_CORETYPE of the caller's
# environment removed; the ratio is against the fastest of them.
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
  for c in ${TORCH_CORETYPES:-auto Haswell Zen}; do
    env -u OPENBLAS_CORETYPE /usr/bin/python3 tools/bench_train.py --json --threads "$threads" --openblas-coretype "$c" |
      sed "s/^/torch-$c /" >>"$out"
  done
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
torches = {k: v for k, v in med.items() if k.startswith("torch")}
best = min(torches, key=torches.get)
t = med[best]
# Model FLOPs per step and the measured FMA peak come from gorlhf's rows
# (bench train --peak); PyTorch runs the same model, so the same count.
gflop = next((r["model_gflop_per_step"] for v in rows.values() for r in v if "model_gflop_per_step" in r), None)
peaks = [r["peak_gflops"] for v in rows.values() for r in v if r.get("peak_gflops")]
peak = statistics.median(peaks) if peaks else None
print(f"{'engine':<10} {'step ms':>9} {'tok/s':>8} {'fwd tok/s':>10} {'RSS MB':>7} {'GFLOP/s':>8} {'of peak':>8} {'vs torch':>9}")
for k in sorted(med, key=med.get):
    tok = rows[k][0]["batch"] * rows[k][0]["seq"] / (med[k] / 1e3)
    rate = gflop / (med[k] / 1e3) if gflop else float("nan")
    frac = f"{100 * rate / peak:7.1f}%" if peak else "      -"
    print(f"{k:<10} {med[k]:9.1f} {tok:8.0f} {fwd[k]:10.0f} {rss[k]:7.0f} {rate:8.0f} {frac:>8} {t / med[k] if t else float('nan'):8.2f}x")
print(f"(vs torch: against {best}, the fastest PyTorch; medians of {len(rows[best])} rounds, each the median of 10 steps; {gflop:.2f} GFLOP per step;"
      f" fp32 peak {peak:.0f} GFLOP/s: the median of the FMA-loop peaks measured after each gorlhf run)" if gflop and peak else "")
PY
rm -f "$out"
