package train

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/load"
)

// claim claims c for the test and releases it at the end.
func claim(t *testing.T, c Claim) *RunDir {
	t.Helper()
	d, err := ClaimRunDir(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Release() })
	return d
}

// touch creates files (a trailing "/" makes a folder) under dir.
func touch(t *testing.T, dir string, names ...string) {
	t.Helper()
	for _, n := range names {
		p := filepath.Join(dir, n)
		if strings.HasSuffix(n, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ns, err := entries(dir)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ns)
	return ns
}

func TestClaimRunDir_Rules(t *testing.T) {
	t.Run("new and empty folders", func(t *testing.T) {
		parent := t.TempDir()
		d := claim(t, Claim{Dir: filepath.Join(parent, "a", "b")})
		if got := names(t, d.Path); !slices.Equal(got, []string{LockFile}) {
			t.Errorf("a claimed folder holds %v", got)
		}
		if err := d.Release(); err != nil {
			t.Fatal(err)
		}
		if got := names(t, d.Path); len(got) != 0 {
			t.Errorf("released folder holds %v", got)
		}
		claim(t, Claim{Dir: d.Path}).Release() // empty again: fine
		// A placed run's launcher wrote workers/ and the run never started.
		touch(t, d.Path, "workers/run.json")
		claim(t, Claim{Dir: d.Path})
	})
	t.Run("a used folder is refused", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, dir, "config.json", "model.safetensors", "metrics.jsonl")
		_, err := ClaimRunDir(Claim{Dir: dir, Checkpoints: filepath.Join(dir, "checkpoints")})
		for _, want := range []string{"not empty", "config.json", "--ckpt.load_enable", "--ckpt.overwrite", "--ckpt.output_dir"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err %v, want %q in it", err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, LockFile)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused claim left its lock: %v", err)
		}
	})
	t.Run("checkpoints elsewhere", func(t *testing.T) {
		dir, ck := t.TempDir(), t.TempDir()
		touch(t, ck, "global_step6/trainer_state.json", "latest")
		_, err := ClaimRunDir(Claim{Dir: dir, Checkpoints: ck})
		if err == nil || !strings.Contains(err.Error(), "checkpoint folder") || !strings.Contains(err.Error(), "--ckpt.path") {
			t.Errorf("err %v", err)
		}
		claim(t, Claim{Dir: dir, Checkpoints: ck, Resume: true}).Release()
		d := claim(t, Claim{Dir: dir, Checkpoints: ck, Overwrite: true})
		if got := names(t, ck); len(got) != 0 {
			t.Errorf("overwrite left %v in the checkpoint folder", got)
		}
		d.Release()
	})
	t.Run("resume", func(t *testing.T) {
		dir := t.TempDir()
		ck := filepath.Join(dir, "checkpoints")
		touch(t, dir, "train.log", "metrics.jsonl") // killed before its first checkpoint
		claim(t, Claim{Dir: dir, Checkpoints: ck, Resume: true}).Release()
		touch(t, dir, "config.json", "model.safetensors") // a finished run, no checkpoint
		_, err := ClaimRunDir(Claim{Dir: dir, Checkpoints: ck, Resume: true})
		if err == nil || !strings.Contains(err.Error(), "no checkpoint to resume") || !strings.Contains(err.Error(), "--ckpt.overwrite") {
			t.Errorf("resuming a finished run without checkpoints: %v", err)
		}
		touch(t, ck, "global_step4/trainer_state.json")
		claim(t, Claim{Dir: dir, Checkpoints: ck, Resume: true})
	})
	t.Run("overwrite", func(t *testing.T) {
		dir := t.TempDir()
		touch(t, dir, "config.json", "model.safetensors", "tokenizer.bin", "tokenizer.json", "generation_config.json",
			"train.log", "metrics.jsonl", "loss.png", "samples.txt", "report.html", "tensorboard/events.out",
			"checkpoints/global_step3/x", "critic/config.json", "workers/rank1.log", ".config.json.tmp-123",
			"notes.md", "data/mine.jsonl")
		d := claim(t, Claim{Dir: dir, Checkpoints: filepath.Join(dir, "checkpoints"), Overwrite: true})
		if got, want := names(t, dir), []string{"data", "notes.md", LockFile}; !slices.Equal(got, want) {
			t.Errorf("after overwrite: %v, want %v", got, want)
		}
		notes := strings.Join(d.Notes, "\n")
		if !strings.Contains(notes, "removed") || !strings.Contains(notes, "notes.md") {
			t.Errorf("notes %q", notes)
		}
	})
	t.Run("resume and overwrite", func(t *testing.T) {
		if _, err := ClaimRunDir(Claim{Dir: t.TempDir(), Resume: true, Overwrite: true}); err == nil {
			t.Error("both accepted")
		}
	})
}

