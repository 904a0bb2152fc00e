package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// benchDecodeResult is one dtype's line of `gorlhf bench decode --json`.
type benchDecodeResult struct {
	Engine       string    `json:"engine"`
	Threads      int       `json:"threads"`
	Model        string    `json:"model"`
	Params       int       `json:"params"`
	DType        string    `json:"dtype"`
	Streams      int       `json:"streams"`
	GenLen       int       `json:"gen_len"`
	TokensPerSec []float64 `json:"tokens_per_sec"` // one per round
	Median       float64   `json:"tokens_per_sec_median"`
	// TokensPerCPUSec is tokens per second of process CPU time (user +
	// system, all threads): on a shared machine, where the wall-clock
	// rate mostly measures the share of the CPU a process got, it is the
	// steadier figure.
	TokensPerCPUSec []float64 `json:"tokens_per_cpu_sec"`
	MedianCPU       float64   `json:"tokens_per_cpu_sec_median"`
}

// runBenchDecode times greedy decoding from BOS on a loaded model: streams
// sequences of gen-len tokens at once, each dtype in turn, alternating
// rounds (A B A B …) so machine noise hits each alike; prints medians.
func runBenchDecode(ctx context.Context, args []string) error {
	fs := newFlagSet("bench decode", "bench decode [--model M] [--streams 1] [--gen-len 128] [--dtypes f32,bf16] [--rounds 5] [--json]")
	var ef engineFlags
	ef.register(fs)
	ref := fs.String("model", load.DefaultModel, "model: HF folder, llama2.c file, or "+load.DefaultModel)
	streams := fs.Int("streams", 1, "sequences decoded at once (greedy from BOS)")
	genLen := fs.Int("gen-len", 128, "tokens generated per stream (EOS ignored)")
	dtypes := fs.String("dtypes", "f32,bf16", "weight formats to time, comma-separated (f32, bf16, f16)")
	rounds := fs.Int("rounds", 5, "timed rounds per dtype, alternating")
	asJSON := fs.Bool("json", false, "print one JSON object per dtype instead of text")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the timed rounds to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var dts []half.DType
	for _, s := range strings.Split(*dtypes, ",") {
		d, err := half.ParseDType(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("bench decode: --dtypes: %w", err)
		}
		dts = append(dts, d)
	}
	if *streams < 1 || *genLen < 1 || *rounds < 1 {
		return fmt.Errorf("bench decode: --streams, --gen-len and --rounds must be ≥ 1")
	}
	ef.quiet = *asJSON
	if err := ef.apply(); err != nil {
		return err
	}
	req := generate.Request{Prompt: []int32{1}, Params: generate.SamplingParams{N: *streams, MaxNewTokens: *genLen, IgnoreEOS: true}}
	cfg := generate.Config{KVCacheMB: 256, MaxSeqs: *streams, NoPrefixSharing: true}
	res := make([]*benchDecodeResult, len(dts))
	engines := make([]*generate.Engine, len(dts))
	for i, d := range dts { // a model and an engine per dtype, warmed up, kept across rounds
		l, err := load.Load(*ref, loadOptions())
		if err != nil {
			return fmt.Errorf("bench decode: %w", err)
		}
		dec, ok := l.Model.(model.Decoder)
		if !ok {
			return fmt.Errorf("bench decode: %s: %T cannot decode incrementally", *ref, l.Model)
		}
		c := cfg
		c.DType = d
		if engines[i], err = generate.New(dec, nil, c); err != nil {
			return fmt.Errorf("bench decode: %w", err)
		}
		defer engines[i].Close()
		res[i] = &benchDecodeResult{Engine: tensor.Active().Name(), Threads: par.Threads(), Model: *ref, Params: l.Model.Params().Count(),
			DType: d.String(), Streams: *streams, GenLen: *genLen}
		if _, _, err := decodeRound(ctx, engines[i], req); err != nil {
			return err
		}
	}
	if err := warmUpHeap(ctx, engines, req); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench decode: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench decode: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for r := 0; r < *rounds; r++ {
		for i := range dts {
			tps, tpc, err := decodeRound(ctx, engines[i], req)
			if err != nil {
				return err
			}
			res[i].TokensPerSec = append(res[i].TokensPerSec, tps)
			res[i].TokensPerCPUSec = append(res[i].TokensPerCPUSec, tpc)
		}
	}
	for _, r := range res {
		r.Median, r.MedianCPU = median(r.TokensPerSec), median(r.TokensPerCPUSec)
		if *asJSON {
			if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
				return err
			}
			continue
		}
		fmt.Printf("%s (%.1f M params), %s weights, %d stream(s) × %d greedy tokens, %d threads: median %.1f tok/s (%.1f per CPU-second) over %d rounds %v\n",
			r.Model, float64(r.Params)/1e6, r.DType, r.Streams, r.GenLen, r.Threads, r.Median, r.MedianCPU, len(r.TokensPerSec), roundAll(r.TokensPerSec))
	}
	return nil
}

// decodeRound runs req on eng and returns generated tokens per second of
// wall time and of process CPU time (the prefill of the one-token prompt
// included).
func decodeRound(ctx context.Context, eng *generate.Engine, req generate.Request) (float64, float64, error) {
	cpu0 := cpuSeconds()
	start := time.Now()
	out, err := eng.Generate(ctx, []generate.Request{req})
	wall, cpu := time.Since(start), cpuSeconds()-cpu0
	if err != nil {
		return 0, 0, fmt.Errorf("bench decode: %w", err)
	}
	n := 0
	for _, c := range out[0].Completions {
		n += len(c.Tokens)
	}
	return float64(n) / wall.Seconds(), float64(n) / cpu, nil
}

// warmUpHeap decodes until the garbage collector has run twice (at most
// 60 s): a short run would otherwise fault in fresh heap pages for every
// step's tensors until the first collection, which a long-running engine
// does once. The timed rounds then see the steady state: the heap reuses
// pages it has touched.
func warmUpHeap(ctx context.Context, engines []*generate.Engine, req generate.Request) error {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	start, deadline := ms.NumGC, time.Now().Add(60*time.Second)
	for ms.NumGC < start+2 && time.Now().Before(deadline) {
		for _, e := range engines {
			if _, _, err := decodeRound(ctx, e, req); err != nil {
				return err
			}
		}
		runtime.ReadMemStats(&ms)
	}
	return nil
}

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = float64(int(x*10+0.5)) / 10
	}
	return out
}
