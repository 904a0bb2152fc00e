package tensor_test

import (
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestTape_Losses builds the losses every trainer needs from ops alone and
// checks their gradients against finite differences: the tape, not
// hand-derived formulas, supplies them.
func TestTape_Losses(t *testing.T) {
	constant := func(seed uint64, lo, hi float32, n int) *tensor.Tensor { return tt.Uniform(tt.Rand(seed), lo, hi, n) }
	adv, oldLP, mask := constant(10, -1, 1, 8), constant(11, -2, -0.5, 8), tensor.FromSlice([]float32{1, 1, 1, 0, 1, 1, 0, 1}, 8)
	ret, oldV := constant(12, -1, 1, 8), constant(13, -1, 1, 8)
	refLP := constant(14, -2, -0.5, 8)
	cases := []struct {
		name   string
		inputs []*tensor.Tensor
		f      func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor
	}{
		// Bradley–Terry: −log σ(r_chosen − r_rejected − margin).
		{"BradleyTerry", []*tensor.Tensor{param(1, -2, 2, 6), param(2, -2, 2, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Scale(tp, tensor.Mean(tp, tensor.LogSigmoid(tp, tensor.AddScalar(tp, tensor.Sub(tp, in[0], in[1]), -0.1))), -1)
			}},
		// DPO: −log σ(β·((π_c − π_r) − (ref_c − ref_r))).
		{"DPO", []*tensor.Tensor{param(3, -3, -1, 5), param(4, -3, -1, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				refDiff := tensor.FromSlice([]float32{0.1, -0.2, 0.3, 0, 0.05}, 5)
				logits := tensor.Scale(tp, tensor.Sub(tp, tensor.Sub(tp, in[0], in[1]), refDiff), 0.1)
				return tensor.Scale(tp, tensor.Mean(tp, tensor.LogSigmoid(tp, logits)), -1)
			}},
		// PPO clipped surrogate: −min(ρ·A, clip(ρ, 1−ε, 1+ε)·A), ρ = e^{logπ − logπ_old}, masked mean.
		{"PPOClip", []*tensor.Tensor{param(5, -2, -0.5, 8)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				ratio := tensor.Exp(tp, tensor.Sub(tp, in[0], oldLP))
				s1 := tensor.Mul(tp, ratio, adv)
				s2 := tensor.Mul(tp, tensor.Clamp(tp, ratio, 0.8, 1.2), adv)
				return tensor.Scale(tp, tensor.MaskedMean(tp, tensor.Minimum(tp, s1, s2), mask), -1)
			}},
		// Clipped value loss: ½·max((V − R)², (clip(V, V_old ± ε) − R)²).
		{"ValueClip", []*tensor.Tensor{param(6, -1, 1, 8)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				d := tensor.Sub(tp, in[0], oldV)
				vc := tensor.Add(tp, oldV, tensor.Clamp(tp, d, -0.2, 0.2))
				l1 := tensor.Square(tp, tensor.Sub(tp, in[0], ret))
				l2 := tensor.Square(tp, tensor.Sub(tp, vc, ret))
				return tensor.Scale(tp, tensor.MaskedMean(tp, tensor.Maximum(tp, l1, l2), mask), 0.5)
			}},
		// KL k3 estimator (Schulman 2020): e^{ref − logπ} − (ref − logπ) − 1.
		{"KLk3", []*tensor.Tensor{param(7, -2, -0.5, 8)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				d := tensor.Sub(tp, refLP, in[0])
				return tensor.MaskedMean(tp, tensor.AddScalar(tp, tensor.Sub(tp, tensor.Exp(tp, d), d), -1), mask)
			}},
		// SFT: cross-entropy through a linear LM head.
		{"SFT", []*tensor.Tensor{param(8, -1, 1, 4, 6), param(9, -1, 1, 7, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.CrossEntropy(tp, tensor.Linear(tp, in[0], in[1], nil), []int32{3, -100, 6, 0})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := func(tp *tensor.Tape) *tensor.Tensor { return c.f(tp, c.inputs) }
			if err := tt.GradCheck(f, c.inputs, 1e-3, 2e-2); err != nil {
				t.Fatal(err)
			}
		})
	}
}
