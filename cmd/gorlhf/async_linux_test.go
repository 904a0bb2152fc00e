package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/train"
)

// asyncFlags run PPO with GAE asynchronously, two batches ahead.
var asyncFlags = []string{"--algo.advantage.estimator", "gae", "--algo.kl.init_coef", "0.01",
	"--train.async_enable", "--train.async_queue_size", "2"}

// TestAsync_PlacedMatchesInproc: an async run with every role in a worker
// process of its own (the rollout engine in one, the actor in another,
// generation overlapping training across them) ends with the same
// weights and metrics rows, timings aside, as the same run in process,
// which in turn differs from the synchronous run.
func TestAsync_PlacedMatchesInproc(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO with worker processes")
	}
	useTestBinary(t)
	prompts := placedPrompts(t)
	dir := t.TempDir()
	flags := append(slices.Clone(asyncFlags), "--train.max_iterations", "4")
	inproc := filepath.Join(dir, "inproc")
	d := runPPOTimed(t, ppoArgs(prompts, inproc, flags...))
	t.Logf("async in process: %v", d.Round(time.Millisecond))
	local := filepath.Join(dir, "local")
	d = runPPOTimed(t, ppoArgs(prompts, local, append(slices.Clone(flags), "--launcher", "local")...))
	t.Logf("async, --launcher local: %v", d.Round(time.Millisecond))
	assertWorkers(t, local, 4)
	assertSameRun(t, inproc, local)
	sync := filepath.Join(dir, "sync")
	runPPOTimed(t, ppoArgs(prompts, sync, flags[:4]...))
	a, _ := os.ReadFile(filepath.Join(inproc, safetensors.SingleName))
	b, _ := os.ReadFile(filepath.Join(sync, safetensors.SingleName))
	if len(a) == 0 || slices.Equal(a, b) {
		t.Fatal("the async run trained the same weights as the synchronous one")
	}
	for i, r := range metricRows(t, local) {
		if r["async_staleness_max"] != float64(min(i, 2)) {
			t.Fatalf("iteration %d: staleness %v, want %d", i+1, r["async_staleness_max"], min(i, 2))
		}
	}
}

// TestAsync_DriverKilledResumes: kill -9 of an async run's process
// mid-run (anywhere in an iteration or a checkpoint); the same command
// with --ckpt.load_enable resumes from the last checkpoint, whose queue
// holds the batches generated ahead, and ends with the weights (actor
// and critic) and last metrics row of an uninterrupted run, bit for bit.
func TestAsync_DriverKilledResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PPO and kills it")
	}
	prompts := placedPrompts(t)
	dir := t.TempDir()
	flags := append(slices.Clone(asyncFlags), longRun(8)...)
	whole := filepath.Join(dir, "uninterrupted")
	runPPOTimed(t, ppoArgs(prompts, whole, flags...))

	out := filepath.Join(dir, "killed")
	args := ppoArgs(prompts, out, flags...)
	driver, log, ended := startGorlhf(t, nil, append([]string{"train"}, args...)...)
	waitStep(t, out, 2, ended)
	time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
	if err := driver.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if _, ok := ended.wait(faultTimeout); !ok {
		t.Fatalf("pid %d did not die", driver.Process.Pid)
	}
	latest, _ := train.LatestCheckpoint(filepath.Join(out, "checkpoints", "_actor"))
	if filepath.Base(latest) == "global_step8" {
		t.Fatalf("the run ended before the kill:\n%s", log)
	}
	t.Logf("killed; resuming from %s", filepath.Base(latest))
	runPPOTimed(t, append(args, "--ckpt.load_enable"))
	for _, f := range []string{safetensors.SingleName, filepath.Join("critic", safetensors.SingleName)} {
		assertSameWeights(t, filepath.Join(whole, f), filepath.Join(out, f))
	}
	rw, ro := metricRows(t, whole), metricRows(t, out)
	if len(ro) == 0 || !reflect.DeepEqual(rw[len(rw)-1], ro[len(ro)-1]) {
		t.Fatalf("last metrics row after resuming:\n%v\nuninterrupted:\n%v", ro[len(ro)-1], rw[len(rw)-1])
	}
}
