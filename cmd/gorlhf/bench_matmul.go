package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/par"
)

// matmulConfig is what `gorlhf bench matmul` measures.
type matmulConfig struct {
	M, N, K        int
	TransA, TransB bool
	Reps           int
	Threads        int
	Kernels        []string // empty: every available kernel
	JSON           bool
}

// refMaxSize is the largest dimension the naive kernel is timed at; beyond
// it one call takes seconds and says nothing new.
const refMaxSize = 512

func (c matmulConfig) validate() error {
	if c.M < 1 || c.N < 1 || c.K < 1 {
		return fmt.Errorf("bench matmul: sizes must be >= 1, got m=%d n=%d k=%d", c.M, c.N, c.K)
	}
	if c.Reps < 1 {
		return fmt.Errorf("bench matmul: --reps must be >= 1, got %d", c.Reps)
	}
	if c.Threads < 0 {
		return fmt.Errorf("bench matmul: --threads must be >= 0 (0 = all cores), got %d", c.Threads)
	}
	return nil
}

// matmulResult is one kernel's timing: the median and best of the reps.
type matmulResult struct {
	Kernel     string  `json:"kernel"`
	MedianMS   float64 `json:"median_ms,omitempty"`
	GFLOPS     float64 `json:"gflops,omitempty"` // from the median
	BestGFLOPS float64 `json:"best_gflops,omitempty"`
	Skipped    string  `json:"skipped,omitempty"`
}

// runBenchMatmul times C = A·B for every available GEMM kernel, so the
// pure kernels can be compared with the system BLAS (and, with
// tools/bench_matmul.py, with PyTorch) on the same machine and load.
func runBenchMatmul(ctx context.Context, args []string) error {
	fs := newFlagSet("bench matmul", "bench matmul [--n 1024] [--m M] [--k K] [--reps 5] [--threads 0] [--json]")
	cfg := matmulConfig{}
	n := fs.Int("n", 1024, "size of the square product; --m and --k override two of its dimensions")
	fs.IntVar(&cfg.M, "m", 0, "rows of C (0 = --n)")
	fs.IntVar(&cfg.K, "k", 0, "inner dimension (0 = --n)")
	fs.BoolVar(&cfg.TransA, "trans-a", false, "A is stored transposed (k×m)")
	fs.BoolVar(&cfg.TransB, "trans-b", false, "B is stored transposed (n×k), like x·Wᵀ with a Linear weight")
	fs.IntVar(&cfg.Reps, "reps", 5, "timed repetitions per kernel, after one warm-up call")
	fs.IntVar(&cfg.Threads, "threads", 0, "worker threads (0 = all cores)")
	kernels := fs.String("kernels", "", "comma-separated kernels to time (default: all available)")
	fs.BoolVar(&cfg.JSON, "json", false, "print one JSON object instead of a table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("bench matmul: unexpected argument %q", fs.Arg(0))
	}
	cfg.N = *n
	if cfg.M == 0 {
		cfg.M = cfg.N
	}
	if cfg.K == 0 {
		cfg.K = cfg.N
	}
	if *kernels != "" {
		cfg.Kernels = strings.Split(*kernels, ",")
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	// The header shows the kernel a run would use: $GORLHF_GEMM or auto's pick.
	ef := engineFlags{threads: cfg.Threads, quiet: true}
	if err := ef.apply(); err != nil {
		return fmt.Errorf("bench matmul: %w", err)
	}
	return benchMatmul(ctx, cfg, &ef, os.Stdout)
}

func benchMatmul(ctx context.Context, cfg matmulConfig, ef *engineFlags, w io.Writer) error {
	ks, err := selectKernels(cfg.Kernels)
	if err != nil {
		return err
	}
	if !cfg.JSON {
		fmt.Fprintln(w, ef.describe())
		fmt.Fprintf(w, "C(%dx%d) = A·B, k=%d, transA=%v transB=%v, threads=%d, median of %d reps after a warm-up\n",
			cfg.M, cfg.N, cfg.K, cfg.TransA, cfg.TransB, par.Threads(), cfg.Reps)
		fmt.Fprintf(w, "%-16s %12s %10s %10s\n", "kernel", "median ms", "GFLOP/s", "best")
	}
	op := newOperands(cfg)
	var results []matmulResult
	for _, k := range ks {
		if err := settle(ctx); err != nil {
			return err
		}
		r, err := timeKernel(ctx, k, cfg, op)
		if err != nil {
			return err
		}
		results = append(results, r)
		if !cfg.JSON {
			printResult(w, r)
		}
	}
	if cfg.JSON {
		return json.NewEncoder(w).Encode(map[string]any{
			"m": cfg.M, "n": cfg.N, "k": cfg.K, "trans_a": cfg.TransA, "trans_b": cfg.TransB,
			"threads": par.Threads(), "reps": cfg.Reps, "default": ef.kernel.Name(),
			"describe": ef.describe(), "results": results,
		})
	}
	return nil
}

// settleTime is how long library worker threads are given to go idle.
// OpenBLAS's threads busy-wait for about 0.1 s after the library is opened
// and after each call; timed meanwhile, a Go kernel gets about half of a
// 2-core machine (measured: 120-130 instead of 200-220 GFLOP/s).
const settleTime = 300 * time.Millisecond

// settle waits settleTime when a system BLAS is loaded, so that no kernel
// is timed while the library's threads still spin.
func settle(ctx context.Context) error {
	if !blasLoaded() {
		return nil
	}
	select {
	case <-ctx.Done():
		return fmt.Errorf("bench matmul: %w", ctx.Err())
	case <-time.After(settleTime):
		return nil
	}
}

func blasLoaded() bool {
	for _, k := range gemm.Available() {
		if strings.HasPrefix(k.Name(), "blas:") {
			return true
		}
	}
	return false
}

func selectKernels(names []string) ([]gemm.Kernel, error) {
	if len(names) == 0 {
		return gemm.Available(), nil
	}
	var ks []gemm.Kernel
	for _, name := range names {
		k, err := gemm.Get(name)
		if err != nil {
			return nil, fmt.Errorf("bench matmul: --kernels: %w", err)
		}
		ks = append(ks, k)
	}
	return ks, nil
}

// operands holds random A, B and a C to overwrite.
type operands struct {
	a, b, c       []float32
	lda, ldb, ldc int
}

func newOperands(cfg matmulConfig) operands {
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = rng.Float32()*2 - 1
		}
		return s
	}
	op := operands{a: fill(cfg.M * cfg.K), b: fill(cfg.K * cfg.N), c: make([]float32, cfg.M*cfg.N), ldc: cfg.N}
	op.lda, op.ldb = cfg.K, cfg.N
	if cfg.TransA {
		op.lda = cfg.M
	}
	if cfg.TransB {
		op.ldb = cfg.K
	}
	return op
}

