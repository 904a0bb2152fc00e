// Package modeltest reads the PyTorch golden files under testdata/ (made by
// tools/golden_engine.py) and compares a model's logits and gradients with
// them.
package modeltest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// Case is one golden model run.
type Case struct {
	Kind    string          `json:"kind"`
	Config  json.RawMessage `json:"config"`
	IDs     [][]int32       `json:"ids"`
	Targets [][]int32       `json:"targets"`
	Pos     [][]int32       `json:"pos"`
	Seg     []int32         `json:"seg"`
	Params  map[string]struct {
		Shape []int     `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"params"`
	Logits []float32            `json:"logits"`
	Loss   float32              `json:"loss"`
	Grads  map[string][]float32 `json:"grads"`
}

// RepoFile returns the path of a file relative to the repository root.
func RepoFile(parts ...string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(append([]string{filepath.Dir(here), "..", "..", ".."}, parts...)...)
}

// Load reads testdata/golden_engine.json and returns the named entry
// decoded into v.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(RepoFile("testdata", "golden_engine.json"))
	if err != nil {
		t.Fatalf("read golden file (regenerate with tools/golden_engine.py): %v", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		t.Fatal(err)
	}
	raw, ok := all[name]
	if !ok {
		t.Fatalf("golden file has no %q", name)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("golden %q: %v", name, err)
	}
}

// Flat returns the ids, targets, positions (0..T−1 when absent) and B, T.
func (c *Case) Flat() (ids, targets, pos []int32, b, t int) {
	b, t = len(c.IDs), len(c.IDs[0])
	for i := range c.IDs {
		ids = append(ids, c.IDs[i]...)
		targets = append(targets, c.Targets[i]...)
		if c.Pos != nil {
			pos = append(pos, c.Pos[i]...)
		} else {
			for j := 0; j < t; j++ {
				pos = append(pos, int32(j))
			}
		}
	}
	return
}

// SetParams copies the golden weights into ps by name; every parameter must
// be present with the same shape, and no golden weight may be left over.
func (c *Case) SetParams(ps nn.Params) error {
	if len(ps) != len(c.Params) {
		return fmt.Errorf("model has %d parameters, golden has %d", len(ps), len(c.Params))
	}
	for _, p := range ps {
		g, ok := c.Params[p.Name]
		if !ok {
			return fmt.Errorf("golden has no %s", p.Name)
		}
		if !tensor.SameShape(g.Shape, p.Tensor.Shape) {
			return fmt.Errorf("%s: golden shape %v, model shape %v", p.Name, g.Shape, p.Tensor.Shape)
		}
		copy(p.Tensor.Data, g.Data)
	}
	return nil
}

// Check runs forward (logits and CE loss) and backward, then compares the
// logits (≤ logitTol relative), the loss, and every gradient by name
// (≤ gradTol relative to the tensor's largest reference gradient).
func (c *Case) Check(t *testing.T, ps nn.Params, forward func(tp *tensor.Tape) *tensor.Tensor, logitTol, gradTol float64) {
	t.Helper()
	_, targets, _, _, _ := c.Flat()
	tp := tensor.NewTape()
	logits := forward(tp)
	e := tt.MaxRelErr(logits.Data, c.Logits, 1e-6)
	if e > logitTol {
		t.Errorf("logits: max relative error %.3g > %.1g", e, logitTol)
	}
	t.Logf("logits max relative error %.2g", e)
	loss := tensor.CrossEntropy(tp, logits, targets)
	if e := tt.MaxRelErr(loss.Data, []float32{c.Loss}, 1e-6); e > logitTol {
		t.Errorf("loss %v, golden %v", loss.Item(), c.Loss)
	}
	tp.Backward(loss)
	worst := 0.0
	for _, p := range ps {
		e := tt.MaxRelErr(p.Tensor.Grad, c.Grads[p.Name], 1e-6)
		if e > gradTol {
			t.Errorf("grad %s: max relative error %.3g > %.1g", p.Name, e, gradTol)
		}
		worst = max(worst, e)
	}
	t.Logf("worst gradient max relative error %.2g over %d parameters", worst, len(ps))
}
