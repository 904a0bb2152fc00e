package sft

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestLoss_Golden compares the loss and its gradient with respect to the
// logits with PyTorch's cross_entropy(reduction="sum")/N on the same inputs
// (tools/trainers_golden.py).
func TestLoss_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name       string
			Shape      []int
			Logits     []float32
			Targets    []int32
			Norm       int
			Loss       float64
			GradLogits []float32 `json:"grad_logits"`
		}
	}
	readGolden(t, &g)
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			logits := tensor.FromSlice(append([]float32(nil), c.Logits...), c.Shape...)
			logits.RequiresGrad = true
			tp := tensor.NewTape()
			loss := Loss(tp, tensor.TokenLogProbs(tp, logits, c.Targets), c.Targets, c.Norm)
			tp.Backward(loss)
			if d := math.Abs(float64(loss.Item())-c.Loss) / math.Abs(c.Loss); d > 1e-6 {
				t.Errorf("loss %v, PyTorch %v (rel. error %.2g)", loss.Item(), c.Loss, d)
			}
			if e := tt.MaxRelErr(logits.Grad, c.GradLogits, 1e-6); e > 1e-5 {
				t.Errorf("∂loss/∂logits: max relative error %.3g", e)
			}
		})
	}
}

func readGolden(t *testing.T, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "loss_golden.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/trainers_golden.py)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}
