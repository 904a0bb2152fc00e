package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"syscall"
	"time"

	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// benchTrainResult is what `gorlhf bench train --json` prints.
type benchTrainResult struct {
	Engine       string    `json:"engine"`
	Threads      int       `json:"threads"`
	Params       int       `json:"params"`
	Layers       int       `json:"layers"`
	Dim          int       `json:"dim"`
	Heads        int       `json:"heads"`
	Vocab        int       `json:"vocab"`
	Seq          int       `json:"seq"`
	Batch        int       `json:"batch"`
	Steps        int       `json:"steps"`
	StepMsMedian float64   `json:"step_ms_median"`
	StepMs       []float64 `json:"step_ms"`
	FwdMsMedian  float64   `json:"fwd_ms_median"`
	TokensPerSec float64   `json:"tokens_per_sec"`
	FwdTokPerSec float64   `json:"fwd_tokens_per_sec"`
	PeakRSSMB    float64   `json:"peak_rss_mb"`
	FinalLoss    float32   `json:"final_loss"`
}

func runBenchTrain(ctx context.Context, args []string) error {
	fs := newFlagSet("bench train", "bench train [--layers 4 --dim 256 --heads 4 --vocab 512 --seq 128 --batch 8 --steps 10] [--json]")
	var ef engineFlags
	ef.register(fs)
	cfg := gpt2.Config{Layers: 4, Hidden: 256, Heads: 4, VocabSize: 512, LayerNormEps: 1e-5}
	seq, batch, steps, warmup := 128, 8, 10, 2
	asJSON, cpuProfile := false, ""
	fs.IntVar(&cfg.Layers, "layers", cfg.Layers, "transformer layers")
	fs.IntVar(&cfg.Hidden, "dim", cfg.Hidden, "model width (d_model)")
	fs.IntVar(&cfg.Heads, "heads", cfg.Heads, "attention heads")
	fs.IntVar(&cfg.VocabSize, "vocab", cfg.VocabSize, "vocabulary size")
	fs.IntVar(&seq, "seq", seq, "sequence length")
	fs.IntVar(&batch, "batch", batch, "batch size")
	fs.IntVar(&steps, "steps", steps, "timed steps (the median is reported)")
	fs.IntVar(&warmup, "warmup", warmup, "untimed warm-up steps")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the timed steps to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return fmt.Errorf("bench train: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench train: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	ef.quiet = asJSON
	if err := ef.apply(); err != nil {
		return err
	}
	if steps < 1 || seq < 1 || batch < 1 {
		return fmt.Errorf("bench train: --steps, --seq and --batch must be ≥ 1")
	}
	cfg.MaxPositions = seq
	res, err := benchTrain(ctx, cfg, seq, batch, steps, warmup)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	fmt.Printf("bench GPT (GPT-2 arch): %d layers, d=%d, %d heads, vocab %d, seq %d, batch %d: %.2f M params\n",
		res.Layers, res.Dim, res.Heads, res.Vocab, res.Seq, res.Batch, float64(res.Params)/1e6)
	fmt.Printf("engine %s, %d threads\n", res.Engine, res.Threads)
	fmt.Printf("train step (fwd+bwd+AdamW): median %.1f ms over %d steps  → %.0f tokens/s\n", res.StepMsMedian, res.Steps, res.TokensPerSec)
	fmt.Printf("forward only:               median %.1f ms             → %.0f tokens/s\n", res.FwdMsMedian, res.FwdTokPerSec)
	fmt.Printf("peak RSS %.0f MB, final loss %.4f\n", res.PeakRSSMB, res.FinalLoss)
	return nil
}

func benchTrain(ctx context.Context, cfg gpt2.Config, seq, batch, steps, warmup int) (*benchTrainResult, error) {
	m, err := gpt2.New(cfg)
	if err != nil {
		return nil, err
	}
	r := tensor.NewRand(1)
	m.Init(r)
	ps := m.Params()
	opt, err := optim.New(ps, optim.DefaultConfig())
	if err != nil {
		return nil, err
	}
	n := seq * batch
	ids, targets, pos := make([]int32, n), make([]int32, n), make([]int32, n)
	for i := range ids {
		ids[i], targets[i], pos[i] = int32(r.IntN(cfg.VocabSize)), int32(r.IntN(cfg.VocabSize)), int32(i%seq)
	}
	tp := tensor.NewTape()
	var times, fwd []float64
	var loss float32
	for s := 0; s < warmup+steps; s++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		logits := m.Forward(nil, ids, pos, nil, batch, seq)
		_ = logits
		t1 := time.Now()
		ps.ZeroGrad()
		l := tensor.CrossEntropy(tp, m.Forward(tp, ids, pos, nil, batch, seq), targets)
		tp.Backward(l)
		opt.Step(3e-4)
		t2 := time.Now()
		loss = l.Item()
		if s >= warmup {
			fwd = append(fwd, ms(t1.Sub(t0)))
			times = append(times, ms(t2.Sub(t1)))
		}
	}
	res := &benchTrainResult{Engine: tensor.Active().Name(), Threads: par.Threads(), Params: ps.Count(),
		Layers: cfg.Layers, Dim: cfg.Hidden, Heads: cfg.Heads, Vocab: cfg.VocabSize, Seq: seq, Batch: batch,
		Steps: steps, StepMs: times, StepMsMedian: median(times), FwdMsMedian: median(fwd), PeakRSSMB: peakRSSMB(), FinalLoss: loss}
	res.TokensPerSec = float64(n) / (res.StepMsMedian / 1000)
	res.FwdTokPerSec = float64(n) / (res.FwdMsMedian / 1000)
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(x []float64) float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// peakRSSMB returns the process's peak resident set size in MB (Linux:
// ru_maxrss is in KiB; macOS: bytes).
func peakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" {
		return float64(ru.Maxrss) / (1 << 20)
	}
	return float64(ru.Maxrss) / 1024
}
