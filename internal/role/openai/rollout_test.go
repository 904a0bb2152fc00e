package openai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/serve"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// newEngine starts a generate engine on stories260K.
func newEngine(t testing.TB) (*generate.Engine, tokenizer.Tokenizer) {
	t.Helper()
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := generate.New(l.Model.(model.Decoder), tok, generate.Config{EOS: []int32{2}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	return eng, tok
}

// newServer is gorlhf serve over a fresh engine, on loopback; handler
// wraps its routes when not nil.
func newServer(t *testing.T, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	eng, tok := newEngine(t)
	var h http.Handler = serve.New(eng, tok, serve.Options{BOS: 1, Logger: slog.New(slog.DiscardHandler)}).Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func testConfig(t *testing.T, urls ...string) Config {
	cfg := DefaultConfig()
	cfg.URLs, cfg.SyncDir = urls, t.TempDir()
	cfg.Timeout, cfg.Backoff, cfg.Attempts = 20*time.Second, 5*time.Millisecond, 2
	return cfg
}

// prompts is a batch of prompts, each with its own seed and n samples.
func prompts(n, g int) role.GenerateRequest {
	var req role.GenerateRequest
	for i := range n {
		toks := []int32{1, int32(300 + 7*i), int32(260 + i)}
		req.Prompts = append(req.Prompts, role.Prompt{ID: fmt.Sprint(i), Tokens: toks, Params: role.SamplingParams{
			N: g, MaxNewTokens: 20, Temperature: 1, TopK: 40, Seed: uint64(1<<63) + uint64(i)*977}})
	}
	return req
}

// policy returns stories260K's parameters with the MLP weights scaled
// (a different policy to push) as version v.
func policy(t *testing.T, v int64, scale float32) role.Weights {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := role.Weights{Version: v}
	for _, p := range l.Model.Params() {
		d := slices.Clone(p.Tensor.Data)
		if strings.Contains(p.Name, "mlp") {
			for i := range d {
				d[i] *= scale
			}
		}
		w.Params = append(w.Params, role.Param{Name: p.Name, Shape: slices.Clone(p.Tensor.Shape), Data: d})
	}
	return w
}

func mustGenerate(t *testing.T, r role.Rollout, req role.GenerateRequest) []role.Generation {
	t.Helper()
	res, err := r.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Results
}

// sameGenerations compares everything but the prefix-cache counters.
func sameGenerations(t *testing.T, what string, got, want []role.Generation) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		for i := range want {
			if i < len(got) && !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%s: prompt %d differs:\n got %+v\nwant %+v", what, i, got[i], want[i])
			}
		}
		t.Fatalf("%s: %d generations, want %d", what, len(got), len(want))
	}
}

// TestRollout_MatchesInProcess: two gorlhf serve engines give the
// in-process engine's samples bit for bit, before and after a weight
// push, with either weight-sync protocol.
func TestRollout_MatchesInProcess(t *testing.T) {
	for _, sync := range []string{SyncDisk, SyncVLLM} {
		t.Run(sync, func(t *testing.T) {
			a, b := newServer(t, nil), newServer(t, nil)
			cfg := testConfig(t, a.URL, b.URL)
			cfg.WeightSync = sync
			r, err := New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			eng, _ := newEngine(t)
			ref := inproc.NewRollout(eng)
			req := prompts(7, 3)
			sameGenerations(t, "version 0", mustGenerate(t, r, req), mustGenerate(t, ref, req))

			for v, scale := range map[int64]float32{1: 2.5} {
				w := policy(t, v, scale)
				if err := r.LoadWeights(context.Background(), w); err != nil {
					t.Fatal(err)
				}
				if err := ref.LoadWeights(context.Background(), w); err != nil {
					t.Fatal(err)
				}
				got := mustGenerate(t, r, req)
				sameGenerations(t, fmt.Sprintf("version %d", v), got, mustGenerate(t, ref, req))
				if got[0].Completions[0].WeightVersion != v || r.Version() != v {
					t.Fatalf("version %d reported, %d pushed", got[0].Completions[0].WeightVersion, v)
				}
				if st := r.LastSync(); st.Version != v || st.Bytes < 4*int64(len(w.Params)) {
					t.Fatalf("sync stats %+v", st)
				}
			}
		})
	}
}

// mutating serves the real engine's answers changed by edit.
func mutating(edit func(ans map[string]any)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v1/completions" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var ans map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
				panic(err)
			}
			edit(ans)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(ans)
		})
	}
}

func firstChoice(ans map[string]any) map[string]any {
	return ans["choices"].([]any)[0].(map[string]any)
}

