package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"time"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// benchTrainResult is what `gorlhf bench train --json` prints.
type benchTrainResult struct {
	Engine       string    `json:"engine"`
	Threads      int       `json:"threads"`
	Arch         string    `json:"arch"`
	Params       int       `json:"params"`
	Layers       int       `json:"layers"`
	Dim          int       `json:"dim"`
	Heads        int       `json:"heads"`
	KVHeads      int       `json:"kv_heads,omitempty"`
	Intermediate int       `json:"intermediate,omitempty"`
	Vocab        int       `json:"vocab"`
	Seq          int       `json:"seq"`
	Batch        int       `json:"batch"`
	Steps        int       `json:"steps"`
	Checkpointed bool      `json:"gradient_checkpointing"`
	StepMsMedian float64   `json:"step_ms_median"`
	StepMs       []float64 `json:"step_ms"`
	FwdMsMedian  float64   `json:"fwd_ms_median,omitempty"`
	TokensPerSec float64   `json:"tokens_per_sec"`
	FwdTokPerSec float64   `json:"fwd_tokens_per_sec,omitempty"`
	PeakRSSMB    float64   `json:"peak_rss_mb"`
	// BaseRSSMB is the resident memory after the warm-up steps, a GC and
	// a return of free memory to the OS: weights, gradients, AdamW
	// moments and the batch (0 where /proc/self/status is missing).
	BaseRSSMB float64 `json:"base_rss_mb"`
	// ActivationMB is PeakRSSMB − BaseRSSMB: what a step holds beyond the
	// training state (activations, and garbage the GC has not yet
	// collected).
	ActivationMB float64 `json:"activation_mb"`
	FinalLoss    float32 `json:"final_loss"`
	// UserCPUSec and SysCPUSec are the whole process's CPU time in user
	// and kernel mode (page faults land in the latter); --rounds fills
	// them in from each child process.
	UserCPUSec float64 `json:"user_cpu_s,omitempty"`
	SysCPUSec  float64 `json:"sys_cpu_s,omitempty"`
	benchPeak
}

// benchShape is the model bench train builds: GPT-2 (the default) or a
// Llama (RMSNorm, RoPE, SwiGLU, optional GQA), with random weights.
type benchShape struct {
	arch                                             string
	layers, dim, heads, kvHeads, intermediate, vocab int
}

// benchModel is what bench train needs of a model.
type benchModel interface {
	model.CausalLM
	model.Blocked
	Init(r *rand.Rand)
}

// build returns the model for sequences of seq tokens.
func (s benchShape) build(seq int) (benchModel, error) {
	switch s.arch {
	case "gpt2":
		if s.kvHeads != 0 || s.intermediate != 0 {
			return nil, fmt.Errorf("bench train: --kv_heads and --intermediate are llama's (--arch llama)")
		}
		return gpt2.New(gpt2.Config{Layers: s.layers, Hidden: s.dim, Heads: s.heads, VocabSize: s.vocab, LayerNormEps: 1e-5, MaxPositions: seq})
	case "llama":
		return llama.New(llama.Config{Layers: s.layers, Hidden: s.dim, Heads: s.heads, KVHeads: s.kvHeads,
			Intermediate: s.llamaIntermediate(), VocabSize: s.vocab, RMSNormEps: 1e-5, MaxPositions: seq})
	}
	return nil, fmt.Errorf("bench train: --arch %q: want gpt2 or llama", s.arch)
}

// llamaIntermediate is --intermediate, or Llama's rule: 8/3 of the width
// rounded up to a multiple of 256.
func (s benchShape) llamaIntermediate() int {
	if s.intermediate > 0 {
		return s.intermediate
	}
	return (8*s.dim/3 + 255) / 256 * 256
}

// benchTrainOptions are the run's settings besides the model's shape.
type benchTrainOptions struct {
	seq, batch, steps, warmup int
	checkpoint                bool          // gradient checkpointing (model.Recompute)
	timeForward               bool          // also time an inference forward pass each step
	peakFor                   time.Duration // measure the FMA peak this long after the steps (0: not)
}

