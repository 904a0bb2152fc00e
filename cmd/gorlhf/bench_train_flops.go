package main

import (
	"time"

	"github.com/gorlhf/gorlhf/internal/gemm"
)

// benchPeak is bench train's throughput against the machine: the model
// FLOPs of a step, the rate the median step achieved, and the fp32 peak
// measured on the same threads (gemm.MeasurePeak: an FMA loop with no
// loads, at the clock the cores run now).
type benchPeak struct {
	ModelGFLOP   float64 `json:"model_gflop_per_step"`
	GFLOPS       float64 `json:"gflops"`
	PeakGFLOPS   float64 `json:"peak_gflops,omitempty"`
	PeakISA      string  `json:"peak_isa,omitempty"`
	PeakFraction float64 `json:"peak_fraction,omitempty"`
}

// stepGFLOP is the model FLOPs of one training step by the convention
// MFU figures use (PaLM, appendix B): 6 per matmul weight per token
// (2 forward, 4 backward) plus 12·L·d·T per token for attention's two
// products over the full T×T square, times the step's tokens. Embedding
// lookups count nothing; the LM head counts (tied or not).
func (s benchShape) stepGFLOP(seq, batch int) float64 {
	d, l, v := float64(s.dim), float64(s.layers), float64(s.vocab)
	perLayer := 12 * d * d // GPT-2: qkv 3d², proj d², fc 4d², mlp proj 4d²
	if s.arch == "llama" {
		heads := float64(s.heads)
		kv := heads
		if s.kvHeads > 0 {
			kv = float64(s.kvHeads)
		}
		perLayer = 2*d*d + 2*d*d*kv/heads + 3*d*float64(s.llamaIntermediate())
	}
	weights := l*perLayer + v*d
	perToken := 6*weights + 12*l*d*float64(seq)
	return perToken * float64(seq*batch) / 1e9
}

// measure fills in the rate of a step of stepMs and, when peakFor > 0, the
// peak on threads threads and the fraction of it the step reached.
func (p *benchPeak) measure(s benchShape, seq, batch int, stepMs float64, threads int, peakFor time.Duration) {
	p.ModelGFLOP = s.stepGFLOP(seq, batch)
	if stepMs > 0 {
		p.GFLOPS = p.ModelGFLOP / (stepMs / 1e3)
	}
	if peakFor <= 0 {
		return
	}
	if pk, ok := gemm.MeasurePeak(threads, peakFor); ok {
		p.PeakGFLOPS, p.PeakISA, p.PeakFraction = pk.GFLOPS, pk.ISA, p.GFLOPS/pk.GFLOPS
	}
}
