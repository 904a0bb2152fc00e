package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/lora"
)

// TestPlaced_LoRA: PPO with GAE trains the actor and the critic through
// LoRA adapters (--ds.lora.rank); the actor's weight syncs carry the
// adapters alone, worker to worker when placed, merged on the rollout
// side. The run in worker processes (--launcher local) ends with the
// in-process run's adapter files, byte for byte, and its metrics rows.
func TestPlaced_LoRA(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with worker processes")
	}
	useTestBinary(t)
	prompts := placedPrompts(t)
	dir := t.TempDir()
	flags := []string{"--algo.advantage.estimator", "gae", "--algo.kl.init_coef", "0.01",
		"--ds.lora.rank", "4", "--ds.lora.alpha", "8", "--actor.adam.lr", "1e-2"}
	inproc, placed := filepath.Join(dir, "inproc"), filepath.Join(dir, "placed")
	runPPOTimed(t, ppoArgs(prompts, inproc, flags...))
	runPPOTimed(t, ppoArgs(prompts, placed, append(slices.Clone(flags), "--launcher", "local")...))
	assertWorkers(t, placed, 4)
	for _, f := range []string{lora.WeightsFile, filepath.Join("critic", lora.WeightsFile), lora.ConfigFile} {
		a, errA := os.ReadFile(filepath.Join(inproc, f))
		b, errB := os.ReadFile(filepath.Join(placed, f))
		if errA != nil || errB != nil {
			t.Fatalf("%s: %v / %v", f, errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%s differs between the in-process and the placed run", f)
		}
	}
	if _, err := os.Stat(filepath.Join(inproc, "model.safetensors")); err == nil {
		t.Fatal("a LoRA run wrote the whole model")
	}
	f, err := lora.Read(inproc)
	if err != nil {
		t.Fatal(err)
	}
	trained := false
	for _, b := range f.B {
		trained = trained || slices.ContainsFunc(b.Data, func(v float32) bool { return v != 0 })
	}
	if !trained || len(f.Modules) != 7*5 {
		t.Fatalf("the adapters did not train (%d modules)", len(f.Modules))
	}
	wa, wb := metricRows(t, inproc), metricRows(t, placed)
	if len(wa) == 0 || !reflect.DeepEqual(wa, wb) {
		t.Fatalf("metrics rows differ:\n%v\n%v", wa, wb)
	}
}
