package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/generate"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// benchGenerateResult is what `gorlhf bench generate --json` prints.
type benchGenerateResult struct {
	Engine          string  `json:"engine"`
	Threads         int     `json:"threads"`
	Mode            string  `json:"mode"`  // "engine", "engine-no-sharing" or "naive"
	DType           string  `json:"dtype"` // weight format the engine decodes with
	Params          int     `json:"params"`
	Layers          int     `json:"layers"`
	Dim             int     `json:"dim"`
	Heads           int     `json:"heads"`
	Vocab           int     `json:"vocab"`
	Prompts         int     `json:"prompts"`
	N               int     `json:"n"`
	PromptLen       int     `json:"prompt_len"`
	GenLen          int     `json:"gen_len"`
	GeneratedTokens int     `json:"generated_tokens"`
	WallS           float64 `json:"wall_s"`
	TokensPerSec    float64 `json:"tokens_per_sec"` // generated tokens / wall time, prefill included
	TTFTMsMedian    float64 `json:"ttft_ms_median"`
	TTFTMsP90       float64 `json:"ttft_ms_p90"`
	PromptTokens    int     `json:"prompt_tokens_computed"`
	Steps           int     `json:"steps"`
	Preemptions     int     `json:"preemptions"`
	KVBlocksPeak    int     `json:"kv_blocks_peak"`
	KVBlocks        int     `json:"kv_blocks"`
	BlockSize       int     `json:"block_size"`
	KVPeakMB        float64 `json:"kv_peak_mb"`
	PeakRSSMB       float64 `json:"peak_rss_mb"`
}

// benchGenerateConfig holds the flags of bench generate.
type benchGenerateConfig struct {
	model                         gpt2.Config
	prompts, n, promptLen, genLen int
	temperature                   float64
	naive                         bool
	naivePrompts                  int
	engine                        generate.Config
}

