package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrain_DegenerateFlags (issue 17, item 9): NaN and ±Inf in a float
// flag are refused with the flag's name and its allowed range, never a
// JSON encoder's or a Go struct's words.
func TestTrain_DegenerateFlags(t *testing.T) {
	ds := storiesData(t)
	sft := func(extra ...string) []string {
		return append(sftArgs(ds, filepath.Join(t.TempDir(), "run")), extra...)
	}
	ppo := func(extra ...string) []string {
		return append([]string{"ppo", "--data.prompt_dataset", ds, "--data.input_key", "question", "--reward.rule", "length",
			"--ckpt.output_dir", filepath.Join(t.TempDir(), "run"), "--quiet"}, extra...)
	}
	for _, c := range []struct {
		args []string
		want []string
	}{
		{sft("--adam.lr", "NaN"), []string{"--adam.lr", "finite number ≥ 0", "NaN"}},
		{sft("--lr_warmup_ratio", "NaN"), []string{"--lr_warmup_ratio", "[0, 1]", "NaN"}},
		{sft("--min_lr_ratio", "2"), []string{"--min_lr_ratio", "[0, 1]"}},
		{sft("--max_norm", "Inf"), []string{"--max_norm", "finite number ≥ 0"}},
		{sft("--adam.eps", "-Inf"), []string{"--adam.eps", "> 0"}},
		{sft("--adam.weight_decay", "NaN"), []string{"--adam.weight_decay", "≥ 0"}},
		{sft("--adam.betas", "NaN,0.9"), []string{"--adam.betas", "[0, 1)"}},
		{[]string{"dpo", "--data.dataset", ds, "--model.label_smoothing", "NaN", "--quiet",
			"--ckpt.output_dir", filepath.Join(t.TempDir(), "run")}, []string{"--model.label_smoothing", "finite"}},
		{ppo("--actor.adam.lr", "NaN"), []string{"--actor.adam.lr", "finite number ≥ 0"}},
		{ppo("--critic.lr_warmup_ratio", "Inf", "--algo.advantage.estimator", "gae"), []string{"--critic.lr_warmup_ratio", "[0, 1]"}},
		{ppo("--algo.kl.init_coef", "NaN"), []string{"--algo.kl.init_coef"}},
	} {
		err := runTrain(context.Background(), c.args)
		if err == nil {
			t.Errorf("%v: accepted", c.args[len(c.args)-2:])
			continue
		}
		msg := err.Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%v: %q does not say %q", c.args[len(c.args)-2:], msg, w)
			}
		}
		if strings.Contains(msg, "json:") || strings.Contains(msg, "{") {
			t.Errorf("%v: %q", c.args[len(c.args)-2:], msg)
		}
	}
}