// TestRollout_BadAnswers: every way an engine can answer wrongly is an
// error naming the engine and the fault, not a sample.
func TestRollout_BadAnswers(t *testing.T) {
	cases := []struct {
		name string
		wrap func(http.Handler) http.Handler
		want string
	}{
		{"garbage", func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>oops") })
		}, "answer is not a completion"},
		{"fewer log-probs", mutating(func(a map[string]any) {
			lp := firstChoice(a)["logprobs"].(map[string]any)
			lp["token_logprobs"] = lp["token_logprobs"].([]any)[1:]
		}), "log-probs for"},
		{"extra token", mutating(func(a map[string]any) {
			c := firstChoice(a)
			c["token_ids"] = append(c["token_ids"].([]any), 7.0)
		}), "token_ids"},
		{"stale version", mutating(func(a map[string]any) { a["weight_version"] = 3 }), "stale weights: the engine generated with weight version 3, the version last pushed is 0"},
		{"no version", mutating(func(a map[string]any) { delete(a, "weight_version") }), "no weight_version"},
		{"missing choice", mutating(func(a map[string]any) { a["choices"] = a["choices"].([]any)[1:] }), "choices for n=2"},
		{"aborted", mutating(func(a map[string]any) { firstChoice(a)["finish_reason"] = "abort" }), `finish_reason "abort"`},
		{"usage", mutating(func(a map[string]any) { a["usage"].(map[string]any)["completion_tokens"] = 1.0 }), "usage"},
		{"other prompt", mutating(func(a map[string]any) { firstChoice(a)["prompt_token_ids"] = []int{1, 2} }), "prompt_token_ids"},
		{"positive log-prob", mutating(func(a map[string]any) {
			firstChoice(a)["logprobs"].(map[string]any)["token_logprobs"].([]any)[0] = 0.5
		}), "not a finite number ≤ 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.wrap)
			r, err := New(testConfig(t, srv.URL), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = r.Generate(context.Background(), prompts(2, 2))
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("error %v, want one naming %s and %q", err, srv.URL, tc.want)
			}
		})
	}
	// an engine without versions is accepted when told so (vLLM)
	srv := newServer(t, mutating(func(a map[string]any) { delete(a, "weight_version") }))
	cfg := testConfig(t, srv.URL)
	cfg.Unversioned = true
	r, _ := New(cfg, nil)
	if _, err := r.Generate(context.Background(), prompts(2, 2)); err != nil {
		t.Fatal(err)
	}
}

// TestRollout_EngineDiesMidBatch: one engine disappears while it holds
// prompts; they are re-sent to the other and the batch equals the
// in-process engine's.
func TestRollout_EngineDiesMidBatch(t *testing.T) {
	var hits atomic.Int32
	dying := make(chan struct{})
	var b *httptest.Server
	b = newServer(t, func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/completions" && hits.Add(1) == 2 {
				io.Copy(io.Discard, r.Body) // so that the server notices the connection close
				close(dying)                // the second request: the engine dies holding it
				select {
				case <-r.Context().Done():
				case <-time.After(20 * time.Second):
				}
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	a := newServer(t, nil)
	go func() {
		<-dying
		b.CloseClientConnections()
		b.Listener.Close()
	}()
	r, err := New(testConfig(t, b.URL, a.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	eng, _ := newEngine(t)
	req := prompts(8, 2)
	sameGenerations(t, "after a lost engine", mustGenerate(t, r, req), mustGenerate(t, inproc.NewRollout(eng), req))
	if hits.Load() < 2 {
		t.Fatalf("the dying engine saw %d requests", hits.Load())
	}
	// with every engine gone the call fails naming them
	a.CloseClientConnections()
	a.Listener.Close()
	if _, err := r.Generate(context.Background(), prompts(2, 1)); err == nil || !strings.Contains(err.Error(), "every engine failed") {
		t.Fatalf("no engine left: %v", err)
	}
}

// TestRollout_MismatchedWeights: a push whose tensors do not fit the
// served model fails naming the tensor and both shapes; the engines
// keep serving the old version.
func TestRollout_MismatchedWeights(t *testing.T) {
	a, b := newServer(t, nil), newServer(t, nil)
	r, err := New(testConfig(t, a.URL, b.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w := policy(t, 1, 1)
	for i := range w.Params {
		if w.Params[i].Name == "model.norm.weight" {
			w.Params[i].Shape = []int{32, 2}
		}
	}
	err = r.LoadWeights(context.Background(), w)
	if err == nil || !strings.Contains(err.Error(), "model.norm.weight has shape [32 2], the engine's model [64]") {
		t.Fatalf("mismatched push: %v", err)
	}
	if r.Version() != 0 {
		t.Fatalf("version %d after a failed push", r.Version())
	}
	mustGenerate(t, r, prompts(2, 1)) // still version 0, and not paused
	if err := r.LoadWeights(context.Background(), role.Weights{Version: 0}); err == nil {
		t.Fatal("version 0 pushed")
	}
}

// TestRollout_EngineLostAtSync: an engine unreachable at a weight push is
// retired (it may hold older weights) and the others go on; with none
// left the push fails.
func TestRollout_EngineLostAtSync(t *testing.T) {
	a, b := newServer(t, nil), newServer(t, nil)
	r, err := New(testConfig(t, a.URL, b.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b.CloseClientConnections()
	b.Listener.Close()
	w := policy(t, 1, 2)
	if err := r.LoadWeights(context.Background(), w); err != nil {
		t.Fatalf("push with one engine lost: %v", err)
	}
	eng, _ := newEngine(t)
	ref := inproc.NewRollout(eng)
	if err := ref.LoadWeights(context.Background(), w); err != nil {
		t.Fatal(err)
	}
	req := prompts(4, 2)
	sameGenerations(t, "after retiring an engine", mustGenerate(t, r, req), mustGenerate(t, ref, req))
	a.CloseClientConnections()
	a.Listener.Close()
	if err := r.LoadWeights(context.Background(), policy(t, 2, 1)); err == nil || !strings.Contains(err.Error(), "no engine left") {
		t.Fatalf("push with no engine: %v", err)
	}
}