// TestClaimRunDir_Lock: a second claim of a folder in use is refused
// naming both processes; the lock of a process that died is taken over
// with a note naming it; one from another host is not.
func TestClaimRunDir_Lock(t *testing.T) {
	dir := t.TempDir()
	first := claim(t, Claim{Dir: dir})
	_, err := ClaimRunDir(Claim{Dir: dir, Resume: true})
	me := fmt.Sprintf("PID %d", os.Getpid())
	if err == nil || !strings.Contains(err.Error(), "in use") || strings.Count(err.Error(), me) != 2 {
		t.Fatalf("second claim: %v, want 'in use' naming %s twice (owner and this process)", err, me)
	}
	first.Release()

	// A real process that has exited leaves its lock behind.
	dead := exec.Command(os.Args[0], "-test.run=^$")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	writeLock(t, dir, lockOwner{PID: dead.Process.Pid, Host: host, Started: time.Now()})
	d := claim(t, Claim{Dir: dir, Resume: true})
	if n := strings.Join(d.Notes, " "); !strings.Contains(n, fmt.Sprintf("stale lock of PID %d", dead.Process.Pid)) {
		t.Errorf("notes %q, want the stale lock named", n)
	}
	b, _ := os.ReadFile(filepath.Join(dir, LockFile))
	var o lockOwner
	if err := json.Unmarshal(b, &o); err != nil || o.PID != os.Getpid() || o.Host != host {
		t.Errorf("lock now says %s (%v)", b, err)
	}
	d.Release()

	writeLock(t, dir, lockOwner{PID: 1234, Host: host + "-elsewhere", Started: time.Now()})
	if _, err := ClaimRunDir(Claim{Dir: dir, Resume: true}); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Errorf("a lock from another host: %v", err)
	}
}

