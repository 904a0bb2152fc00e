//go:build unix

package openai

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/role/inproc"
	"github.com/gorlhf/gorlhf/internal/serve"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// The measurements of docs/BENCHMARKS.md ("Rollout through HTTP"):
//
//	go test -run '^$' -bench 'Rollout|WeightSync' -benchtime 5x ./internal/role/openai/

// rolloutWorkload is 16 prompts × 4 samples × 64 tokens (EOS ignored) on
// stories260K at temperature 1.
func rolloutWorkload() role.GenerateRequest {
	var req role.GenerateRequest
	for i := range 16 {
		req.Prompts = append(req.Prompts, role.Prompt{ID: "p", Tokens: []int32{1, int32(300 + i), int32(400 + i), 290, 310},
			Params: role.SamplingParams{N: 4, MaxNewTokens: 64, Temperature: 1, IgnoreEOS: true, Seed: uint64(i)}})
	}
	return req
}

// cpuTime is this process's user + system CPU time so far: on a shared
// machine it moves far less with the other processes' load than the wall
// time does.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ms/op since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime()-start).Microseconds())/1e3/float64(b.N), "cpu-ms/op")
}

func benchRollout(b *testing.B, r role.Rollout) {
	req := rolloutWorkload()
	tokens := 0
	b.ResetTimer()
	cpu := cpuTime()
	defer func() { reportCPU(b, cpu) }()
	for b.Loop() {
		res, err := r.Generate(context.Background(), req)
		if err != nil {
			b.Fatal(err)
		}
		for _, g := range res.Results {
			for _, c := range g.Completions {
				tokens += len(c.Tokens)
			}
		}
	}
	b.ReportMetric(float64(tokens)/b.Elapsed().Seconds(), "tok/s")
}

// BenchmarkRollout_InProcess is the reference: the engine in this process.
func BenchmarkRollout_InProcess(b *testing.B) {
	eng, _ := newEngine(b)
	benchRollout(b, inproc.NewRollout(eng))
}

// BenchmarkRollout_HTTP is the same workload through gorlhf serve (in
// this process, on loopback) and this client: the protocol's cost alone.
func BenchmarkRollout_HTTP(b *testing.B) {
	eng, tok := newEngine(b)
	defer eng.Close()
	srv := httptest.NewServer(serve.New(eng, tok, serve.Options{BOS: 1, Logger: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	cfg := DefaultConfig()
	cfg.URLs, cfg.SyncDir = []string{srv.URL}, b.TempDir()
	r, err := New(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	benchRollout(b, r)
}

// syncModel is a random Llama of about 26 M parameters (105 MB in F32):
// 8 layers, width 512, MLP 1408, vocabulary 512 (tok512's).
func syncModel(b *testing.B) (*llama.Model, role.Weights) {
	m, err := llama.New(llama.Config{VocabSize: 512, Hidden: 512, Intermediate: 1408, Layers: 8, Heads: 8, RMSNormEps: 1e-5, MaxPositions: 512})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var w role.Weights
	for _, p := range m.Params() {
		for i := range p.Tensor.Data {
			p.Tensor.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
		w.Params = append(w.Params, role.Param{Name: p.Name, Shape: slices.Clone(p.Tensor.Shape), Data: slices.Clone(p.Tensor.Data)})
	}
	return m, w
}

// BenchmarkWeightSync_Disk times one push of the 26 M-parameter model to
// one gorlhf serve engine: the snapshot written (and fsynced) to the sync
// folder, then the engine's pause, load and resume; the folder on the
// temporary-file disk and on /dev/shm (tmpfs, the same-host choice).
func BenchmarkWeightSync_Disk(b *testing.B) {
	m, w := syncModel(b)
	tok, err := tokenizer.ParseLlama2C(assets.Tok512())
	if err != nil {
		b.Fatal(err)
	}
	eng, err := generate.New(m, tok, generate.Config{EOS: []int32{2}})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	srv := httptest.NewServer(serve.New(eng, tok, serve.Options{BOS: 1, Logger: slog.New(slog.DiscardHandler)}).Handler())
	defer srv.Close()
	dirs := map[string]string{"tmp": b.TempDir()}
	if shm, err := os.MkdirTemp("/dev/shm", "gorlhf-bench-"); err == nil {
		defer os.RemoveAll(shm)
		dirs["shm"] = shm
	}
	for _, name := range []string{"tmp", "shm"} {
		dir, ok := dirs[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.URLs, cfg.SyncDir = []string{srv.URL}, dir
			r, err := New(cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			r.version = w.Version // the engine's
			var write, load time.Duration
			var bytes int64
			cpu := cpuTime()
			for b.Loop() {
				w.Version++
				if err := r.LoadWeights(context.Background(), w); err != nil {
					b.Fatal(err)
				}
				st := r.LastSync()
				write, load, bytes = write+st.Write, load+st.Load, st.Bytes
			}
			reportCPU(b, cpu)
			b.SetBytes(bytes)
			b.ReportMetric(float64(write.Milliseconds())/float64(b.N), "write-ms/op")
			b.ReportMetric(float64(load.Milliseconds())/float64(b.N), "load-ms/op")
		})
	}
}

// BenchmarkWeightSync_InProcess is the in-process engine's copy of the
// same weights (inproc.Rollout.LoadWeights), for comparison.
func BenchmarkWeightSync_InProcess(b *testing.B) {
	m, w := syncModel(b)
	eng, err := generate.New(m, nil, generate.Config{EOS: []int32{2}})
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	r := inproc.NewRollout(eng)
	b.ResetTimer()
	cpu := cpuTime()
	defer func() { reportCPU(b, cpu) }()
	for b.Loop() {
		w.Version++
		if err := r.LoadWeights(context.Background(), w); err != nil {
			b.Fatal(err)
		}
	}
}
