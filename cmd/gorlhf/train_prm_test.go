package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/trainer/prm"
)

// TestTrainPRM_FlagsBound: every tagged field of prm.Config is a flag,
// except the dataset keys of other trainers and chat templates.
func TestTrainPRM_FlagsBound(t *testing.T) {
	absent := []string{"data.output_key", "data.multiturn", "data.prompt_key", "data.chosen_key", "data.rejected_key",
		"data.input_template", "data.apply_chat_template", "data.tokenizer_chat_template"}
	cfg := prm.DefaultConfig()
	f := prmFlags(&cfg)
	for _, n := range cfgflag.Names(&cfg) {
		if bound := f.fs.Lookup(n) != nil; bound == slices.Contains(absent, n) {
			t.Errorf("train prm: tagged flag --%s bound=%v", n, bound)
		}
	}
	if err := f.parse([]string{"--placeholder_token", "@", "--reward_tokens", "+ -"}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.RewardTokens, []string{"+", "-"}) {
		t.Fatalf("--reward_tokens \"+ -\" gave %q", cfg.RewardTokens)
	}
}

// TestTrainPRM_ShippedData trains a few steps on the shipped step-tagged
// data and checks the run's outputs; a dataset without step tags fails
// naming its file and line, with nothing written.
func TestTrainPRM_ShippedData(t *testing.T) {
	out := filepath.Join(t.TempDir(), "prm")
	ds := filepath.Join("..", "..", "recipes", "data", "prm_arithmetic_train.jsonl")
	args := []string{"prm", "--quiet", "--placeholder_token", "@", "--reward_tokens", "+,-",
		"--data.dataset", ds, "--data.max_samples", "32", "--eval.dataset", filepath.Join("..", "..", "recipes", "data", "prm_arithmetic_eval.jsonl"),
		"--train.micro_batch_size", "8", "--train.batch_size", "16", "--adam.lr", "1e-3", "--ckpt.output_dir", out}
	if err := runTrain(context.Background(), args); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"model.safetensors", "config.json", "prm.json", "metrics.jsonl", "acc.png"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "untagged.jsonl")
	if err := os.WriteFile(bad, []byte(`{"input": "3+4=?\n3+4=7 @", "label": ["+"]}`+"\n"+`{"input": "3+4=?\n3+4=7", "label": ["+"]}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "bad")
	err := runTrain(context.Background(), []string{"prm", "--quiet", "--placeholder_token", "@", "--reward_tokens", "+,-",
		"--data.dataset", bad, "--ckpt.output_dir", out2})
	if err == nil || !strings.Contains(err.Error(), bad+":2: no step tag") {
		t.Fatalf("error %v, want one naming %s:2", err, bad)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Fatalf("run folder after a data error: %v", err)
	}
}

// TestTrainPRM_RunFile: the recipe's run file sets the flags it names.
func TestTrainPRM_RunFile(t *testing.T) {
	cfg := prm.DefaultConfig()
	f := prmFlags(&cfg)
	if err := f.parse([]string{"--config", filepath.Join("..", "..", "recipes", "prm_arithmetic.yaml")}); err != nil {
		t.Fatal(err)
	}
	if cfg.PlaceholderToken != "@" || !slices.Equal(cfg.RewardTokens, []string{"+", "-"}) || cfg.Train.MaxEpochs != 8 ||
		cfg.Train.Optim.LR != 2e-3 || cfg.LabelKey != "label" || !strings.HasSuffix(cfg.Train.Eval.Dataset, "prm_arithmetic_eval.jsonl") {
		t.Fatalf("config %+v", cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}
