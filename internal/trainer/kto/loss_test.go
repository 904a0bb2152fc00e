package kto

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/trainer/dpo"
)

// TestLoss_Golden runs the whole KTO loss path, from the policy's logits of
// the samples and of the mismatched sequences through token log-probs,
// sequence sums over padded rows, the detached and clamped KL estimate and
// the weighted loss, and compares the loss, the KL, the implicit rewards
// and the gradient with respect to the logits with OpenRLHF v0.8.11's
// KTOLoss in PyTorch (tools/kto_kd_golden.py).
func TestLoss_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name              string
			Shape             []int
			Logits            []float32
			Targets           []int32
			Lengths           []int
			KLLogits          []float32 `json:"kl_logits"`
			KLTargets         []int32   `json:"kl_targets"`
			KLLengths         []int     `json:"kl_lengths"`
			Ref               []float32
			RefKL             []float32 `json:"ref_kl"`
			Labels            []int
			Beta              float64
			DesirableWeight   float64 `json:"desirable_weight"`
			UndesirableWeight float64 `json:"undesirable_weight"`
			Loss, KL          float64
			GradLogits        []float32 `json:"grad_logits"`
			ChosenReward      []float32 `json:"chosen_reward"`
			RejectedReward    []float32 `json:"rejected_reward"`
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "loss_golden.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/kto_kd_golden.py)", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) == 0 {
		t.Fatal("no cases")
	}
	batch := func(rows, seq int, targets []int32, lengths []int) *data.Batch {
		b := &data.Batch{B: rows, T: seq, Targets: targets}
		for i, l := range lengths {
			b.Spans = append(b.Spans, data.Span{Row: i, Len: l})
		}
		return b
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			rows, seq := c.Shape[0], c.Shape[1]
			// the mismatched half: no tape, as in the trainer
			klLogits := tensor.FromSlice(c.KLLogits, c.Shape...)
			pkl, _ := dpo.SeqLogProbs(nil, tensor.TokenLogProbs(nil, klLogits, c.KLTargets), batch(rows, seq, c.KLTargets, c.KLLengths))
			kl := Clamp(KL(pkl.Data, c.RefKL))
			if math.Abs(kl-c.KL) > 1e-5*max(1, math.Abs(c.KL)) {
				t.Errorf("KL %v, PyTorch %v", kl, c.KL)
			}
			logits := tensor.FromSlice(append([]float32(nil), c.Logits...), c.Shape...)
			logits.RequiresGrad = true
			desirable := make([]bool, len(c.Labels))
			for i, l := range c.Labels {
				desirable[i] = l == 1
			}
			tp := tensor.NewTape()
			sums, _ := dpo.SeqLogProbs(tp, tensor.TokenLogProbs(tp, logits, c.Targets), batch(rows, seq, c.Targets, c.Lengths))
			cfg := LossConfig{Beta: c.Beta, DesirableWeight: c.DesirableWeight, UndesirableWeight: c.UndesirableWeight}
			loss, dr, ur := Loss(tp, cfg, sums, c.Ref, desirable, kl, rows)
			tp.Backward(loss)
			if d := math.Abs(float64(loss.Item())-c.Loss) / math.Abs(c.Loss); d > 1e-5 {
				t.Errorf("loss %v, PyTorch %v (rel. error %.2g)", loss.Item(), c.Loss, d)
			}
			if e := tt.MaxRelErr(logits.Grad, c.GradLogits, 1e-6); e > 1e-4 {
				t.Errorf("∂loss/∂logits: max relative error %.3g", e)
			}
			if e := tt.MaxRelErr(dr, c.ChosenReward, 1e-6); e > 1e-5 || len(dr) != len(c.ChosenReward) {
				t.Errorf("desirable rewards %v, PyTorch %v", dr, c.ChosenReward)
			}
			if e := tt.MaxRelErr(ur, c.RejectedReward, 1e-6); e > 1e-5 || len(ur) != len(c.RejectedReward) {
				t.Errorf("undesirable rewards %v, PyTorch %v", ur, c.RejectedReward)
			}
		})
	}
}

// TestLoss_GradCheck checks Loss's gradient with respect to the policy's
// sequence log-probs by finite differences.
func TestLoss_GradCheck(t *testing.T) {
	r := tt.Rand(7)
	n := 5
	ref := make([]float32, n)
	for i := range ref {
		ref[i] = float32(r.NormFloat64()) - 5
	}
	desirable := []bool{true, false, true, false, false}
	cfg := LossConfig{Beta: 0.7, DesirableWeight: 1.3, UndesirableWeight: 0.6}
	x := tt.Uniform(r, -7, -3, n)
	x.RequiresGrad = true
	f := func(tp *tensor.Tape) *tensor.Tensor {
		l, _, _ := Loss(tp, cfg, x, ref, desirable, 0.4, 8)
		return l
	}
	if err := tt.GradCheck(f, []*tensor.Tensor{x}, 1e-2, 1e-2); err != nil {
		t.Fatal(err)
	}
}
