package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// engineFlags are the compute flags every heavy command shares.
type engineFlags struct {
	threads int
	gemm    string
	quiet   bool
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&e.threads, "threads", 0, "worker threads for kernels (0 = all cores)")
	fs.StringVar(&e.gemm, "gemm", "", "GEMM kernel: auto, blas, avx512, avx2, go or ref (default: $GORLHF_GEMM, else auto)")
}

// apply sets threads and the GEMM kernel, then prints the engine line to
// stderr (unless quiet).
func (e *engineFlags) apply() error {
	par.SetThreads(e.threads)
	if err := gemm.FromEnv(); err != nil {
		return err
	}
	if e.gemm != "" {
		if err := gemm.Select(e.gemm); err != nil {
			return err
		}
	}
	tensor.SetBackend(tensor.CPU{Kernel: gemm.Default()})
	if !e.quiet {
		fmt.Fprintln(os.Stderr, gemm.Describe())
	}
	return nil
}
