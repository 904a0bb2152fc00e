package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/launch"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo/demo"
)

// TestPlaced_DemoMatchesInproc is the demo's bar: the recipe (a reward
// model, then PPO with GAE against it) with its RL roles in worker
// processes (--launcher local: actor, reference, critic, reward model and
// rollout engine, five processes) ends with the same final policy, byte
// for byte, as the in-process demo of the same seed. The small budget
// keeps it to seconds; the full demo was compared by hand
// (docs/BENCHMARKS.md).
func TestPlaced_DemoMatchesInproc(t *testing.T) {
	if testing.Short() {
		t.Skip("two small demos, one with five worker processes")
	}
	useTestBinary(t)
	eng := engineFlags{threads: 1, gemm: gemm.Default().Name(), quiet: true}
	if err := eng.apply(); err != nil {
		t.Fatal(err)
	}
	run := func(l launch.Launcher) string {
		p, err := demoPlacement(l, eng)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), string(l))
		if _, err := demo.Run(context.Background(), demo.Options{OutputDir: dir, Small: true, Seed: 5,
			Algos: []rl.Estimator{rl.EstimatorGAE}, Placement: p}); err != nil {
			t.Fatalf("--launcher %s: %v", l, err)
		}
		return filepath.Join(dir, "rl_gae")
	}
	in, local := run(launch.Inproc), run(launch.Local)
	logs, _ := filepath.Glob(filepath.Join(local, "workers", "worker-*.log"))
	if len(logs) != 5 { // actor, reference, critic, reward model, rollout engine
		t.Fatalf("%d worker logs under %s, want 5 (one per role)", len(logs), local)
	}
	for _, f := range []string{"model.safetensors", filepath.Join("critic", "model.safetensors")} {
		a, err := os.ReadFile(filepath.Join(in, f))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(local, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs between --launcher inproc and local", f)
		}
	}
}
