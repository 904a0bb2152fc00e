package ppo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// TestTrainer_UsedFolder: the PPO driver keeps the run-folder rules of
// every trainer (train.Claim): a finished run's folder is refused, a lone
// workers/ folder (a placed run's launcher writes it first) is not, and
// --ckpt.overwrite starts again, removing the old actor, critic and
// checkpoints.
func TestTrainer_UsedFolder(t *testing.T) {
	c := tinyConfigFor(t, rl.EstimatorGAE)
	c.Train.MaxIterations, c.Ckpt.SaveSteps = 1, 1
	if err := os.MkdirAll(filepath.Join(c.Ckpt.OutputDir, train.WorkersDir), 0o755); err != nil {
		t.Fatal(err)
	}
	tr, _ := newTrainer(t, c, tinyEnv(t))
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	env := tinyEnv(t)
	p, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = New(context.Background(), c, p.Set, Runtime{Tok: env.Tok})
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second run in a used folder: %v", err)
	}
	c.Ckpt.Overwrite = true
	c.Ckpt.SaveSteps = -1
	tr, _ = newTrainer(t, c, tinyEnv(t))
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.CheckpointDir()); !os.IsNotExist(err) {
		t.Errorf("the old run's checkpoints survived the overwrite: %v", err)
	}
	for _, f := range []string{"config.json", "critic/config.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(c.Ckpt.OutputDir, f)); err != nil {
			t.Error(err)
		}
	}
}

// TestTrainer_ResumeSkipsDamagedCheckpoint: a latest checkpoint whose
// actor weights are cut short is skipped, with a warning, for the one
// before (actor and critic of that iteration).
func TestTrainer_ResumeSkipsDamagedCheckpoint(t *testing.T) {
	c := tinyConfigFor(t, rl.EstimatorGAE)
	c.Train.MaxIterations, c.Ckpt.SaveSteps = 3, 1
	c.Train.StopAtStep = 3
	tr, _ := newTrainer(t, c, tinyEnv(t))
	if err := tr.Run(context.Background()); err == nil {
		t.Fatal("the run did not stop at iteration 3")
	}
	weights := filepath.Join(c.CheckpointDir(), actorCkpt, "global_step3", "model.safetensors")
	st, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(weights, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	c.Train.StopAtStep, c.Ckpt.LoadEnable = 0, true
	r, _ := newTrainer(t, c, tinyEnv(t))
	if r.Iteration() != 2 || filepath.Base(r.resumed) != "global_step2" {
		t.Fatalf("resumed at iteration %d from %q, want 2", r.Iteration(), r.resumed)
	}
	r.Close()
	log, _ := os.ReadFile(filepath.Join(c.Ckpt.OutputDir, "train.log"))
	if !strings.Contains(string(log), "checkpoint does not load") {
		t.Errorf("no warning in train.log:\n%s", log)
	}
}
