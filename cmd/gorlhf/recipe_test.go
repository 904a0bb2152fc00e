package main

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/train"
)

// gsm8kTinyArgs runs recipes/gsm8k_grpo.yaml on stories260K and the GSM8K
// slices in internal/data/testdata, with budgets small enough for a test:
// every other setting (the math grader, GRPO, k3 KL loss, clip-higher,
// overlong penalty, dynamic filtering, greedy eval) comes from the file.
func gsm8kTinyArgs(out string, extra ...string) []string {
	return append([]string{"train", "ppo", "--config", "../../recipes/gsm8k_grpo.yaml",
		"--actor.model_name_or_path", "stories260K", "--data.apply_chat_template=false",
		"--data.input_template", "Question: {}\nAnswer:",
		"--data.prompt_dataset", "../../internal/data/testdata/gsm8k/train_slice.jsonl",
		"--eval.dataset", "../../internal/data/testdata/gsm8k/test_slice.jsonl", "--eval.max_samples", "4", "--eval.steps", "1",
		"--data.max_len", "448", "--rollout.max_new_tokens", "24", "--reward.overlong_buffer_len", "8",
		"--rollout.batch_size", "2", "--rollout.n_samples_per_prompt", "4",
		"--train.batch_size", "8", "--train.micro_batch_size", "4", "--train.max_iterations", "2",
		"--ckpt.output_dir", out, "--ckpt.save_steps", "-1", "--quiet", "--threads", "2"}, extra...)
}

func TestRecipe_GSM8KGRPO(t *testing.T) {
	if testing.Short() {
		t.Skip("two short RL runs")
	}
	cases := []struct {
		name  string
		extra []string
	}{
		// As written: stories260K never solves a GSM8K problem, so every
		// group is all-wrong, dynamic filtering drops it, and the
		// iterations are skipped after the bounded rounds.
		{"recipe", nil},
		// Without filtering the same groups are trained on (zero
		// advantages, but real optimizer steps and weight syncs).
		{"no filtering", []string{"--algo.dynamic_filtering_enable=false"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			if err := run(context.Background(), gsm8kTinyArgs(out, tc.extra...), io.Discard); err != nil {
				t.Fatal(err)
			}
			rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
			if err != nil {
				t.Fatal(err)
			}
			var evals, trains []train.Row
			for _, r := range rows {
				if r.Split == "eval" {
					evals = append(evals, r)
				} else {
					trains = append(trains, r)
				}
			}
			if len(evals) != 3 || len(trains) != 2 {
				t.Fatalf("%d eval rows (want iterations 0, 1, 2) and %d train rows", len(evals), len(trains))
			}
			for _, r := range evals {
				if s, ok := r.Values["score"]; !ok || s < 0 || s > 1 {
					t.Fatalf("eval at %d: math-grader score %v", r.Step, r.Values)
				}
			}
			last := trains[len(trains)-1].Values
			if tc.extra == nil {
				if last["dynamic_filtering_rounds"] < 1 || last["dynamic_filtering_rounds"] > 4 {
					t.Fatalf("filtering rounds %g, bound 4", last["dynamic_filtering_rounds"])
				}
				if last["skipped_iteration"] != 1 && last["dynamic_filtering_dropped_frac"] == 1 {
					t.Fatalf("every group dropped but the iteration trained: %v", last)
				}
				return
			}
			if _, ok := last["dynamic_filtering_rounds"]; ok {
				t.Fatal("filtering metrics without filtering")
			}
			if pl := last["policy_loss"]; math.IsNaN(pl) || last["weight_version"] != 2 {
				t.Fatalf("policy loss %g, weight version %g (want 2)", pl, last["weight_version"])
			}
			if !fileNonEmpty(filepath.Join(out, "model.safetensors")) {
				t.Fatal("final model not written")
			}
		})
	}
}

func fileNonEmpty(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() > 0
}

func TestDemo_ArithmeticFlags(t *testing.T) {
	// --algo belongs to the sentiment task; the arithmetic task says so
	// before training anything.
	err := run(context.Background(), []string{"demo", "--task", "arithmetic", "--algo", "gae", "--quiet",
		"--output_dir", t.TempDir()}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "--algo applies to the sentiment task") {
		t.Fatalf("error %v", err)
	}
}