func writeLock(t *testing.T, dir string, o lockOwner) {
	t.Helper()
	b, _ := json.Marshal(o)
	if err := os.WriteFile(filepath.Join(dir, LockFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSession_UsedFolder: a second run in a finished run's folder is
// refused and changes nothing; with Overwrite it starts clean, and
// checkpoint rotation then keeps the new run's checkpoints, not the old.
func TestSession_UsedFolder(t *testing.T) {
	m := stories(t)
	c := testConfig(t)
	c.MaxSteps, c.Ckpt.SaveSteps, c.Ckpt.MaxNum = 6, 2, 2
	runSteps(t, c, m, 8)
	before, _ := os.ReadFile(filepath.Join(c.Ckpt.OutputDir, "model.safetensors"))

	_, err := NewSession(c, Options{Name: "test", Params: m.Params(), NumSamples: 8,
		Model: Model{Module: m.Module(), Config: m.Config}, TrainerConfig: c})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second run in a used folder: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(c.Ckpt.OutputDir, "model.safetensors"))
	if string(before) != string(after) {
		t.Fatal("the refused run changed the model")
	}

	c.MaxSteps, c.Ckpt.SaveSteps, c.Ckpt.Overwrite = 3, 1, true
	runSteps(t, c, m, 8)
	if got := names(t, c.CheckpointDir()); !slices.Equal(got, []string{"global_step2", "global_step3", "latest"}) {
		t.Errorf("checkpoints after the overwriting run: %v", got)
	}
	rows, err := ReadMetrics(filepath.Join(c.Ckpt.OutputDir, MetricsFile))
	if err != nil || rows[len(rows)-1].Step != 3 {
		t.Errorf("metrics: %v rows, %v", len(rows), err)
	}
	if _, err := load.Load(c.Ckpt.OutputDir, load.Options{}); err != nil {
		t.Error(err)
	}
}

// runSteps runs a session of c to the end with zero-loss steps.
func runSteps(t *testing.T, c Config, m *load.Loaded, n int) {
	t.Helper()
	s, err := NewSession(c, Options{Name: "test", Params: m.Params(), NumSamples: n,
		Model: Model{Module: m.Module(), Config: m.Config}, TrainerConfig: c})
	if err != nil {
		t.Fatal(err)
	}
	step := func(ctx context.Context) error {
		s.NextBatch()
		setGrads(m.Params(), 1e-3)
		if _, err := s.Update(context.Background(), 1); err != nil {
			return err
		}
		return s.LogTrain(map[string]float64{"loss": 1}, 8, "")
	}
	if err := Run(context.Background(), s.Loop(step, nil)); err != nil {
		t.Fatal(err)
	}
}

// TestSession_ResumeSkipsDamagedCheckpoint (issue 17): when the latest
// checkpoint is complete by name but does not load (its weights file cut
// short, as a failing disk or copy leaves it), resume warns and takes the
// one before, bit for bit.
func TestSession_ResumeSkipsDamagedCheckpoint(t *testing.T) {
	m := stories(t)
	ps := m.Params()
	c := testConfig(t)
	c.MaxSteps, c.Ckpt.MaxNum = 10, 3
	s := newSession(t, c, m, 8)
	var atStep2 [][]float32
	for step := 1; step <= 3; step++ {
		setGrads(ps, 0.01*float32(step))
		if _, err := s.Update(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		s.sampler.Next(4)
		if err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		if step == 2 {
			atStep2 = snapshot(ps)
		}
	}
	s.Close()
	weights := filepath.Join(c.Ckpt.Path, "global_step3", "model.safetensors")
	st, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(weights, st.Size()/2); err != nil {
		t.Fatal(err)
	}

	c.Ckpt.LoadEnable = true
	m2 := stories(t)
	s2 := newSession(t, c, m2, 8)
	if s2.Step() != 2 || filepath.Base(s2.resumed) != "global_step2" {
		t.Fatalf("resumed at step %d from %q, want step 2", s2.Step(), s2.resumed)
	}
	for i, p := range m2.Params() {
		if !slices.Equal(p.Tensor.Data, atStep2[i]) {
			t.Fatalf("%s is not step 2's", p.Name)
		}
	}
	s2.Close()
	log, _ := os.ReadFile(filepath.Join(c.Ckpt.OutputDir, "train.log"))
	if !strings.Contains(string(log), "checkpoint does not load") || !strings.Contains(string(log), "global_step3") {
		t.Errorf("train.log has no warning about global_step3:\n%s", log)
	}

	// When no checkpoint loads, the resume fails instead of starting fresh.
	for _, tag := range []string{"global_step1", "global_step2"} {
		if err := os.Truncate(filepath.Join(c.Ckpt.Path, tag, "model.safetensors"), 100); err != nil {
			t.Fatal(err)
		}
	}
	_, err = NewSession(c, Options{Name: "test", Params: stories(t).Params(), NumSamples: 8,
		Model: Model{Module: m.Module(), Config: m.Config}, TrainerConfig: c})
	if err == nil || !strings.Contains(err.Error(), "no checkpoint") {
		t.Errorf("every checkpoint damaged: %v", err)
	}
}
