package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBatchInference_GenerateScoreSelect runs the RAFT data path with the
// embedded model: best-of-3 generation, scoring with a rule grader,
// rejection sampling and iter_dpo pairs; then one SFT step on the kept
// samples.
func TestBatchInference_GenerateScoreSelect(t *testing.T) {
	dir := t.TempDir()
	prompts := filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(prompts, []byte(`{"input":"Once upon a time","label":"x"}`+"\n"+`{"input":"Tom had a ball.","label":"y"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gen, rs, dpo := filepath.Join(dir, "gen.jsonl"), filepath.Join(dir, "rs.jsonl"), filepath.Join(dir, "dpo.jsonl")
	ctx := context.Background()
	must := func(args ...string) {
		t.Helper()
		if err := run(ctx, args, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	must("batch_inference", "--eval_task", "generate_vllm", "--pretrain", "stories260K", "--dataset", prompts, "--label_key", "label",
		"--best_of_n", "3", "--max_new_tokens", "16", "--output_path", gen)
	lines := readLines(t, gen)
	if len(lines) != 6 || !strings.Contains(lines[1], `"input":"Tom had a ball."`) || !strings.Contains(lines[1], `"label":"y"`) {
		t.Fatalf("generate wrote %q", lines)
	}
	must("batch_inference", "--eval_task", "rm", "--rule", "length", "--dataset", gen, "--post_processor", "rs", "--output_path", rs)
	if kept := readLines(t, rs); len(kept) != 2 || !strings.Contains(kept[0], `"reward":`) {
		t.Fatalf("rs wrote %q", kept)
	}
	must("batch_inference", "--eval_task", "rm", "--rule", "length", "--dataset", gen, "--post_processor", "iter_dpo", "--output_path", dpo)
	for _, l := range readLines(t, dpo) {
		for _, k := range []string{`"prompt":`, `"chosen":`, `"rejected":`, `"chosen_reward":`, `"rejected_reward":`} {
			if !strings.Contains(l, k) {
				t.Fatalf("iter_dpo line %s has no %s", l, k)
			}
		}
	}
	must("train", "sft", "--quiet", "--data.dataset", rs, "--data.output_key", "output", "--data.input_template", "", "--train.batch_size", "2", "--train.micro_batch_size", "2",
		"--train.max_steps", "1", "--sft.samples", "0", "--ckpt.output_dir", filepath.Join(dir, "sft"))
	must("train", "dpo", "--quiet", "--data.dataset", dpo, "--data.prompt_key", "prompt", "--train.batch_size", "1", "--train.micro_batch_size", "1",
		"--train.max_steps", "1", "--ckpt.output_dir", filepath.Join(dir, "dpo"))
	// bad input: unknown task, unknown post-processor, a generate file without outputs
	for _, args := range [][]string{
		{"--eval_task", "nope", "--dataset", gen, "--output_path", rs},
		{"--eval_task", "rm", "--rule", "length", "--dataset", gen, "--post_processor", "csft2", "--output_path", rs},
		{"--eval_task", "rm", "--rule", "length", "--dataset", prompts, "--output_path", rs},
	} {
		if err := run(ctx, append([]string{"batch_inference"}, args...), io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}
