package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/serve"
	"github.com/gorlhf/gorlhf/internal/train"
)

// storyPrompts are the two prompts of the stop test, under the keys
// generate (prompt) and the RL trainer (input) read.
var storyPrompts = []string{"Once upon a time", "Lily saw a cat"}

// TestGenerationConfig_TwoEOS writes stories260K as an HF folder whose
// generation_config.json lists two eos ids the model emits early under
// greedy decoding (one for each prompt), and checks that generate, serve
// and PPO rollouts all stop at each of them: the three share load.Open's
// stop ids.
func TestGenerationConfig_TwoEOS(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "stories")
	if err := run(ctx, []string{"convert", "--out", dir}, io.Discard); err != nil {
		t.Fatal(err)
	}
	prompts := filepath.Join(t.TempDir(), "prompts.jsonl")
	var lines bytes.Buffer
	for _, p := range storyPrompts {
		fmt.Fprintf(&lines, "{\"prompt\": %q, \"input\": %q}\n", p, p)
	}
	if err := os.WriteFile(prompts, lines.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	const maxNew = 24
	free := greedyRecords(t, dir, prompts, maxNew)
	a, i, b, j := pickStops(t, free[0].Completions[0].Tokens, free[1].Completions[0].Tokens)
	gc := fmt.Sprintf(`{"bos_token_id": 1, "eos_token_id": [%d, %d]}`, a, b)
	if err := os.WriteFile(filepath.Join(dir, "generation_config.json"), []byte(gc), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("prompt 0 stops at token %d after %d tokens, prompt 1 at token %d after %d", a, i+1, b, j+1)
	wantLens := []int{i + 1, j + 1}

	// generate: each prompt ends at its stop id, the tokens before it unchanged.
	stopped := greedyRecords(t, dir, prompts, maxNew)
	for k, r := range stopped {
		c, want := r.Completions[0], free[k].Completions[0].Tokens[:wantLens[k]]
		if c.FinishReason != string(generate.FinishStop) || !slices.Equal(c.Tokens, want) {
			t.Errorf("generate prompt %d: %s after %v, want stop after %v", k, c.FinishReason, c.Tokens, want)
		}
	}

	// serve: the same completions through /v1/completions.
	t.Run("serve", func(t *testing.T) {
		rf := rolloutFlags{model: dir, bos: "auto", engine: generate.DefaultConfig()}
		rm, err := rf.open()
		if err != nil {
			t.Fatal(err)
		}
		srv, eng, err := rm.server(rf.engine, serve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		body, _ := json.Marshal(map[string]any{"prompt": storyPrompts, "max_tokens": maxNew, "temperature": 0})
		resp, err := http.Post(hs.URL+"/v1/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct {
			Choices []struct {
				Index        int    `json:"index"`
				Text         string `json:"text"`
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		if len(out.Choices) != 2 || out.Usage.CompletionTokens != wantLens[0]+wantLens[1] {
			t.Fatalf("%d choices, %d completion tokens, want 2 and %d", len(out.Choices), out.Usage.CompletionTokens, wantLens[0]+wantLens[1])
		}
		for _, c := range out.Choices {
			if want := stopped[c.Index].Completions[0].Text; c.FinishReason != "stop" || c.Text != want {
				t.Errorf("serve prompt %d: %s %q, want stop %q", c.Index, c.FinishReason, c.Text, want)
			}
		}
	})

	// PPO: greedy rollouts (and the greedy eval before training) of the
	// two prompts stop at the two ids, so no response is truncated.
	t.Run("ppo", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "run")
		args := []string{"ppo", "--quiet", "--threads", "2", "--actor.model_name_or_path", dir,
			"--data.prompt_dataset", prompts, "--eval.dataset", prompts, "--data.max_len", "64",
			"--rollout.batch_size", "2", "--rollout.n_samples_per_prompt", "1", "--rollout.max_new_tokens", fmt.Sprint(maxNew),
			"--rollout.temperature", "0", "--eval.temperature", "0", "--algo.advantage.estimator", "reinforce",
			"--algo.kl.init_coef", "0", "--reward.rule", "length", "--train.batch_size", "2", "--train.micro_batch_size", "2",
			"--train.max_iterations", "1", "--ckpt.output_dir", out, "--ckpt.save_steps", "-1"}
		if err := runTrain(ctx, args); err != nil {
			t.Fatal(err)
		}
		rows, err := train.ReadMetrics(filepath.Join(out, train.MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		mean := float64(wantLens[0]+wantLens[1]) / 2
		var seen int
		for _, r := range rows {
			if r.Step > 1 || (r.Split != "train" && r.Split != "eval") {
				continue
			}
			seen++
			if r.Values["response_length"] != mean || r.Values["truncated_frac"] != 0 {
				t.Errorf("%s row %d: response_length %v truncated_frac %v, want %v and 0",
					r.Split, r.Step, r.Values["response_length"], r.Values["truncated_frac"], mean)
			}
		}
		if seen < 2 {
			t.Fatalf("%d train/eval rows", seen)
		}
	})
}

// greedyRecords runs generate greedily on every prompt of a file.
func greedyRecords(t *testing.T, model, prompts string, maxNew int) []generateRecord {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.jsonl")
	args := []string{"generate", "--model", model, "--input", prompts, "--temperature", "0",
		"--max-new-tokens", fmt.Sprint(maxNew), "--output", out, "--threads", "2"}
	if err := run(context.Background(), args, io.Discard); err != nil {
		t.Fatal(err)
	}
	return readRecords(t, out)
}

func readRecords(t *testing.T, path string) []generateRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []generateRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r generateRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	return recs
}

// pickStops chooses a stop id for each greedy continuation: a = c0[i] and
// b = c1[j], different, not special (< 3), and such that neither appears
// earlier in either continuation, so prompt 0 stops exactly at i and
// prompt 1 exactly at j.
func pickStops(t *testing.T, c0, c1 []int32) (a int32, i int, b int32, j int) {
	t.Helper()
	clean := func(x int32, c []int32, upTo int) bool { return x >= 3 && !slices.Contains(c[:upTo], x) }
	for i = 1; i < len(c0)-1; i++ {
		for j = 1; j < len(c1)-1; j++ {
			a, b = c0[i], c1[j]
			if a != b && clean(a, c0, i) && clean(b, c0, i) && clean(a, c1, j) && clean(b, c1, j) {
				return a, i, b, j
			}
		}
	}
	t.Fatalf("no stop pair in the greedy continuations %v and %v", c0, c1)
	return
}

// TestGenerate_EmptyPrompt checks that --prompt "" generates
// unconditionally from BOS, as llama2.c's run.c does (also with --bos off,
// which only stops BOS being put before text), and that generate still
// wants exactly one of --prompt and --input.
func TestGenerate_EmptyPrompt(t *testing.T) {
	var first []int32
	for _, bos := range []string{"auto", "off"} {
		out := filepath.Join(t.TempDir(), "out.jsonl")
		args := []string{"generate", "--prompt", "", "--bos", bos, "--temperature", "0", "--max-new-tokens", "8", "--output", out}
		if err := run(context.Background(), args, io.Discard); err != nil {
			t.Fatalf("--bos %s: %v", bos, err)
		}
		recs := readRecords(t, out)
		if len(recs) != 1 || recs[0].PromptTokens != 1 || string(recs[0].Prompt) != `""` || len(recs[0].Completions[0].Tokens) == 0 {
			t.Fatalf("--bos %s: records %+v", bos, recs)
		}
		if toks := recs[0].Completions[0].Tokens; first == nil {
			first = toks
		} else if !slices.Equal(toks, first) {
			t.Errorf("--bos off from BOS gave %v, --bos auto %v", toks, first)
		}
	}
	for _, args := range [][]string{{"generate"}, {"generate", "--prompt", "", "--input", "p.jsonl"}} {
		if err := run(context.Background(), args, io.Discard); err == nil || !strings.Contains(err.Error(), "exactly one") {
			t.Errorf("%q: %v", args, err)
		}
	}
}