func runBenchTrain(ctx context.Context, args []string) error {
	fs := newFlagSet("bench train", "bench train [--arch gpt2|llama --layers 4 --dim 256 --heads 4 --vocab 512 --seq 128 --batch 8 --steps 10] [--gradient_checkpointing] [--rounds N] [--json]")
	var ef engineFlags
	ef.register(fs)
	shape := benchShape{arch: "gpt2", layers: 4, dim: 256, heads: 4, vocab: 512}
	o := benchTrainOptions{seq: 128, batch: 8, steps: 10, warmup: 2, timeForward: true, peakFor: time.Second / 2}
	asJSON, cpuProfile, rounds := false, "", 0
	fs.StringVar(&shape.arch, "arch", shape.arch, "model: gpt2 or llama (RMSNorm, RoPE, SwiGLU)")
	fs.IntVar(&shape.layers, "layers", shape.layers, "transformer layers")
	fs.IntVar(&shape.dim, "dim", shape.dim, "model width (d_model)")
	fs.IntVar(&shape.heads, "heads", shape.heads, "attention heads")
	fs.IntVar(&shape.kvHeads, "kv_heads", 0, "llama: key/value heads (0 = --heads, no GQA)")
	fs.IntVar(&shape.intermediate, "intermediate", 0, "llama: MLP width (0 = 8/3 of --dim rounded up to a multiple of 256)")
	fs.IntVar(&shape.vocab, "vocab", shape.vocab, "vocabulary size")
	fs.IntVar(&o.seq, "seq", o.seq, "sequence length")
	fs.IntVar(&o.batch, "batch", o.batch, "batch size")
	fs.IntVar(&o.steps, "steps", o.steps, "timed steps (the median is reported)")
	fs.IntVar(&o.warmup, "warmup", o.warmup, "untimed warm-up steps (the training-state RSS is read after them)")
	fs.BoolVar(&o.checkpoint, "gradient_checkpointing", false, "recompute each block's activations in the backward pass (model.Recompute)")
	fs.BoolVar(&o.timeForward, "time_forward", true, "also time an inference forward pass before each step")
	fs.IntVar(&rounds, "rounds", 0, "compare: run 2×N fresh processes of this command, alternately without and with gradient checkpointing, and report both")
	fs.DurationVar(&o.peakFor, "peak", o.peakFor, "after the steps, measure the fp32 peak (an FMA loop on every thread) this long and report the step's fraction of it (0: skip)")
	fs.BoolVar(&asJSON, "json", false, "print one JSON object instead of text")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.steps < 1 || o.seq < 1 || o.batch < 1 || o.warmup < 0 || rounds < 0 {
		return fmt.Errorf("bench train: --steps, --seq and --batch must be ≥ 1, --warmup and --rounds ≥ 0")
	}
	if rounds > 0 {
		return benchTrainCompare(ctx, fs, rounds, asJSON)
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
	res, err := benchTrain(ctx, shape, o)
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printBenchTrain(res)
	return nil
}

func printBenchTrain(res *benchTrainResult) {
	fmt.Printf("bench %s: %d layers, d=%d, %d heads, vocab %d, seq %d, batch %d: %.2f M params\n",
		res.Arch, res.Layers, res.Dim, res.Heads, res.Vocab, res.Seq, res.Batch, float64(res.Params)/1e6)
	fmt.Printf("engine %s, %d threads, gradient checkpointing %v\n", res.Engine, res.Threads, res.Checkpointed)
	fmt.Printf("train step (fwd+bwd+AdamW): median %.1f ms over %d steps  → %.0f tokens/s\n", res.StepMsMedian, res.Steps, res.TokensPerSec)
	if res.FwdMsMedian > 0 {
		fmt.Printf("forward only:               median %.1f ms             → %.0f tokens/s\n", res.FwdMsMedian, res.FwdTokPerSec)
	}
	if res.PeakGFLOPS > 0 {
		fmt.Printf("%.1f GFLOP per step → %.0f GFLOP/s = %.1f%% of the measured %s fp32 peak (%.0f GFLOP/s on %d threads)\n",
			res.ModelGFLOP, res.GFLOPS, 100*res.PeakFraction, res.PeakISA, res.PeakGFLOPS, res.Threads)
	}
	fmt.Printf("peak RSS %.0f MB, training state %.0f MB, activations %.0f MB; final loss %.4f\n",
		res.PeakRSSMB, res.BaseRSSMB, res.ActivationMB, res.FinalLoss)
}

func benchTrain(ctx context.Context, shape benchShape, o benchTrainOptions) (*benchTrainResult, error) {
	m, err := shape.build(o.seq)
	if err != nil {
		return nil, err
	}
	r := tensor.NewRand(1)
	m.Init(r)
	if o.checkpoint {
		m.SetBlockRunner(model.Recompute{})
	}
	ps := m.Params()
	opt, err := optim.New(ps, optim.DefaultConfig())
	if err != nil {
		return nil, err
	}
	vocab := m.Dims().Vocab
	n := o.seq * o.batch
	ids, targets, pos := make([]int32, n), make([]int32, n), make([]int32, n)
	for i := range ids {
		ids[i], targets[i], pos[i] = int32(r.IntN(vocab)), int32(r.IntN(vocab)), int32(i%o.seq)
	}
	tp := tensor.NewPooledTape() // each step reuses the last one's activation memory
	var times, fwd []float64
	var loss float32
	var baseMB float64
	for s := 0; s < o.warmup+o.steps; s++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s == o.warmup {
			baseMB = trainingStateRSSMB()
		}
		t0 := time.Now()
		if o.timeForward {
			m.Forward(nil, ids, pos, nil, o.batch, o.seq)
		}
		t1 := time.Now()
		tp.Recycle()
		ps.ZeroGrad()
		l := tensor.CrossEntropy(tp, m.Forward(tp, ids, pos, nil, o.batch, o.seq), targets)
		tp.Backward(l)
		opt.Step(3e-4)
		t2 := time.Now()
		loss = l.Item()
		if s >= o.warmup {
			fwd = append(fwd, ms(t1.Sub(t0)))
			times = append(times, ms(t2.Sub(t1)))
		}
	}
	res := &benchTrainResult{Engine: tensor.Active().Name(), Threads: par.Threads(), Arch: shape.arch, Params: ps.Count(),
		Layers: shape.layers, Dim: shape.dim, Heads: shape.heads, Vocab: vocab, Seq: o.seq, Batch: o.batch,
		Steps: o.steps, Checkpointed: o.checkpoint, StepMs: times, StepMsMedian: median(times),
		PeakRSSMB: peakRSSMB(), BaseRSSMB: baseMB, FinalLoss: loss}
	if shape.arch == "llama" {
		res.KVHeads, res.Intermediate = max(shape.kvHeads, 0), shape.llamaIntermediate()
	}
	if baseMB > 0 {
		res.ActivationMB = res.PeakRSSMB - baseMB
	}
	res.TokensPerSec = float64(n) / (res.StepMsMedian / 1000)
	res.measure(shape, o.seq, o.batch, res.StepMsMedian, par.Threads(), o.peakFor)
	if o.timeForward {
		res.FwdMsMedian = median(fwd)
		res.FwdTokPerSec = float64(n) / (res.FwdMsMedian / 1000)
	}
	return res, nil
}

// trainingStateRSSMB returns the resident memory once the garbage of the
// steps so far is collected and handed back to the OS: after a warm-up
// step, the weights, their gradients, the AdamW moments and the batch.
func trainingStateRSSMB() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	kb, ok := procStatusKB("VmRSS")
	if !ok {
		return 0
	}
	return kb / 1024
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
