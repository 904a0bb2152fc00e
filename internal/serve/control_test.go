package serve

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/safetensors"
)

// tokenChoice is a completion choice read with token ids and raw
// log-probs at full float32 precision.
type tokenChoice struct {
	Index          int     `json:"index"`
	FinishReason   string  `json:"finish_reason"`
	PromptTokenIDs []int32 `json:"prompt_token_ids"`
	TokenIDs       []int32 `json:"token_ids"`
	Logprobs       struct {
		TokenLogprobs []float32 `json:"token_logprobs"`
	} `json:"logprobs"`
}

type tokenAnswer struct {
	Choices       []tokenChoice `json:"choices"`
	WeightVersion int64         `json:"weight_version"`
	Usage         usage         `json:"usage"`
}

// complete posts a token-id completion and decodes it strictly.
func (f *fixture) complete(t *testing.T, body map[string]any) (tokenAnswer, *http.Response) {
	t.Helper()
	resp := f.do(t, http.MethodPost, "/v1/completions", body)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("completions: %d %s", resp.StatusCode, data)
	}
	var a tokenAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		t.Fatal(err)
	}
	return a, resp
}

// TestServer_TokenIDsSeedsMatchEngine: a token-id prompt with a full
// uint64 seed and return_token_ids answers exactly the in-process
// engine's tokens and raw log-probs for the same (seed, sample index).
func TestServer_TokenIDsSeedsMatchEngine(t *testing.T) {
	f := newFixture(t, Options{})
	prompt := []int32{1, 403, 407, 261, 378}
	const seed = uint64(18446744073709551557) // > 2^63
	a, resp := f.complete(t, map[string]any{"prompt": prompt, "n": 3, "max_tokens": 24, "temperature": 1,
		"seed": seed, "logprobs": 0, "return_token_ids": true})
	want, err := f.eng.Generate(context.Background(), []generate.Request{{Prompt: prompt,
		Params: generate.SamplingParams{N: 3, MaxNewTokens: 24, Temperature: 1, Seed: seed}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Choices) != 3 {
		t.Fatalf("%d choices", len(a.Choices))
	}
	total := 0
	for i, c := range a.Choices {
		w := want[0].Completions[i]
		if c.Index != i || !slices.Equal(c.PromptTokenIDs, prompt) || !slices.Equal(c.TokenIDs, w.Tokens) ||
			!slices.Equal(c.Logprobs.TokenLogprobs, w.RawLogProbs) || c.FinishReason != string(w.FinishReason) {
			t.Fatalf("choice %d: got %+v, engine %v %v %s", i, c, w.Tokens, w.RawLogProbs, w.FinishReason)
		}
		total += len(c.TokenIDs)
	}
	if a.Usage.CompletionTokens != total || a.Usage.PromptTokens != len(prompt) {
		t.Fatalf("usage %+v for %d tokens", a.Usage, total)
	}
	if a.WeightVersion != 0 || resp.Header.Get(WeightVersionHeader) != "0" {
		t.Fatalf("weight version %d, header %q", a.WeightVersion, resp.Header.Get(WeightVersionHeader))
	}
	// a negative seed is its two's-complement uint64
	neg, _ := f.complete(t, map[string]any{"prompt": prompt, "max_tokens": 8, "seed": -59, "return_token_ids": true})
	if !slices.Equal(neg.Choices[0].TokenIDs, want[0].Completions[0].Tokens[:len(neg.Choices[0].TokenIDs)]) {
		t.Fatalf("seed -59 gave %v, seed 2^64-59 %v", neg.Choices[0].TokenIDs, want[0].Completions[0].Tokens)
	}
	for _, bad := range []string{`1.5`, `"7"`, `18446744073709551616`} {
		if st, _ := f.post(t, "/v1/completions", `{"prompt":[1,2],"seed":`+bad+`}`); st != 400 {
			t.Fatalf("seed %s: status %d", bad, st)
		}
	}
}

// TestServer_PauseResume: a paused server holds new requests until
// /resume; keep and wait answer, abort stops a running request with 503.
func TestServer_PauseResume(t *testing.T) {
	f := newFixture(t, Options{})
	// Runs before the fixture's cleanup: a test that fails while the
	// server is paused must not leave a held request that the server's
	// Close would wait for forever.
	t.Cleanup(f.s.gate.resume)
	paused := func() bool {
		resp := f.do(t, http.MethodGet, "/is_paused", nil)
		defer resp.Body.Close()
		var out struct {
			IsPaused *bool `json:"is_paused"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.IsPaused == nil {
			t.Fatalf("/is_paused: %v %+v", err, out)
		}
		return *out.IsPaused
	}
	if paused() {
		t.Fatal("a new server is paused")
	}
	if st, _ := f.post(t, "/pause?mode=freeze", nil); st != 400 {
		t.Fatalf("mode=freeze: %d", st)
	}
	if st, out := f.post(t, "/pause?mode=keep", nil); st != 200 || !paused() {
		t.Fatalf("pause: %d %v", st, out)
	}
	done := make(chan int, 1)
	go func() {
		st, _ := f.post(t, "/v1/completions", map[string]any{"prompt": []int{1, 5}, "max_tokens": 4})
		done <- st
	}()
	select {
	case st := <-done:
		t.Fatalf("a request answered %d while paused", st)
	case <-time.After(300 * time.Millisecond):
	}
	if st, _ := f.post(t, "/resume", nil); st != 200 || paused() {
		t.Fatal("resume failed")
	}
	select {
	case st := <-done:
		if st != 200 {
			t.Fatalf("held request answered %d", st)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("held request never answered after /resume")
	}

	// abort: a long request in flight answers 503 "aborted" (in flight:
	// it has generated tokens beyond those of the requests before it)
	before := f.eng.Stats().GeneratedTokens
	long := make(chan map[string]any, 1)
	go func() {
		_, out := f.post(t, "/v1/completions", map[string]any{"prompt": []int{1}, "n": 48, "max_tokens": 400,
			"ignore_eos": true, "seed": 1})
		long <- out
	}()
	deadline := time.Now().Add(10 * time.Second)
	for f.eng.Stats().GeneratedTokens == before && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st, out := f.post(t, "/pause?mode=abort", nil); st != 200 || out["num_paused_requests"].(float64) != 1 {
		t.Fatalf("pause abort: %d %v", st, out)
	}
	out := <-long
	e, _ := out["error"].(map[string]any)
	if e == nil || e["code"] != "aborted" {
		t.Fatalf("aborted request answered %v", out)
	}
	if st, _ := f.post(t, "/pause?mode=wait", nil); st != 200 { // already paused, nothing in flight
		t.Fatalf("pause wait: %d", st)
	}
	f.post(t, "/resume", nil)
	if st, _ := f.post(t, "/v1/completions", map[string]any{"prompt": []int{1, 5}, "max_tokens": 2}); st != 200 {
		t.Fatalf("after resume: %d", st)
	}
}

// snapshot writes the served model's parameters, each changed by edit,
// to dir/name and returns its path.
func snapshot(t *testing.T, dir, name string, edit func(name string, shape []int, data []float32) ([]int, []float32)) string {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var ts []safetensors.Tensor
	for _, p := range l.Model.Params() {
		shape, data := p.Tensor.Shape, p.Tensor.Data
		if edit != nil {
			shape, data = edit(p.Name, shape, data)
		}
		if data != nil {
			ts = append(ts, safetensors.Tensor{Name: p.Name, Shape: shape, Data: data})
		}
	}
	path := filepath.Join(dir, name)
	if err := safetensors.Write(path, ts, safetensors.F32, nil); err != nil {
		t.Fatal(err)
	}
	return path
}

// greedy returns the served greedy tokens for a fixed prompt.
func (f *fixture) greedy(t *testing.T) ([]int32, int64) {
	a, _ := f.complete(t, map[string]any{"prompt": []int{1, 403, 407}, "max_tokens": 12, "temperature": 0, "return_token_ids": true})
	return a.Choices[0].TokenIDs, a.WeightVersion
}

// TestServer_UpdateWeightsFromDisk: SGLang's route loads a snapshot as a
// new version; a mismatched one is refused naming the tensor and both
// shapes, and the old weights stay served.
func TestServer_UpdateWeightsFromDisk(t *testing.T) {
	f := newFixture(t, Options{})
	dir := t.TempDir()
	orig := snapshot(t, dir, "orig.safetensors", nil)
	scaled := snapshot(t, dir, "scaled.safetensors", func(name string, shape []int, d []float32) ([]int, []float32) {
		out := slices.Clone(d)
		if strings.Contains(name, "mlp") {
			for i := range out {
				out[i] *= 3
			}
		}
		return shape, out
	})
	before, _ := f.greedy(t)

	st, out := f.post(t, "/update_weights_from_disk", map[string]any{"model_path": scaled, "weight_version": "7"})
	if st != 200 || out["success"] != true || out["weight_version"].(float64) != 7 {
		t.Fatalf("update: %d %v", st, out)
	}
	changed, v := f.greedy(t)
	if v != 7 || slices.Equal(changed, before) {
		t.Fatalf("after the update: version %d, tokens %v (before %v)", v, changed, before)
	}
	// a wrong shape names the tensor and both shapes; nothing changes
	bad := snapshot(t, dir, "bad.safetensors", func(name string, shape []int, d []float32) ([]int, []float32) {
		if name == "model.norm.weight" {
			return []int{len(d) / 2, 2}, d
		}
		return shape, d
	})
	st, out = f.post(t, "/update_weights_from_disk", map[string]any{"model_path": bad})
	msg, _ := out["message"].(string)
	if st != 400 || out["success"] != false || !strings.Contains(msg, "model.norm.weight") || !strings.Contains(msg, "[32 2]") || !strings.Contains(msg, "[64]") {
		t.Fatalf("mismatched shape: %d %v", st, out)
	}
	missing := snapshot(t, dir, "missing.safetensors", func(name string, shape []int, d []float32) ([]int, []float32) {
		if name == "model.norm.weight" {
			return nil, nil
		}
		return shape, d
	})
	st, out = f.post(t, "/update_weights_from_disk", map[string]any{"model_path": missing})
	if msg, _ := out["message"].(string); st != 400 || !strings.Contains(msg, "model.norm.weight is missing") {
		t.Fatalf("missing tensor: %d %v", st, out)
	}
	for _, body := range []any{map[string]any{"model_path": filepath.Join(dir, "nope")}, map[string]any{},
		map[string]any{"model_path": orig, "weight_version": "v2"}, map[string]any{"model_path": orig, "load_format": "gguf"}} {
		if st, out := f.post(t, "/update_weights_from_disk", body); st != 400 || out["success"] != false {
			t.Fatalf("%v: %d %v", body, st, out)
		}
	}
	if still, v := f.greedy(t); v != 7 || !slices.Equal(still, changed) {
		t.Fatalf("a refused update changed the model: version %d", v)
	}
	// back to the original weights (version + 1 when none is given), from
	// a model folder this time
	folder := filepath.Join(dir, "folder")
	if err := os.Mkdir(folder, 0o755); err != nil {
		t.Fatal(err)
	}
	snapshot(t, folder, safetensors.SingleName, nil)
	if st, out := f.post(t, "/update_weights_from_disk", map[string]any{"model_path": folder}); st != 200 || out["weight_version"].(float64) != 8 {
		t.Fatalf("restore: %d %v", st, out)
	}
	if again, v := f.greedy(t); v != 8 || !slices.Equal(again, before) {
		t.Fatalf("restored weights: version %d tokens %v, want %v", v, again, before)
	}
}

// TestServer_WeightTransfer drives vLLM's routes with the disk backend:
// a snapshot in two chunks, loaded at finish.
func TestServer_WeightTransfer(t *testing.T) {
	f := newFixture(t, Options{})
	dir := t.TempDir()
	before, _ := f.greedy(t)
	path := snapshot(t, dir, "s.safetensors", func(name string, shape []int, d []float32) ([]int, []float32) {
		out := slices.Clone(d)
		for i := range out {
			out[i] *= 1.5
		}
		return shape, out
	})
	sf, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	names := sf.Names()
	var shapes [][]int
	for _, n := range names {
		info, _ := sf.Info(n)
		shapes = append(shapes, info.Shape)
	}
	sf.Close()

	if st, _ := f.post(t, "/start_weight_update", nil); st != 409 {
		t.Fatalf("start before init: %d", st)
	}
	if st, _ := f.post(t, "/init_weight_transfer_engine", map[string]any{"init_info": map[string]any{"master_address": "10.0.0.1", "master_port": 29500, "rank_offset": 1, "world_size": 2}}); st != 501 {
		t.Fatalf("NCCL init: %d", st)
	}
	if st, _ := f.post(t, "/init_weight_transfer_engine", map[string]any{"init_info": map[string]any{"backend": "disk"}}); st != 200 {
		t.Fatalf("init: %d", st)
	}
	if st, _ := f.post(t, "/update_weights", map[string]any{"update_info": map[string]any{"model_path": path}}); st != 409 {
		t.Fatalf("update before start: %d", st)
	}
	if st, _ := f.post(t, "/start_weight_update", map[string]any{"is_checkpoint_format": true}); st != 200 {
		t.Fatalf("start: %d", st)
	}
	half := len(names) / 2
	for _, part := range [][2]int{{0, half}, {half, len(names)}} {
		info := map[string]any{"model_path": path, "names": names[part[0]:part[1]], "shapes": shapes[part[0]:part[1]]}
		if st, out := f.post(t, "/update_weights", map[string]any{"update_info": info}); st != 200 {
			t.Fatalf("update %v: %d %v", part, st, out)
		}
	}
	// a declared shape that is not the file's is refused
	bad := map[string]any{"model_path": path, "names": names[:1], "shapes": [][]int{{1, 2, 3}}}
	if st, _ := f.post(t, "/update_weights", map[string]any{"update_info": bad}); st != 400 {
		t.Fatalf("wrong declared shape: %d", st)
	}
	if st, out := f.post(t, "/finish_weight_update", nil); st != 200 || out["weight_version"].(float64) != 1 {
		t.Fatalf("finish: %d %v", st, out)
	}
	if after, v := f.greedy(t); v != 1 || slices.Equal(after, before) {
		t.Fatalf("after finish: version %d", v)
	}
	// a start/finish with only part of the model is refused
	f.post(t, "/start_weight_update", nil)
	f.post(t, "/update_weights", map[string]any{"update_info": map[string]any{"model_path": path, "names": names[:1]}})
	if st, out := f.post(t, "/finish_weight_update", nil); st != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "missing") {
		t.Fatalf("partial finish: %d %v", st, out)
	}
	// garbage and malformed bodies are 400s naming the problem
	for path, body := range map[string]string{
		"/update_weights_from_disk":    `{"model_path": `,
		"/init_weight_transfer_engine": `{"init_info": {"backend": "disk", "nonsense": 1}}`,
		"/update_weights":              `{}`,
		"/finish_weight_update":        `[1, 2]`,
	} {
		if st, out := f.post(t, path, body); st != 400 {
			t.Fatalf("%s %s: %d %v", path, body, st, out)
		}
	}
	resp := f.do(t, http.MethodGet, "/get_world_size", nil)
	var ws map[string]int
	json.NewDecoder(resp.Body).Decode(&ws)
	resp.Body.Close()
	if ws["world_size"] != 1 {
		t.Fatalf("world size %v", ws)
	}
}
