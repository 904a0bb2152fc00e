package rm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestLoss_Golden compares the pairwise losses and their gradients with
// OpenRLHF's PairWiseLoss and LogExpLoss in PyTorch (tools/trainers_golden.py).
func TestLoss_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name                     string
			Kind                     LossKind
			Chosen, Rejected, Margin []float32
			Norm                     int
			Loss                     float64
			GradChosen               []float32 `json:"grad_chosen"`
			GradRejected             []float32 `json:"grad_rejected"`
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
			ch := tensor.FromSlice(append([]float32(nil), c.Chosen...), len(c.Chosen))
			rj := tensor.FromSlice(append([]float32(nil), c.Rejected...), len(c.Rejected))
			ch.RequiresGrad, rj.RequiresGrad = true, true
			tp := tensor.NewTape()
			loss := Loss(tp, c.Kind, ch, rj, c.Margin, c.Norm)
			tp.Backward(loss)
			if d := math.Abs(float64(loss.Item())-c.Loss) / math.Abs(c.Loss); d > 1e-6 {
				t.Errorf("loss %v, PyTorch %v (rel. error %.2g)", loss.Item(), c.Loss, d)
			}
			if e := tt.MaxRelErr(ch.Grad, c.GradChosen, 1e-6); e > 1e-5 {
				t.Errorf("∂loss/∂chosen: max relative error %.3g", e)
			}
			if e := tt.MaxRelErr(rj.Grad, c.GradRejected, 1e-6); e > 1e-5 {
				t.Errorf("∂loss/∂rejected: max relative error %.3g", e)
			}
		})
	}
}
