package dpo

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestLoss_Golden runs the whole DPO loss path, from policy logits through
// token log-probs, sequence sums over padded rows, the DPO/IPO/cDPO loss
// and the NLL term, and compares the loss, the implicit rewards and the
// gradient with respect to the logits with OpenRLHF's formulas in PyTorch
// (tools/trainers_golden.py).
func TestLoss_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name           string
			Shape          []int
			Logits         []float32
			Targets        []int32
			Lengths        []int
			Ref            []float32
			Beta           float64
			IPO            bool
			LabelSmoothing float64 `json:"label_smoothing"`
			NLLCoef        float64 `json:"nll_coef"`
			Loss           float64
			GradLogits     []float32 `json:"grad_logits"`
			ChosenReward   []float32 `json:"chosen_reward"`
			RejectedReward []float32 `json:"rejected_reward"`
		}
	}
	b, err := os.ReadFile(filepath.Join("testdata", "loss_golden.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/trainers_golden.py)", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			rows, seq := c.Shape[0], c.Shape[1]
			p := rows / 2
			logits := tensor.FromSlice(append([]float32(nil), c.Logits...), c.Shape...)
			logits.RequiresGrad = true
			batch := &data.Batch{B: rows, T: seq, Targets: c.Targets}
			for i, l := range c.Lengths {
				batch.Spans = append(batch.Spans, data.Span{Row: i, Len: l})
			}
			tp := tensor.NewTape()
			sums, counts := SeqLogProbs(tp, tensor.TokenLogProbs(tp, logits, c.Targets), batch)
			pc, pr := split(tp, sums, p)
			cfg := LossConfig{Beta: c.Beta, IPO: c.IPO, LabelSmoothing: c.LabelSmoothing}
			loss, cr, rr := Loss(tp, cfg, pc, pr, c.Ref[:p], c.Ref[p:], p)
			if c.NLLCoef != 0 {
				loss = tensor.Add(tp, loss, tensor.Scale(tp, NLL(tp, pc, counts[:p], p), float32(c.NLLCoef)))
			}
			tp.Backward(loss)
			if d := math.Abs(float64(loss.Item())-c.Loss) / math.Abs(c.Loss); d > 1e-5 {
				t.Errorf("loss %v, PyTorch %v (rel. error %.2g)", loss.Item(), c.Loss, d)
			}
			if e := tt.MaxRelErr(logits.Grad, c.GradLogits, 1e-6); e > 1e-4 {
				t.Errorf("∂loss/∂logits: max relative error %.3g", e)
			}
			if e := tt.MaxRelErr(cr, c.ChosenReward, 1e-6); e > 1e-5 {
				t.Errorf("chosen rewards: max relative error %.3g", e)
			}
			if e := tt.MaxRelErr(rr, c.RejectedReward, 1e-6); e > 1e-5 {
				t.Errorf("rejected rewards: max relative error %.3g", e)
			}
		})
	}
}
