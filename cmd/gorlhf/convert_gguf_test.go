package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/gguf"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// TestConvertGGUF_Stories writes stories260K as GGUF (f32 and f16), reads
// it back with our reader, and checks the refusals: an existing file, a
// wrong dtype or format, a GPT-2 or Qwen2 folder; nothing is overwritten
// and no temporary file is left behind.
func TestConvertGGUF_Stories(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, dt := range []string{"f32", "f16"} {
		out := filepath.Join(dir, "s-"+dt+".gguf")
		if err := run(ctx, []string{"convert", "--to", "gguf", "--dtype", dt, "--out", out}, io.Discard); err != nil {
			t.Fatal(err)
		}
		f, err := gguf.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if arch, _ := f.Get("general.architecture"); arch != "llama" || len(f.Tensors) != 47 {
			t.Errorf("%s: architecture %v, %d tensors; want llama, 47", dt, arch, len(f.Tensors))
		}
		q, _ := f.Tensor("blk.0.attn_q.weight")
		if want := map[string]gguf.TensorType{"f32": gguf.F32, "f16": gguf.F16}[dt]; q.Type != want {
			t.Errorf("%s: attn_q is %v", dt, q.Type)
		}
	}
	out := filepath.Join(dir, "s-f32.gguf")
	before, _ := os.ReadFile(out)
	tiny := filepath.Join("..", "..", "internal", "model", "load", "testdata", "tiny")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--out", out}, "exists; not overwritten"},
		{[]string{"--out", filepath.Join(dir, "x.gguf"), "--dtype", "bf16"}, "want f32 or f16"},
		{[]string{"--out", filepath.Join(dir, "x.gguf"), "--model", filepath.Join(tiny, "gpt2")}, "GPT-2 may come later"},
		{[]string{"--out", filepath.Join(dir, "x.gguf"), "--model", filepath.Join(tiny, "qwen2")}, "qwen2 model"},
	} {
		err := run(ctx, append([]string{"convert", "--to", "gguf"}, c.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
	if err := run(ctx, []string{"convert", "--to", "onnx", "--out", filepath.Join(dir, "y")}, io.Discard); err == nil || !strings.Contains(err.Error(), "want hf or gguf") {
		t.Errorf("--to onnx: %v", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Error("the existing file changed")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".gguf") || strings.HasPrefix(e.Name(), ".") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestGGUFLlamaCpp: llama.cpp's greedy text for our GGUF of stories260K
// (f32 and f16; from the embedded model, from its converted HF folder,
// whose vocabulary comes from tokenizer.json, and from a run folder after
// two SFT steps) equals gorlhf generate's,
// token for token, prompt ids included. It needs node and a node_modules
// folder holding node-llama-cpp@3.22.1 (prebuilt llama.cpp), named by
// GORLHF_NODE_LLAMA_CPP; see tools/gguf-greedy.
func TestGGUFLlamaCpp(t *testing.T) {
	modules := os.Getenv("GORLHF_NODE_LLAMA_CPP")
	if modules == "" {
		t.Skip("GORLHF_NODE_LLAMA_CPP is not set: set it to a node_modules folder with node-llama-cpp@3.22.1 to compare with llama.cpp (tools/gguf-greedy)")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: cannot run llama.cpp through node-llama-cpp")
	}
	script, err := filepath.Abs(filepath.Join("..", "..", "tools", "gguf-greedy", "greedy.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	hf := filepath.Join(dir, "hf")
	if err := run(ctx, []string{"convert", "--out", hf}, io.Discard); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "sft")
	train := append(sftArgs(storiesData(t), runDir), "--train.max_steps", "2", "--ckpt.save_steps", "-1")
	if err := runTrain(ctx, train); err != nil {
		t.Fatal(err)
	}
	prompts := []string{"Once upon a time", "Lily saw a big red ball", "The"}
	const n = 32
	for _, model := range []string{load.DefaultModel, hf, runDir} {
		want := ignoreEOSGreedy(t, model, prompts, n)
		b, err := load.Open(model, load.OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range []string{"f32", "f16"} {
			out := filepath.Join(dir, fmt.Sprintf("%s-%s.gguf", filepath.Base(model), dt))
			if err := run(ctx, []string{"convert", "--model", model, "--to", "gguf", "--dtype", dt, "--out", out}, io.Discard); err != nil {
				t.Fatal(err)
			}
			for i, p := range prompts {
				got := llamaCppGreedy(t, node, modules, script, out, p, n)
				wantPrompt := append([]int{b.Tok.Specials().BOS}, b.Tok.Encode(p)...)
				if !slices.Equal(got.PromptTokens, wantPrompt) {
					t.Errorf("%s %s %q: llama.cpp prompt ids %v, ours %v", model, dt, p, got.PromptTokens, wantPrompt)
				}
				w := want[i].Completions[0].Tokens
				if !slices.Equal(got.Tokens, w) {
					t.Errorf("%s %s %q: llama.cpp %v %q\nours %v %q", model, dt, p, got.Tokens, got.Text, w, want[i].Completions[0].Text)
				}
				t.Logf("%s %s %q → %q", filepath.Base(model), dt, p, got.Text)
			}
		}
	}
}

type llamaCppResult struct {
	PromptTokens []int   `json:"prompt_tokens"`
	Tokens       []int32 `json:"tokens"`
	Text         string  `json:"text"`
}

func llamaCppGreedy(t *testing.T, node, modules, script, model, prompt string, n int) llamaCppResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, model, prompt, fmt.Sprint(n))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node %s: %v\n%s", script, err, stderr.String())
	}
	var r llamaCppResult
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		t.Fatalf("node output %q: %v", out, err)
	}
	return r
}

// ignoreEOSGreedy is gorlhf generate --temperature 0 for exactly n tokens.
func ignoreEOSGreedy(t *testing.T, model string, prompts []string, n int) []generateRecord {
	t.Helper()
	dir := t.TempDir()
	in, out := filepath.Join(dir, "p.jsonl"), filepath.Join(dir, "out.jsonl")
	var lines []byte
	for _, p := range prompts {
		line, _ := json.Marshal(map[string]string{"prompt": p})
		lines = append(append(lines, line...), '\n')
	}
	if err := os.WriteFile(in, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"generate", "--model", model, "--input", in, "--temperature", "0", "--ignore-eos",
		"--max-new-tokens", fmt.Sprint(n), "--output", out, "--threads", "2"}
	if err := run(context.Background(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	return readRecords(t, out)
}
