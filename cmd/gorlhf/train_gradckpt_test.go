package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/gemm"
	"github.com/gorlhf/gorlhf/internal/safetensors"
	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
	"github.com/gorlhf/gorlhf/internal/trainer/ppo"
	"github.com/gorlhf/gorlhf/internal/trainer/rm"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// TestTrain_GradientCheckpointingFlagsListed: --help of each trainer lists
// its gradient-checkpointing flags.
func TestTrain_GradientCheckpointingFlagsListed(t *testing.T) {
	sc, rc, dc, pc := sft.DefaultConfig(), rm.DefaultConfig(), dpo.DefaultConfig(), ppo.DefaultConfig()
	pf := newTrainFlags("ppo")
	registerPPO(pf.fs, &pc)
	for _, c := range []struct {
		name  string
		f     *trainFlags
		flags []string
	}{
		{"sft", sftFlags(&sc), []string{"model.gradient_checkpointing_enable"}},
		{"rm", rmFlags(&rc), []string{"model.gradient_checkpointing_enable"}},
		{"dpo", dpoFlags(&dc), []string{"model.gradient_checkpointing_enable"}},
		{"ppo", pf, []string{"actor.gradient_checkpointing_enable", "critic.gradient_checkpointing_enable"}},
	} {
		var out bytes.Buffer
		c.f.fs.SetOutput(&out)
		c.f.fs.Usage()
		for _, fl := range c.flags {
			if !strings.Contains(out.String(), "-"+fl+"\n") {
				t.Errorf("train %s --help does not list --%s", c.name, fl)
			}
		}
	}
}

// TestTrain_GradientCheckpointingSameModel: runs of every trainer with
// gradient checkpointing end with final weights byte-identical to the
// same runs without it — SFT padded and packed, RM, DPO, and PPO with a
// critic and a reference (actor and critic checkpointed).
func TestTrain_GradientCheckpointingSameModel(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ten short trainings")
	}
	dir := t.TempDir()
	pairs := filepath.Join(dir, "pairs.jsonl")
	var b strings.Builder
	for i := range 8 {
		fmt.Fprintf(&b, "{\"chosen\": \"Lily was happy %d.\", \"rejected\": \"Lily was sad %d.\"}\n", i, i)
	}
	if err := os.WriteFile(pairs, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	offline := []string{"--train.micro_batch_size", "2", "--train.batch_size", "4", "--train.max_steps", "3",
		"--data.max_len", "48", "--adam.lr", "1e-3", "--threads", "2", "--gemm", gemm.Default().Name(), "--quiet"}
	ckpt := []string{"--model.gradient_checkpointing_enable"}
	sftData := []string{"sft", "--data.dataset", storiesData(t), "--data.input_key", "question", "--data.output_key", "answer", "--sft.samples", "0"}
	for _, c := range []struct {
		name  string
		args  []string
		ckpt  []string
		files []string
	}{
		{"sft", append(sftData, offline...), ckpt, []string{safetensors.SingleName}},
		{"sft-packed", append(append(sftData, offline...), "--ds.packing_samples"), ckpt, []string{safetensors.SingleName}},
		{"rm", append([]string{"rm", "--data.dataset", pairs}, offline...), ckpt, []string{safetensors.SingleName}},
		{"dpo", append([]string{"dpo", "--data.dataset", pairs}, offline...), ckpt, []string{safetensors.SingleName}},
		{"ppo", ppoArgs(placedPrompts(t), "", "--algo.advantage.estimator", "gae", "--algo.kl.init_coef", "0.01"),
			[]string{"--actor.gradient_checkpointing_enable", "--critic.gradient_checkpointing_enable"},
			[]string{safetensors.SingleName, filepath.Join("critic", safetensors.SingleName)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			run := func(name string, extra []string) string {
				out := filepath.Join(dir, c.name+"-"+name)
				args := append(append(append([]string(nil), c.args...), extra...), "--ckpt.output_dir", out)
				if err := runTrain(context.Background(), args); err != nil {
					t.Fatalf("train %s: %v", strings.Join(args, " "), err)
				}
				return out
			}
			plain, ck := run("plain", nil), run("checkpointed", c.ckpt)
			for _, f := range c.files {
				want, err := os.ReadFile(filepath.Join(plain, f))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(ck, f))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					assertSameWeights(t, filepath.Join(ck, f), filepath.Join(plain, f))
					t.Fatalf("%s: %s differs from the run without gradient checkpointing", c.name, f)
				}
			}
		})
	}
}
