package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestConvert_RunFolderKeepsTokenizer (issue 17, item 3): a run folder of
// the embedded model keeps its tokenizer as tokenizer.bin; convert writes
// it as Hugging Face files, and the converted folder generates exactly
// what the run folder does.
func TestConvert_RunFolderKeepsTokenizer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	runDir, out := filepath.Join(dir, "run"), filepath.Join(dir, "hf")
	train := append(sftArgs(storiesData(t), runDir), "--train.max_steps", "1", "--ckpt.save_steps", "-1")
	if err := runTrain(ctx, train); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(runDir, "tokenizer.bin")); err != nil {
		t.Fatalf("the run folder has no tokenizer.bin: %v", err)
	}
	if err := run(ctx, []string{"convert", "--model", runDir, "--out", out}, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("converted folder: %v", err)
		}
	}
	prompts := filepath.Join(dir, "prompts.jsonl")
	if err := os.WriteFile(prompts, []byte("{\"prompt\": \"Once upon a time\"}\n{\"prompt\": \"Lily saw\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	want, got := greedyRecords(t, runDir, prompts, 12), greedyRecords(t, out, prompts, 12)
	for i := range want {
		w, g := want[i].Completions[0], got[i].Completions[0]
		if w.Text != g.Text || !slices.Equal(w.Tokens, g.Tokens) || want[i].PromptTokens != got[i].PromptTokens {
			t.Errorf("prompt %d: run folder %q %v, converted %q %v", i, w.Text, w.Tokens, g.Text, g.Tokens)
		}
	}
}