func timeKernel(ctx context.Context, k gemm.Kernel, cfg matmulConfig, op operands) (matmulResult, error) {
	r := matmulResult{Kernel: k.Name()}
	if k.Name() == "ref" && max(cfg.M, cfg.N, cfg.K) > refMaxSize {
		r.Skipped = fmt.Sprintf("a dimension exceeds %d (the naive loop is too slow)", refMaxSize)
		return r, nil
	}
	call := func() {
		k.Sgemm(cfg.TransA, cfg.TransB, cfg.M, cfg.N, cfg.K, 1, op.a, op.lda, op.b, op.ldb, 0, op.c, op.ldc)
	}
	call() // warm-up: page in buffers, start library threads
	times := make([]time.Duration, cfg.Reps)
	for i := range times {
		if err := ctx.Err(); err != nil {
			return r, fmt.Errorf("bench matmul: %w", err)
		}
		t0 := time.Now()
		call()
		times[i] = time.Since(t0)
	}
	slices.Sort(times)
	flop := 2 * float64(cfg.M) * float64(cfg.N) * float64(cfg.K)
	median := times[len(times)/2]
	if len(times)%2 == 0 {
		median = (times[len(times)/2-1] + times[len(times)/2]) / 2
	}
	r.MedianMS = median.Seconds() * 1e3
	r.GFLOPS = flop / median.Seconds() / 1e9
	r.BestGFLOPS = flop / times[0].Seconds() / 1e9
	return r, nil
}

func printResult(w io.Writer, r matmulResult) {
	if r.Skipped != "" {
		fmt.Fprintf(w, "%-16s skipped: %s\n", r.Kernel, r.Skipped)
		return
	}
	fmt.Fprintf(w, "%-16s %12.3f %10.1f %10.1f\n", r.Kernel, r.MedianMS, r.GFLOPS, r.BestGFLOPS)
}
