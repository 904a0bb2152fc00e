package prm

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

type goldenCase struct {
	Name        string
	B, T, V     int
	Placeholder int32
	Reward      []int32
	Soft        bool
	Inputs      []int32
	Labels      [][]float64
	Logits      []float32
	Loss, Acc   float64
	GradLogits  []float32 `json:"grad_logits"`
}

// samples rebuilds the golden case's samples the way Reader does: tags at
// the placeholder positions, hard labels as reward-token indices (token
// ids for the whole vocabulary), soft labels as they are.
func (c goldenCase) samples(t *testing.T) ([]Sample, []int) {
	var out []Sample
	var rows []int
	for b := range c.B {
		s := Sample{IDs: c.Inputs[b*c.T : (b+1)*c.T]}
		for i, id := range s.IDs {
			if id == c.Placeholder {
				s.Tags = append(s.Tags, i)
				rows = append(rows, b*c.T+i)
			}
		}
		if len(s.Tags) != len(c.Labels[b]) {
			t.Fatalf("row %d: %d tags, %d labels", b, len(s.Tags), len(c.Labels[b]))
		}
		for _, l := range c.Labels[b] {
			switch {
			case c.Soft:
				s.Soft = append(s.Soft, float32(l))
			case c.Reward != nil:
				k := -1
				for i, r := range c.Reward {
					if float64(r) == l {
						k = i
					}
				}
				s.Hard = append(s.Hard, int32(k))
			default:
				s.Hard = append(s.Hard, int32(l))
			}
		}
		out = append(out, s)
	}
	return out, rows
}

// TestLoss_Golden compares the loss, the step accuracy and the gradient of
// every logit with OpenRLHF's PRMLoss in PyTorch (tools/prm_golden.py).
func TestLoss_Golden(t *testing.T) {
	var g struct{ Cases []goldenCase }
	b, err := os.ReadFile(filepath.Join("testdata", "loss_golden.json"))
	if err != nil {
		t.Fatalf("%v (regenerate with tools/prm_golden.py)", err)
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) != 3 {
		t.Fatalf("%d golden cases, want 3", len(g.Cases))
	}
	for _, c := range g.Cases {
		t.Run(c.Name, func(t *testing.T) {
			samples, rows := c.samples(t)
			logits := tensor.FromSlice(append([]float32(nil), c.Logits...), c.B, c.T, c.V)
			logits.RequiresGrad = true
			classes := c.V
			if c.Reward != nil {
				classes = len(c.Reward)
			}
			tp := tensor.NewTape()
			z := TagLogits(tp, logits, rows, c.Reward)
			target := Targets(samples, classes)
			loss := Loss(tp, z, target, 1/float32(len(rows)))
			tp.Backward(loss)
			if d := math.Abs(float64(loss.Item())-c.Loss) / c.Loss; d > 1e-6 {
				t.Errorf("loss %v, PyTorch %v (rel. error %.2g)", loss.Item(), c.Loss, d)
			}
			pos, neg := Correct(z, target)
			if acc := float64(pos[0]+neg[0]) / float64(pos[1]+neg[1]); math.Abs(acc-c.Acc) > 1e-12 {
				t.Errorf("accuracy %v, PyTorch %v", acc, c.Acc)
			}
			if e := tt.MaxRelErr(logits.Grad, c.GradLogits, 1e-6); e > 1e-5 {
				t.Errorf("∂loss/∂logits: max relative error %.3g", e)
			}
		})
	}
}

// TestLoss_GradCheck checks TagLogits and Loss against finite differences.
func TestLoss_GradCheck(t *testing.T) {
	r := tt.Rand(3)
	logits := tt.Uniform(r, -2, 2, 2, 4, 6)
	logits.RequiresGrad = true
	rows := []int{1, 3, 4, 7}
	samples := []Sample{{Tags: []int{1, 3}, Soft: []float32{0.25, 1}}, {Tags: []int{0, 3}, Soft: []float32{0, 0.6}}}
	f := func(tp *tensor.Tape) *tensor.Tensor {
		z := TagLogits(tp, logits, rows, []int32{5, 2})
		return tensor.Reshape(tp, Loss(tp, z, Targets(samples, 2), 0.25), 1)
	}
	if err := tt.GradCheck(f, []*tensor.Tensor{logits}, 1e-3, 1e-2); err != nil {
		t.Fatal(err)
	}
}

// TestTagLogits_OneHotExact checks that picking columns by a one-hot
// product returns the logits bit for bit.
func TestTagLogits_OneHotExact(t *testing.T) {
	logits := tt.Uniform(tt.Rand(5), -30, 30, 3, 5, 64)
	cols := []int32{63, 0, 17}
	z := TagLogits(nil, logits, []int{0, 7, 14}, cols)
	for p, row := range []int{0, 7, 14} {
		for k, c := range cols {
			if got, want := z.Data[p*3+k], logits.Data[row*64+int(c)]; got != want {
				t.Fatalf("tag %d column %d: %v, logit %v", p, c, got, want)
			}
		}
	}
}
