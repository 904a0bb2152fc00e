#!/usr/bin/env bash
# The arm64 build under qemu user-mode emulation: correctness of the NEON
# GEMM kernel (internal/gemm's "neon"), of the NEON exp and GELU kernels
# (internal/tensor) and of a model that runs on them.
# qemu translates every instruction, so nothing here says anything about
# arm64 speed (docs/BENCHMARKS.md gives the expected speed on paper).
#
# Usage: tools/ci/arm64-qemu-check.sh   (needs qemu-aarch64-static or
# qemu-aarch64 on PATH: Debian's qemu-user-static or qemu-user)
#
# Steps (wall time on the 2-core CI machine, warm module cache; a cold
# build cache adds ~1 min for the arm64 standard library):
#   0. the generated NEON files are what their gen_neon.go writes   ~3 s
#   1. go vet for GOARCH=arm64 of internal/gemm: asmdecl checks the
#      assembly's argument frame against its Go declaration      ~5 s
#   2. the gemm package tests (-short, the kernel tests: every shape,
#      transpose, alpha/beta and edge tile against the ref twin, thread
#      determinism, Default = neon)                               ~30-60 s
#   2b. the tensor package tests: the exp (softmax, log-sum-exp) and
#      GELU kernels against their scalar twins and float64, and every
#      op's finite-difference gradient check, on the NEON kernels    ~2 s
#   3. internal/generate's stories260K greedy test: llama2.c's 200 greedy
#      tokens through the engine, whose default kernel on arm64 is neon ~5 s
#   4. the command itself: `gorlhf generate --gemm neon` and `--gemm go`,
#      greedy, on the embedded stories260K; the tokens must be equal ~15 s
#
# Binaries are built with CGO_ENABLED=0 -tags noblas: without noblas the
# run-time BLAS loader (purego) makes the binary ask for the arm64 dynamic
# loader, which an amd64 machine does not have.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"

QEMU=""
for q in qemu-aarch64-static qemu-aarch64; do
  if command -v "$q" >/dev/null 2>&1; then
    QEMU=$q
    break
  fi
done
if [ -z "$QEMU" ]; then
  echo "arm64-qemu-check: neither qemu-aarch64-static nor qemu-aarch64 is on PATH (apt-get install qemu-user-static)" >&2
  exit 1
fi

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

