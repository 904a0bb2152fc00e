package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// engineFlags are the compute flags every heavy command shares.
type engineFlags struct {
	threads int
	gemm    string
	spin    time.Duration
	quiet   bool

	kernel gemm.Kernel // set by apply
	probe  *gemm.Probe // what auto measured; nil when the kernel was named or the only one
}

func (e *engineFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&e.threads, "threads", 0, "worker threads for kernels (0 = all cores)")
	fs.DurationVar(&e.spin, "spin", par.DefaultSpin, "how long idle kernel workers spin for the next parallel loop before they sleep (0: sleep at once; worth it where several gorlhf processes share the cores)")
	fs.StringVar(&e.gemm, "gemm", "", "GEMM kernel: auto, blas, avx512, avx2 (amd64), neon (arm64), go or ref (default: $GORLHF_GEMM, else auto: the fastest in a short timed probe)")
}

// apply sets threads and the GEMM kernel, then prints the engine line (and
// what auto measured) to stderr unless quiet.
func (e *engineFlags) apply() error {
	par.SetThreads(e.threads)
	par.SetSpin(e.spin)
	k, probe, err := gemmKernel(e.gemm)
	if err != nil {
		return err
	}
	e.kernel, e.probe = k, probe
	tensor.SetBackend(tensor.CPU{Kernel: k})
	if !e.quiet {
		fmt.Fprintln(os.Stderr, e.describe())
	}
	return nil
}

// describe is the engine line, followed by the probe's line when auto
// measured.
func (e *engineFlags) describe() string {
	s := gemm.Describe(e.kernel)
	if e.probe != nil {
		s += "\n" + e.probe.String()
	}
	return s
}
