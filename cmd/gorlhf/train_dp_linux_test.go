package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/train"
)

// rankOf returns the pid of the live child of parent whose environment
// says it is data-parallel rank rank (0 when there is none).
func rankOf(parent, rank int) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.ppid != parent || p.state == 'Z' {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if strings.Contains("\x00"+string(env), "\x00GORLHF_RANK="+strconv.Itoa(rank)+"\x00") {
			return pid
		}
	}
	return 0
}

// TestTrainDP_RankKilled: kill -9 of rank 1 of a local data-parallel SFT
// run stops rank 0 within 30 s with an error naming the rank, its pid,
// host and exit status, and the checkpoint saved before still resumes.
func TestTrainDP_RankKilled(t *testing.T) {
	data, out := dpStories(t), filepath.Join(t.TempDir(), "out")
	args := append([]string{"train"}, sftDPArgs(data, out, "--launcher", "local", "--model.num_workers_per_node", "2",
		"--ds.zero_stage", "3", "--train.max_steps", "400", "--ckpt.save_steps", "1")...)
	cmd, stderr, run := startGorlhf(t, nil, args...)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if dir, _ := train.LatestCheckpoint(filepath.Join(out, "checkpoints")); dir != "" && !strings.HasSuffix(dir, "global_step1") {
			break
		}
		if _, ended := run.wait(20 * time.Millisecond); ended || time.Now().After(deadline) {
			t.Fatalf("no second checkpoint (ended %v): %s", ended, stderr)
		}
	}
	pid := rankOf(cmd.Process.Pid, 1)
	if pid == 0 {
		t.Fatal("rank 1's process not found")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err, ended := run.wait(faultTimeout)
	if !ended {
		t.Fatalf("rank 0 still runs %v after rank 1 was killed", faultTimeout)
	}
	msg := stderr.String()
	for _, want := range []string{"worker rank 1", "pid " + strconv.Itoa(pid), "signal: killed", "worker-1.log"} {
		if !strings.Contains(msg, want) {
			t.Errorf("rank 0's error does not say %q (exit %v):\n%s", want, err, msg)
		}
	}
	if err == nil {
		t.Error("rank 0 exited 0")
	}
	dir, err := train.LatestCheckpoint(filepath.Join(out, "checkpoints"))
	if err != nil || dir == "" {
		t.Fatalf("latest checkpoint after the kill: %q %v", dir, err)
	}
	step, _ := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "global_step"))
	more := append(args[1:], "--ckpt.load_enable", "--train.max_steps", strconv.Itoa(step+1))
	useTestBinary(t)
	if err := runTrain(t.Context(), more); err != nil {
		t.Fatalf("resume from %s: %v", dir, err)
	}
}
