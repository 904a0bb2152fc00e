package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/hub"
)

// The environment variables the command reads. Nothing below cmd/ reads
// the environment: what they say is passed down explicitly.
const (
	// gemmEnv chooses the GEMM kernel when --gemm is not given.
	gemmEnv = "GORLHF_GEMM"
	// openblasCoreEnv is read by OpenBLAS itself when it is loaded.
	openblasCoreEnv = "OPENBLAS_CORETYPE"

	// The servers' bearer keys, which keep them off the command line,
	// where other users of the machine can read them (see apiKey).
	// apiKeyEnv is every server's: gorlhf serve's, and serve rm's and
	// serve env's unless their own is set.
	apiKeyEnv = "GORLHF_API_KEY"
	// rmAPIKeyEnv is gorlhf serve rm's own.
	rmAPIKeyEnv = "GORLHF_RM_API_KEY"
	// envAPIKeyEnv is gorlhf serve env's own, and what train ppo
	// --agent.env remote sends (else apiKeyEnv).
	envAPIKeyEnv = "GORLHF_ENV_API_KEY"
)

// apiKey resolves a bearer key: the --api-key value, else $own when own
// names a variable that is set and not empty, else $GORLHF_API_KEY. from
// says where the key came from ("" when there is none), for the start-up
// line.
func apiKey(flagValue, own string) (key, from string) {
	if flagValue != "" {
		return flagValue, "--api-key"
	}
	if v := os.Getenv(own); own != "" && v != "" {
		return v, "$" + own
	}
	if v := os.Getenv(apiKeyEnv); v != "" {
		return v, "$" + apiKeyEnv
	}
	return "", ""
}

// defaultGCPercent is the Go heap's growth target (GOGC) the binary runs
// with unless $GOGC is set: 50 instead of Go's 100. A train step's
// activations are large, short-lived and pointer-free, so the collector's
// extra cycles cost little, while the smaller heap headroom keeps the
// bench GPT step's peak RSS at or below PyTorch's (docs/BENCHMARKS.md:
// 382–409 MB vs 465–520 MB at 100, step time 3–5 % lower; 25 was 25 %
// slower).
const defaultGCPercent = 50

// tuneGC applies defaultGCPercent unless the user set $GOGC (which the
// Go runtime has then applied already).
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); set {
		return
	}
	debug.SetGCPercent(defaultGCPercent)
}

// hintOpenBLASCore sets OPENBLAS_CORETYPE to the kernels this CPU can run
// (gemm.OpenBLASCore), unless the user set it, so that an OpenBLAS that
// does not know the CPU does not fall back to its slowest kernels. It must
// run before the library is opened (the first gemm.Available or Auto).
func hintOpenBLASCore() {
	if _, set := os.LookupEnv(openblasCoreEnv); set {
		return
	}
	if core := gemm.OpenBLASCore(); core != "" {
		os.Setenv(openblasCoreEnv, core)
	}
}

// gemmKernel resolves the GEMM choice: the --gemm value, else
// $GORLHF_GEMM, else auto. Auto measures the candidates (gemm.Auto) and
// returns the probe it ran, nil when there was nothing to choose between.
func gemmKernel(flagValue string) (gemm.Kernel, *gemm.Probe, error) {
	name, source := flagValue, "--gemm"
	if name == "" {
		name, source = os.Getenv(gemmEnv), gemmEnv
	}
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "auto":
		k, p := gemm.Auto()
		return k, p, nil
	}
	k, err := gemm.Get(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s=%q: %w", source, name, err)
	}
	return k, nil, nil
}

// hubOptions reads huggingface_hub's cache variables, which say where
// cached Hub models are.
func hubOptions() hub.Options {
	home, _ := os.UserHomeDir()
	hubCache := os.Getenv("HF_HUB_CACHE")
	if hubCache == "" {
		hubCache = os.Getenv("HUGGINGFACE_HUB_CACHE")
	}
	return hub.Options{
		HubCache:     hubCache,
		HFHome:       os.Getenv("HF_HOME"),
		XDGCacheHome: os.Getenv("XDG_CACHE_HOME"),
		Home:         home,
	}
}