# 0. The generated kernel files match their generator.
for pkg in gemm:kern_neon_arm64 tensor:simd_neon_arm64; do
  dir=${pkg%%:*} base=${pkg#*:}
  mkdir "$W/gen-$dir"
  cp "internal/$dir/gen_neon.go" "$W/gen-$dir/"
  (cd "$W/gen-$dir" && go run gen_neon.go)
  for f in "$base.s" "$base.go"; do
    cmp -s "$W/gen-$dir/$f" "internal/$dir/$f" || {
      echo "arm64-qemu-check: internal/$dir/$f is stale: run go generate ./internal/$dir" >&2
      exit 1
    }
  done
done

export CGO_ENABLED=0 GOOS=linux GOARCH=arm64
BUILD=(-tags noblas)

t0=$SECONDS
go vet "${BUILD[@]}" ./internal/gemm ./internal/tensor
echo "arm64-qemu-check: go vet (arm64) took $((SECONDS - t0)) s"

t0=$SECONDS
go test "${BUILD[@]}" -c -o "$W/gemm.test" ./internal/gemm
go test "${BUILD[@]}" -c -o "$W/tensor.test" ./internal/tensor
go test "${BUILD[@]}" -c -o "$W/generate.test" ./internal/generate
go build "${BUILD[@]}" -o "$W/gorlhf" ./cmd/gorlhf
echo "arm64-qemu-check: arm64 builds took $((SECONDS - t0)) s"

# TestMeasure is left out: with one candidate it times the naive ref
# kernel, which costs ~10 s under qemu and checks nothing arm64-specific.
t0=$SECONDS
(cd internal/gemm && "$QEMU" "$W/gemm.test" -test.short -test.v \
  -test.run 'TestKernel_|TestGet|TestDefault|TestDescribe|TestChoose|TestAuto') >"$W/gemm.log" 2>&1 || {
  cat "$W/gemm.log"
  echo "arm64-qemu-check: gemm tests failed under $QEMU" >&2
  exit 1
}
grep -E '^(--- |ok|PASS)|gemm: neon' "$W/gemm.log" | grep -v '^    ---' || true
grep -q -- '--- PASS: TestKernel_Sgemm/neon ' "$W/gemm.log" || {
  echo "arm64-qemu-check: the neon kernel was not among the kernels tested" >&2
  exit 1
}
echo "arm64-qemu-check: gemm tests took $((SECONDS - t0)) s"

# package par's worker team: its park/wake hand-off under arm64's memory
# model (timeout: a lost wake-up hangs rather than fails)
t0=$SECONDS
go test "${BUILD[@]}" -c -o "$W/par.test" ./internal/par
(cd internal/par && timeout 300 "$QEMU" "$W/par.test" -test.v) >"$W/par.log" 2>&1 || {
  cat "$W/par.log"
  echo "arm64-qemu-check: par tests failed (or hung) under $QEMU" >&2
  exit 1
}
echo "arm64-qemu-check: par tests took $((SECONDS - t0)) s"

t0=$SECONDS
(cd internal/tensor && "$QEMU" "$W/tensor.test" -test.short -test.v) >"$W/tensor.log" 2>&1 || {
  cat "$W/tensor.log"
  echo "arm64-qemu-check: tensor tests failed under $QEMU" >&2
  exit 1
}
for k in TestGELU_SIMDTwin TestExpShift_SIMDTwin; do
  grep -q -- "--- PASS: $k " "$W/tensor.log" || {
    echo "arm64-qemu-check: $k did not pass under $QEMU" >&2
    exit 1
  }
done
echo "arm64-qemu-check: tensor tests (NEON exp, GELU and add kernels) passed in $((SECONDS - t0)) s"

t0=$SECONDS
(cd internal/generate && "$QEMU" "$W/generate.test" -test.v -test.run 'TestEngine_Greedy_Stories260K$')
echo "arm64-qemu-check: stories260K greedy test took $((SECONDS - t0)) s"

# package half's portable 16-bit weight path (--dtype bf16/f16) against
# its naive twin, and bf16/f16 greedy decoding of stories260K
t0=$SECONDS
go test "${BUILD[@]}" -c -o "$W/half.test" ./internal/half
(cd internal/half && "$QEMU" "$W/half.test" -test.run 'TestMulMatchesRef|TestRoundTripAll|TestRoundsToNearest')
(cd internal/generate && timeout 600 "$QEMU" "$W/generate.test" -test.run 'TestEngine_DType')
echo "arm64-qemu-check: 16-bit weight tests took $((SECONDS - t0)) s"

t0=$SECONDS
for g in neon go; do
  "$QEMU" "$W/gorlhf" generate --gemm "$g" --prompt "Once upon a time" --temperature 0 \
    --max-new-tokens 60 --threads 2 --output "$W/out-$g.jsonl" 2>"$W/log-$g"
  grep -q "^gemm: $g " "$W/log-$g" || {
    cat "$W/log-$g"
    echo "arm64-qemu-check: generate --gemm $g did not run on $g" >&2
    exit 1
  }
  grep -o '"tokens":\[[0-9,]*\]' "$W/out-$g.jsonl" >"$W/tokens-$g"
done
if ! cmp -s "$W/tokens-neon" "$W/tokens-go" || [ ! -s "$W/tokens-neon" ]; then
  echo "arm64-qemu-check: greedy tokens differ between --gemm neon and --gemm go:" >&2
  cat "$W/tokens-neon" "$W/tokens-go" >&2
  exit 1
fi
echo "arm64-qemu-check: generate --gemm neon = --gemm go, $(tr -cd , <"$W/tokens-neon" | wc -c | awk '{print $1 + 1}') greedy tokens"
echo "arm64-qemu-check: generate took $((SECONDS - t0)) s"
