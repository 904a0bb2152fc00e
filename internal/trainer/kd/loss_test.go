package kd

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
	"github.com/gorlhf/gorlhf/internal/trainer/sft"
)

// TestLoss_Golden compares the mixed SFT + distillation loss and its
// gradient with respect to the student's logits with OpenRLHF's GPTLMLoss
// and KDLoss in PyTorch (tools/kto_kd_golden.py; the distillation term on
// the positions that predict response tokens).
func TestLoss_Golden(t *testing.T) {
	var g struct {
		Cases []struct {
			Name       string
			Shape      []int
			Logits     []float32
			Teacher    []float32 `json:"teacher_logits"`
			Targets    []int32
			KDCoef     float64 `json:"kd_coef"`
			Norm       int
			Loss       float64
			GPT        float64   `json:"gpt_loss"`
			DistilLoss float64   `json:"distil_loss"`
			GradLogits []float32 `json:"grad_logits"`
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
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			logits := tensor.FromSlice(append([]float32(nil), c.Logits...), c.Shape...)
			logits.RequiresGrad = true
			rows := LossRows(c.Targets)
			teacher := TeacherProbs(tensor.FromSlice(c.Teacher, c.Shape...), rows)
			tp := tensor.NewTape()
			gpt := sft.Loss(tp, tensor.TokenLogProbs(tp, logits, c.Targets), c.Targets, c.Norm)
			distil := Distill(tp, logits, rows, teacher, c.Norm)
			loss := Mix(tp, gpt, distil, c.KDCoef)
			tp.Backward(loss)
			for _, v := range []struct {
				name      string
				got, want float64
			}{{"loss", float64(loss.Item()), c.Loss}, {"gpt_loss", float64(gpt.Item()), c.GPT}, {"distil_loss", float64(distil.Item()), c.DistilLoss}} {
				if d := math.Abs(v.got-v.want) / math.Abs(v.want); d > 1e-5 {
					t.Errorf("%s %v, PyTorch %v (rel. error %.2g)", v.name, v.got, v.want, d)
				}
			}
			if e := tt.MaxRelErr(logits.Grad, c.GradLogits, 1e-6); e > 1e-4 {
				t.Errorf("∂loss/∂logits: max relative error %.3g", e)
			}
		})
	}
}

// TestDistill_GradCheck checks Distill's gradient by finite differences,
// and that it is the teacher's entropy (its minimum) when the student's
// distributions equal the teacher's.
func TestDistill_GradCheck(t *testing.T) {
	r := tt.Rand(11)
	x := tt.Uniform(r, -2, 2, 6, 5)
	x.RequiresGrad = true
	rows := []int{0, 2, 3, 5}
	teacher := TeacherProbs(tt.Uniform(r, -3, 3, 6, 5), rows)
	f := func(tp *tensor.Tape) *tensor.Tensor { return Distill(tp, x, rows, teacher, 3) }
	if err := tt.GradCheck(f, []*tensor.Tensor{x}, 1e-2, 1e-2); err != nil {
		t.Fatal(err)
	}
	z := tt.Uniform(r, -3, 3, 4, 5)
	p := TeacherProbs(z, []int{0, 1, 2, 3})
	if d := float64(Distill(nil, z, []int{0, 1, 2, 3}, p, 1).Item()) - Entropy(p); math.Abs(d) > 1e-5 {
		t.Fatalf("H(p, p) − H(p) = %g, want 0", d)
	}
}
