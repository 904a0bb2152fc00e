//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/train"
)

// helperFileSizeLimit caps every file the helper process writes at s
// bytes (RLIMIT_FSIZE), the way a full disk stops a write: past the cap a
// write fails (EFBIG; SIGXFSZ is ignored so the process sees the error).
func helperFileSizeLimit(s string) error {
	if s == "" {
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return err
	}
	signal.Ignore(syscall.SIGXFSZ)
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n})
}

// runFails runs a helper `gorlhf train` that must exit with status 1, and
// returns its output.
func runFails(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) string {
	t.Helper()
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v\n%s", err, out)
	}
	return out.String()
}

func readOrEmpty(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestTrain_UsedFolder (issue 17, 2a): a second run in a finished run's
// folder is refused and changes nothing; --ckpt.overwrite starts clean,
// so checkpoint rotation keeps the new run's checkpoints, not the old.
func TestTrain_UsedFolder(t *testing.T) {
	ds, out := storiesData(t), t.TempDir()
	first, log := trainProcess(sftArgs(ds, out, "--train.max_steps", "9")...)
	if err := first.Run(); err != nil {
		t.Fatalf("first run: %v\n%s", err, log)
	}
	model, metrics := readOrEmpty(filepath.Join(out, "model.safetensors")), readOrEmpty(filepath.Join(out, train.MetricsFile))
	ckpts := dirNames(t, filepath.Join(out, "ckpt"))

	again, log := trainProcess(sftArgs(ds, out, "--train.max_steps", "4")...)
	msg := runFails(t, again, log)
	for _, want := range []string{"is not empty", "--ckpt.load_enable", "--ckpt.overwrite"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not say %q:\n%s", want, msg)
		}
	}
	if readOrEmpty(filepath.Join(out, "model.safetensors")) != model || readOrEmpty(filepath.Join(out, train.MetricsFile)) != metrics ||
		!slices.Equal(dirNames(t, filepath.Join(out, "ckpt")), ckpts) {
		t.Fatal("the refused run changed the folder")
	}

	over, log := trainProcess(sftArgs(ds, out, "--train.max_steps", "4", "--ckpt.overwrite")...)
	if err := over.Run(); err != nil {
		t.Fatalf("overwriting run: %v\n%s", err, log)
	}
	if got, want := dirNames(t, filepath.Join(out, "ckpt")), []string{"global_step3", "global_step4", "latest"}; !slices.Equal(got, want) {
		t.Errorf("checkpoints %v, want the new run's %v", got, want)
	}
	rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
	if err != nil || len(rows) == 0 || rows[0].Step > 1 || rows[len(rows)-1].Step != 4 {
		t.Errorf("metrics of the new run only: %d rows, %v", len(rows), err)
	}
	if l := readOrEmpty(filepath.Join(out, "train.log")); !strings.Contains(l, "--ckpt.overwrite removed") {
		t.Errorf("train.log does not say what the overwrite removed:\n%s", l)
	}
	if _, err := load.Load(out, load.Options{}); err != nil {
		t.Error(err)
	}
}

// TestTrain_FullDiskKeepsModel (issue 17, 2b): a resumed run that cannot
// write its final model (the file size cap stands for a full disk) fails,
// and the folder still holds the previous model, whole and loadable.
func TestTrain_FullDiskKeepsModel(t *testing.T) {
	ds, out := storiesData(t), t.TempDir()
	first, log := trainProcess(sftArgs(ds, out, "--train.max_steps", "4", "--ckpt.save_steps", "2")...)
	if err := first.Run(); err != nil {
		t.Fatalf("first run: %v\n%s", err, log)
	}
	model, config := readOrEmpty(filepath.Join(out, "model.safetensors")), readOrEmpty(filepath.Join(out, "config.json"))

	full, log := trainProcess(sftArgs(ds, out, "--ckpt.load_enable", "--train.max_steps", "6", "--ckpt.save_steps", "-1")...)
	full.Env = append(full.Env, "GORLHF_TRAIN_FSIZE=262144") // the 1 MB model does not fit
	msg := runFails(t, full, log)
	if !strings.Contains(msg, "file too large") {
		t.Errorf("the failed save does not say why:\n%s", msg)
	}
	if readOrEmpty(filepath.Join(out, "model.safetensors")) != model || readOrEmpty(filepath.Join(out, "config.json")) != config {
		t.Error("the failed save changed the previous model")
	}
	if _, err := load.Load(out, load.Options{}); err != nil {
		t.Errorf("the previous model no longer loads: %v", err)
	}
	for _, n := range dirNames(t, out) {
		if strings.Contains(n, ".tmp-") {
			t.Errorf("left behind: %s", n)
		}
	}
}

// TestTrain_TwoRunsOneFolder (issue 17, 2c): while a run holds its
// folder a second one is refused naming both PIDs; once the first is
// killed, the next run takes its stale lock over and says so.
func TestTrain_TwoRunsOneFolder(t *testing.T) {
	ds, out := storiesData(t), t.TempDir()
	long, log := trainProcess(sftArgs(ds, out, "--train.max_steps", "1000000", "--ckpt.save_steps", "-1")...)
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	defer long.Process.Kill()
	lock := filepath.Join(out, train.LockFile)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(readOrEmpty(lock), fmt.Sprintf(`"pid":%d`, long.Process.Pid)) {
		if time.Now().After(deadline) {
			t.Fatalf("the first run never locked its folder\n%s", log)
		}
		time.Sleep(10 * time.Millisecond)
	}

	second, log2 := trainProcess(sftArgs(ds, out, "--ckpt.load_enable")...)
	msg := runFails(t, second, log2)
	for _, want := range []string{"in use", fmt.Sprintf("PID %d", long.Process.Pid), fmt.Sprintf("PID %d", second.Process.Pid)} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal does not say %q:\n%s", want, msg)
		}
	}

	if err := long.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	long.Wait()
	third, log3 := trainProcess(sftArgs(ds, out, "--ckpt.load_enable", "--train.max_steps", "3")...)
	if err := third.Run(); err != nil {
		t.Fatalf("run after the crash: %v\n%s", err, log3)
	}
	if l := readOrEmpty(filepath.Join(out, "train.log")); !strings.Contains(l, fmt.Sprintf("stale lock of PID %d", long.Process.Pid)) {
		t.Errorf("train.log does not name the stale lock's owner:\n%s", l)
	}
	if _, err := os.Stat(lock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock outlived the run: %v", err)
	}
}
