package main

import (
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/gemm"
)

// TestMain pins the GEMM kernel of every command the tests run (in this
// process and in helper processes, which inherit the environment) unless
// the caller chose one: auto measures at start-up, and two runs that a
// test compares bit for bit must not pick different kernels on a machine
// where two candidates time alike.
//
// With $GORLHF_AS_BINARY=1 the test binary is gorlhf itself: main runs
// on the arguments (exit status and messages included) and no test
// runs. The placement tests start it so, as the local launcher's worker
// processes and as drivers they kill.
func TestMain(m *testing.M) {
	if _, set := os.LookupEnv(gemmEnv); !set {
		os.Setenv(gemmEnv, gemm.Default().Name())
	}
	if os.Getenv(asBinaryEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestGemmKernel: --gemm wins over $GORLHF_GEMM, which wins over auto; a
// bad name is an error naming where it came from; auto measures only when
// it has a choice and returns one of its candidates.
func TestGemmKernel(t *testing.T) {
	t.Setenv(gemmEnv, "go")
	if k, p, err := gemmKernel(""); err != nil || k.Name() != "go" || p != nil {
		t.Fatalf("%s=go: %v, %v, %v", gemmEnv, k, p, err)
	}
	if k, _, err := gemmKernel(" REF "); err != nil || k.Name() != "ref" {
		t.Fatalf("--gemm ref over %s=go: %v, %v", gemmEnv, k, err)
	}
	t.Setenv(gemmEnv, "nope")
	if _, _, err := gemmKernel(""); err == nil || !strings.Contains(err.Error(), gemmEnv+`="nope"`) {
		t.Fatalf("%s=nope: err=%v, want one naming %s", gemmEnv, err, gemmEnv)
	}
	if _, _, err := gemmKernel("tpu"); err == nil || !strings.Contains(err.Error(), `--gemm="tpu"`) {
		t.Fatalf("--gemm tpu: err=%v, want one naming --gemm", err)
	}
	for _, choice := range []string{"auto", ""} {
		t.Setenv(gemmEnv, "auto")
		k, p, err := gemmKernel(choice)
		if err != nil {
			t.Fatal(err)
		}
		cands := gemm.Candidates()
		found := false
		for _, c := range cands {
			found = found || c.Name() == k.Name()
		}
		if !found || (p == nil) != (len(cands) == 1) {
			t.Fatalf("auto = %s (probe %v), candidates %d", k.Name(), p, len(cands))
		}
		e := engineFlags{kernel: k, probe: p}
		if line := e.describe(); !strings.Contains(line, "gemm: "+k.Name()) || (p != nil && !strings.Contains(line, "picked "+k.Name())) {
			t.Fatalf("engine line %q", line)
		}
	}
}

func TestHubOptions(t *testing.T) {
	t.Setenv("HF_HUB_CACHE", "")
	t.Setenv("HUGGINGFACE_HUB_CACHE", "/legacy")
	t.Setenv("HF_HOME", "/h")
	t.Setenv("XDG_CACHE_HOME", "/x")
	o := hubOptions()
	if o.HubCache != "/legacy" || o.HFHome != "/h" || o.XDGCacheHome != "/x" {
		t.Fatalf("hubOptions() = %+v", o)
	}
	t.Setenv("HF_HUB_CACHE", "/new")
	if o := hubOptions(); o.HubCache != "/new" {
		t.Fatalf("HF_HUB_CACHE not preferred: %+v", o)
	}
}

// TestHintOpenBLASCore: the hint is set only when the user did not set it.
func TestHintOpenBLASCore(t *testing.T) {
	t.Setenv(openblasCoreEnv, "Zen")
	hintOpenBLASCore()
	if got := os.Getenv(openblasCoreEnv); got != "Zen" {
		t.Fatalf("a user's %s was replaced by %q", openblasCoreEnv, got)
	}
	t.Setenv(openblasCoreEnv, "")
	os.Unsetenv(openblasCoreEnv)
	hintOpenBLASCore()
	if got := os.Getenv(openblasCoreEnv); got != gemm.OpenBLASCore() {
		t.Fatalf("%s = %q, want %q", openblasCoreEnv, got, gemm.OpenBLASCore())
	}
}

// TestTuneGC: the binary's GC target is defaultGCPercent unless $GOGC is
// set, in which case the runtime's reading of it stands.
func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	t.Setenv("GOGC", "100")
	debug.SetGCPercent(123) // stands for what the runtime read from $GOGC
	tuneGC()
	if got := debug.SetGCPercent(100); got != 123 {
		t.Fatalf("with $GOGC set, tuneGC changed the GC percent to %d", got)
	}
	os.Unsetenv("GOGC")
	tuneGC()
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("without $GOGC, GC percent %d, want %d", got, defaultGCPercent)
	}
}
