package main

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestGenerate_DType: --dtype bf16 and f16 decode stories260K greedily
// from BOS to f32's 32 tokens (the engine test follows 200), and a bad
// value is refused naming the choices.
func TestGenerate_DType(t *testing.T) {
	tokens := map[string][]int32{}
	for _, dt := range []string{"f32", "bf16", "f16"} {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		args := []string{"generate", "--prompt", "", "--temperature", "0", "--max-new-tokens", "32", "--dtype", dt, "--threads", "1", "--output", out}
		if err := run(context.Background(), args, io.Discard); err != nil {
			t.Fatalf("--dtype %s: %v", dt, err)
		}
		tokens[dt] = readRecords(t, out)[0].Completions[0].Tokens
	}
	for _, dt := range []string{"bf16", "f16"} {
		if !slices.Equal(tokens[dt], tokens["f32"]) {
			t.Errorf("--dtype %s: %v, f32 gives %v", dt, tokens[dt], tokens["f32"])
		}
	}
	err := run(context.Background(), []string{"generate", "--prompt", "", "--dtype", "int4"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "bf16") {
		t.Fatalf("--dtype int4: %v", err)
	}
}