// runBenchGenerate measures rollout throughput on the bench GPT: prompts
// × n sampled completions of exactly gen-len tokens from random prompts.
func runBenchGenerate(ctx context.Context, args []string) error {
	fs := newFlagSet("bench generate", "bench generate [--layers 4 --dim 256 --heads 4 --vocab 512] [--prompts 64 --n 8 --prompt-len 64 --gen-len 64] [--no-prefix-sharing | --naive] [--json]")
	var ef engineFlags
	ef.register(fs)
	c := benchGenerateConfig{model: gpt2.Config{Layers: 4, Hidden: 256, Heads: 4, VocabSize: 512, LayerNormEps: 1e-5},
		prompts: 64, n: 8, promptLen: 64, genLen: 64, temperature: 1, naivePrompts: 1, engine: generate.DefaultConfig()}
	c.engine.KVCacheMB, c.engine.MaxSeqs = 0, 0
	fs.IntVar(&c.model.Layers, "layers", c.model.Layers, "transformer layers")
	fs.IntVar(&c.model.Hidden, "dim", c.model.Hidden, "model width (d_model)")
	fs.IntVar(&c.model.Heads, "heads", c.model.Heads, "attention heads")
	fs.IntVar(&c.model.VocabSize, "vocab", c.model.VocabSize, "vocabulary size")
	fs.IntVar(&c.prompts, "prompts", c.prompts, "distinct prompts")
	fs.IntVar(&c.n, "n", c.n, "completions per prompt")
	fs.IntVar(&c.promptLen, "prompt-len", c.promptLen, "prompt tokens")
	fs.IntVar(&c.genLen, "gen-len", c.genLen, "generated tokens per completion (EOS is ignored)")
	fs.Float64Var(&c.temperature, "temperature", c.temperature, "sampling temperature (0: greedy)")
	fs.BoolVar(&c.engine.NoPrefixSharing, "no-prefix-sharing", false, "prefill every sample's prompt separately")
	fs.BoolVar(&c.naive, "naive", false, "time the naive twin (full recompute, one sequence at a time) instead of the engine")
	fs.IntVar(&c.naivePrompts, "naive-prompts", c.naivePrompts, "prompts the naive twin runs (it is slow; tokens/s does not depend on the count)")
	fs.IntVar(&c.engine.KVCacheMB, "kv-cache-mb", 0, "KV-cache budget in MiB (0: enough for every sequence without sharing)")
	fs.IntVar(&c.engine.BlockSize, "block-size", c.engine.BlockSize, "tokens per KV block")
	fs.IntVar(&c.engine.MaxSeqs, "max-seqs", 0, "most sequences per step (0: prompts × n)")
	fs.IntVar(&c.engine.MaxBatchTokens, "max-batch-tokens", c.engine.MaxBatchTokens, "most new tokens per step")
	registerDType(fs, &c.engine.DType)
	asJSON := fs.Bool("json", false, "print one JSON object instead of text")
	cpuProfile := fs.String("cpuprofile", "", "write a Go CPU profile of the timed run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	ef.quiet = *asJSON
	if err := ef.apply(); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("bench generate: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench generate: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := benchGenerate(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printBenchGenerate(res)
	return nil
}

func (c *benchGenerateConfig) validate() error {
	switch {
	case c.prompts < 1 || c.n < 1 || c.promptLen < 1 || c.genLen < 1 || c.naivePrompts < 1:
		return errors.New("bench generate: --prompts, --n, --prompt-len, --gen-len and --naive-prompts must be ≥ 1")
	case c.temperature < 0:
		return errors.New("bench generate: --temperature must be ≥ 0")
	}
	c.model.MaxPositions = c.promptLen + c.genLen
	if c.engine.MaxSeqs == 0 {
		c.engine.MaxSeqs = c.prompts * c.n
	}
	return c.engine.Validate()
}

func printBenchGenerate(r *benchGenerateResult) {
	fmt.Printf("bench GPT (GPT-2 arch): %d layers, d=%d, %d heads, vocab %d: %.2f M params; engine %s, %d threads\n",
		r.Layers, r.Dim, r.Heads, r.Vocab, float64(r.Params)/1e6, r.Engine, r.Threads)
	fmt.Printf("%s (%s weights): %d prompts × n=%d, prompt %d, generate %d: %d tokens in %.2f s → %.0f tokens/s\n",
		r.Mode, r.DType, r.Prompts, r.N, r.PromptLen, r.GenLen, r.GeneratedTokens, r.WallS, r.TokensPerSec)
	fmt.Printf("time to first token: median %.0f ms, p90 %.0f ms; prompt tokens computed %d; %d steps, %d preemptions\n",
		r.TTFTMsMedian, r.TTFTMsP90, r.PromptTokens, r.Steps, r.Preemptions)
	fmt.Printf("KV cache: peak %d of %d blocks of %d tokens (%.0f MB); peak RSS %.0f MB\n",
		r.KVBlocksPeak, r.KVBlocks, r.BlockSize, r.KVPeakMB, r.PeakRSSMB)
}

// benchGenerate builds the random bench GPT and prompts, warms up, and
// times one run.
func benchGenerate(ctx context.Context, c benchGenerateConfig) (*benchGenerateResult, error) {
	m, err := gpt2.New(c.model)
	if err != nil {
		return nil, err
	}
	m.Init(tensor.NewRand(1))
	r := tensor.NewRand(2)
	reqs := make([]generate.Request, c.prompts)
	for i := range reqs {
		prompt := make([]int32, c.promptLen)
		for j := range prompt {
			prompt[j] = int32(r.IntN(c.model.VocabSize))
		}
		reqs[i] = generate.Request{Prompt: prompt, Params: generate.SamplingParams{N: c.n, MaxNewTokens: c.genLen,
			Temperature: float32(c.temperature), Seed: uint64(i), IgnoreEOS: true}}
	}
	res := &benchGenerateResult{Engine: tensor.Active().Name(), Threads: par.Threads(), Mode: "engine", DType: c.engine.DType.String(), Params: m.Params().Count(),
		Layers: c.model.Layers, Dim: c.model.Hidden, Heads: c.model.Heads, Vocab: c.model.VocabSize,
		Prompts: c.prompts, N: c.n, PromptLen: c.promptLen, GenLen: c.genLen}
	var results []generate.Result
	var wall time.Duration
	if c.naive {
		res.Mode, res.Prompts = "naive", min(c.naivePrompts, c.prompts)
		results, wall, err = benchNaive(ctx, m, reqs[:res.Prompts])
	} else {
		if c.engine.NoPrefixSharing {
			res.Mode = "engine-no-sharing"
		}
		results, wall, err = benchEngine(ctx, m, c, reqs, res)
	}
	if err != nil {
		return nil, err
	}
	var ttft []float64
	for _, rs := range results {
		ttft = append(ttft, ms(rs.TimeToFirstToken))
		for _, comp := range rs.Completions {
			res.GeneratedTokens += len(comp.Tokens)
		}
	}
	res.WallS = wall.Seconds()
	res.TokensPerSec = float64(res.GeneratedTokens) / res.WallS
	res.TTFTMsMedian, res.TTFTMsP90 = median(ttft), percentile(ttft, 0.9)
	res.PeakRSSMB = peakRSSMB()
	return res, nil
}

// benchEngine times one engine run over every request at once.
func benchEngine(ctx context.Context, m *gpt2.Model, c benchGenerateConfig, reqs []generate.Request, res *benchGenerateResult) ([]generate.Result, time.Duration, error) {
	cfg := c.engine
	if cfg.KVCacheMB == 0 { // every sequence's full length without sharing, plus slack
		bs := cfg.BlockSize
		blocks := c.prompts*c.n*((c.promptLen+c.genLen+bs-1)/bs) + 64
		cfg.KVCacheMB = (blocks*generate.BlockBytes(m.KVShape(), bs))>>20 + 1
	}
	// Warm up on a throwaway engine: first-touch page faults and goroutine
	// start-up are not what the benchmark measures.
	warm, err := generate.New(m, nil, generate.Config{KVCacheMB: 16})
	if err != nil {
		return nil, 0, err
	}
	wr := reqs[0]
	wr.Params.N, wr.Params.MaxNewTokens = 2, 4
	_, err = warm.Generate(ctx, []generate.Request{wr})
	warm.Close()
	if err != nil {
		return nil, 0, err
	}
	eng, err := generate.New(m, nil, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer eng.Close()
	start := time.Now()
	results, err := eng.Generate(ctx, reqs)
	wall := time.Since(start)
	if err != nil {
		return nil, 0, err
	}
	st := eng.Stats()
	res.PromptTokens, res.Steps, res.Preemptions = st.PromptTokens, st.Steps, st.Preemptions
	res.KVBlocksPeak, res.KVBlocks, res.BlockSize = st.KVBlocksPeak, st.KVBlocks, st.BlockSize
	res.KVPeakMB = float64(st.KVBlocksPeak*generate.BlockBytes(m.KVShape(), st.BlockSize)) / (1 << 20)
	return results, wall, nil
}

// benchNaive times the naive twin, one request after the other.
func benchNaive(ctx context.Context, m *gpt2.Model, reqs []generate.Request) ([]generate.Result, time.Duration, error) {
	start := time.Now()
	var out []generate.Result
	for _, r := range reqs {
		t0 := time.Now()
		res, err := generate.Naive(ctx, m, nil, nil, r)
		if err != nil {
			return nil, 0, err
		}
		res.TimeToFirstToken += t0.Sub(start) // from the start of the run, as the engine counts
		out = append(out, res)
	}
	return out, time.Since(start), nil
}

// percentile returns the q-quantile (nearest rank) of x.
func percentile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Clone(x)
	slices.Sort(s)
	return s[min(len(s)-1, int(q*float64(len(s))))]
}
