package ppo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/rl"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/train"
)

// TestTrainer_PositionLimit: with --data.max_len 2048 on stories260K (512
// positions) a prompt longer than 512 − max_new_tokens is skipped like a
// prompt over max_len − max_new_tokens (it used to be kept, and the
// rollout engine would have refused it mid-run or its response run past
// the positions), the log says so, and a max_new_tokens that leaves no
// room for a prompt in the positions is an error before anything runs.
func TestTrainer_PositionLimit(t *testing.T) {
	b, err := load.Open(load.DefaultModel, load.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := train.Setup{Bundle: b}
	c := tinyConfigFor(t, rl.EstimatorGroupNorm)
	c.Data.MaxLen = 2048
	long := `{"input": "` + strings.Repeat("Lily saw a big dog. ", 120) + `", "label": 1}` + "\n" // ~600 tokens
	short, err := os.ReadFile(c.Data.PromptDataset)
	if err != nil {
		t.Fatal(err)
	}
	c.Data.PromptDataset = filepath.Join(t.TempDir(), "prompts.jsonl")
	if err := os.WriteFile(c.Data.PromptDataset, append([]byte(long), short...), 0o644); err != nil {
		t.Fatal(err)
	}
	roles, err := inproc.Build(c.RoleSpec(), env, loadModel)
	if err != nil {
		t.Fatal(err)
	}
	defer roles.Close()
	rt := Runtime{Tok: env.Tok, MaxPositions: roles.MaxPositions()}
	if rt.MaxPositions != 512 {
		t.Fatalf("the rollout engine's position limit is %d, want stories260K's 512", rt.MaxPositions)
	}
	tr, err := New(context.Background(), c, roles.Set, rt)
	if err != nil {
		t.Fatal(err)
	}
	n := len(tr.prompts)
	tr.Close()
	if n != 12 {
		t.Errorf("%d prompts kept, want the 12 short ones (the long one skipped)", n)
	}
	log, err := os.ReadFile(filepath.Join(c.Ckpt.OutputDir, "train.log"))
	if err != nil || !strings.Contains(string(log), "--data.max_len 2048 is more than the policy's 512 positions") {
		t.Errorf("train.log (%v) lacks the position-limit warning:\n%s", err, log)
	}

	c.Rollout.MaxNewTokens = 512
	c.Ckpt.OutputDir = filepath.Join(t.TempDir(), "run2")
	if _, err := New(context.Background(), c, roles.Set, rt); err == nil ||
		!strings.Contains(err.Error(), "--rollout.max_new_tokens 512 leaves no room for a prompt in the policy's 512 positions") {
		t.Errorf("max_new_tokens 512 in 512 positions: %v", err)
	}
}
