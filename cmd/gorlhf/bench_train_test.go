package main

import (
	"context"
	"math"
	"testing"
)

// TestBenchTrain_Checkpointing: bench train on a small Llama and GPT-2
// reaches the same final loss, bit for bit, with gradient checkpointing
// as without, and reports the training-state and activation memory.
func TestBenchTrain_Checkpointing(t *testing.T) {
	for _, arch := range []string{"llama", "gpt2"} {
		shape := benchShape{arch: arch, layers: 2, dim: 32, heads: 4, vocab: 64}
		if arch == "llama" {
			shape.kvHeads = 2
		}
		o := benchTrainOptions{seq: 16, batch: 2, steps: 2, warmup: 1}
		plain, err := benchTrain(context.Background(), shape, o)
		if err != nil {
			t.Fatal(err)
		}
		o.checkpoint = true
		ckpt, err := benchTrain(context.Background(), shape, o)
		if err != nil {
			t.Fatal(err)
		}
		if math.Float32bits(plain.FinalLoss) != math.Float32bits(ckpt.FinalLoss) || !ckpt.Checkpointed || plain.Checkpointed {
			t.Errorf("%s: final loss %v without, %v with gradient checkpointing", arch, plain.FinalLoss, ckpt.FinalLoss)
		}
		if ckpt.BaseRSSMB <= 0 || ckpt.PeakRSSMB < ckpt.BaseRSSMB || ckpt.ActivationMB != ckpt.PeakRSSMB-ckpt.BaseRSSMB {
			t.Errorf("%s: peak %v MB, training state %v MB, activations %v MB", arch, ckpt.PeakRSSMB, ckpt.BaseRSSMB, ckpt.ActivationMB)
		}
	}
	if _, err := (benchShape{arch: "gpt2", layers: 1, dim: 8, heads: 2, vocab: 8, kvHeads: 1}).build(4); err == nil {
		t.Error("gpt2 accepted --kv_heads")
	}
}

// TestBenchTrain_Rounds: --rounds runs fresh `bench train` processes
// alternately without and with gradient checkpointing.
func TestBenchTrain_Rounds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	useTestBinary(t)
	args := []string{"bench", "train", "--arch", "llama", "--layers", "2", "--dim", "32", "--heads", "4", "--vocab", "64",
		"--seq", "16", "--batch", "2", "--steps", "1", "--warmup", "1", "--threads", "1", "--time_forward=false", "--rounds", "2"}
	if err := run(context.Background(), args, nil); err != nil {
		t.Fatal(err)
	}
}

// TestBenchTrain_StepGFLOP: the FLOP count's weights are the model's own
// matmul weights (every 2-d parameter but the position table; the tied
// GPT-2 head once), and the bench GPT's step is the 21.7 GFLOP
// docs/BENCHMARKS.md divides by.
func TestBenchTrain_StepGFLOP(t *testing.T) {
	for _, shape := range []benchShape{
		{arch: "gpt2", layers: 4, dim: 256, heads: 4, vocab: 512},
		{arch: "llama", layers: 2, dim: 64, heads: 4, kvHeads: 2, vocab: 96},
	} {
		const seq, batch = 16, 2
		m, err := shape.build(seq)
		if err != nil {
			t.Fatal(err)
		}
		var weights int
		for _, p := range m.Params() {
			if len(p.Tensor.Shape) == 2 && p.Name != "transformer.wpe.weight" {
				weights += p.Tensor.Numel()
			}
		}
		if shape.arch == "llama" { // the untied input embedding is a lookup
			weights -= shape.vocab * shape.dim
		}
		attn := 12 * shape.layers * shape.dim * seq
		want := float64((6*weights+attn)*seq*batch) / 1e9
		if got := shape.stepGFLOP(seq, batch); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s: %.9f GFLOP per step, the parameters give %.9f", shape.arch, got, want)
		}
	}
	if got := (benchShape{arch: "gpt2", layers: 4, dim: 256, heads: 4, vocab: 512}).stepGFLOP(128, 8); math.Abs(got-21.74) > 0.01 {
		t.Errorf("bench GPT: %.3f GFLOP per step, want 21.74", got)
	}
}
