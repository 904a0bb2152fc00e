package head

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestHead_Values compares the head with a plain dot product per token.
func TestHead_Values(t *testing.T) {
	r := tt.Rand(1)
	h := New(5)
	h.Init(r)
	x := tt.Uniform(r, -1, 1, 2, 3, 5)
	v := h.Values(nil, x)
	if !slices.Equal(v.Shape, []int{2, 3}) {
		t.Fatalf("shape %v, want [2 3]", v.Shape)
	}
	for n := range 6 {
		var want float64
		for c := range 5 {
			want += float64(x.Data[n*5+c]) * float64(h.Weight.Data[c])
		}
		if math.Abs(float64(v.Data[n])-want) > 1e-6 {
			t.Errorf("value %d = %v, want %v", n, v.Data[n], want)
		}
	}
}

// TestHead_ValuesGrad checks the head's gradients (through Pick) against
// finite differences.
func TestHead_ValuesGrad(t *testing.T) {
	r := tt.Rand(2)
	h := New(4)
	h.Init(r)
	x := tt.Uniform(r, -1, 1, 3, 5, 4)
	x.RequiresGrad = true
	f := func(tp *tensor.Tape) *tensor.Tensor { return Pick(tp, h.Values(tp, x), []int{4, 0, 2}) }
	if err := tt.GradCheck(f, []*tensor.Tensor{x, h.Weight}, 1e-2, 1e-2); err != nil {
		t.Error(err)
	}
}

// TestLastNonPad covers right padding, left padding, no padding and a row
// of padding only (0, as in transformers).
func TestLastNonPad(t *testing.T) {
	ids := []int32{
		5, 6, 7, 0, 0, // right padded
		0, 0, 5, 6, 7, // left padded
		5, 6, 7, 8, 9, // full
		0, 0, 0, 0, 0, // all padding
		5, 0, 7, 0, 0, // pad inside
	}
	if got, want := LastNonPad(ids, 5, 5, 0), []int{2, 4, 4, 0, 2}; !slices.Equal(got, want) {
		t.Errorf("LastNonPad = %v, want %v", got, want)
	}
}

// TestLastValid is OpenRLHF's attention-mask rule; an empty row gives T−1.
func TestLastValid(t *testing.T) {
	mask := []float32{
		1, 1, 0, 0,
		0, 1, 1, 1,
		0, 0, 0, 0,
	}
	if got, want := LastValid(mask, 3, 4), []int{1, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("LastValid = %v, want %v", got, want)
	}
}

// TestPick checks values and the out-of-range panic (a programmer error).
func TestPick(t *testing.T) {
	v := tensor.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if got := Pick(nil, v, []int{2, 0}); !slices.Equal(got.Data, []float32{3, 4}) || !slices.Equal(got.Shape, []int{2}) {
		t.Errorf("Pick = %v %v", got.Data, got.Shape)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "out of range") {
			t.Errorf("recovered %v", r)
		}
	}()
	Pick(nil, v, []int{3, 0})
}

// TestScoreModel_Params checks HF's *ForSequenceClassification naming:
// backbone under "model." / "transformer.", no lm_head, then score.weight.
func TestScoreModel_Params(t *testing.T) {
	lm, err := llama.New(llama.Config{VocabSize: 7, Hidden: 8, Intermediate: 4, Layers: 1, Heads: 2, RMSNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt2.New(gpt2.Config{VocabSize: 7, MaxPositions: 4, Hidden: 8, Layers: 1, Heads: 2, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		s      *ScoreModel
		prefix string
	}{{"llama untied", NewScoreModel(lm, 8), "model."}, {"gpt2", NewScoreModel(g, 8), "transformer."}} {
		t.Run(c.name, func(t *testing.T) {
			ps := c.s.Params()
			if err := ps.Validate(); err != nil {
				t.Fatal(err)
			}
			last := ps[len(ps)-1]
			if last.Name != "score.weight" || !slices.Equal(last.Tensor.Shape, []int{1, 8}) {
				t.Errorf("last parameter %s %v", last.Name, last.Tensor.Shape)
			}
			for _, p := range ps[:len(ps)-1] {
				if !strings.HasPrefix(p.Name, c.prefix) {
					t.Errorf("backbone parameter %s lacks %q", p.Name, c.prefix)
				}
			}
			if got := len(ps); got != len(c.s.Backbone.Params())+1-countLMHead(c.s) {
				t.Errorf("%d parameters", got)
			}
		})
	}
}

func countLMHead(s *ScoreModel) int {
	if s.Backbone.Params().Find("lm_head.weight") != nil {
		return 1
	}
	return 0
}

// TestScoreModel_Rewards checks that Rewards picks Values at the given
// positions and that Norm.Apply is OpenRLHF's (r − mean) / std.
func TestScoreModel_Rewards(t *testing.T) {
	g, err := gpt2.New(gpt2.Config{VocabSize: 9, MaxPositions: 4, Hidden: 8, Layers: 1, Heads: 2, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	r := tt.Rand(4)
	g.Init(r)
	s := NewScoreModel(g, 8)
	s.Head.Init(r)
	ids, pos := []int32{1, 2, 3, 0, 4, 5, 6, 7}, []int32{0, 1, 2, 3, 0, 1, 2, 3}
	v := s.Values(nil, ids, pos, nil, 2, 4)
	last := LastNonPad(ids, 2, 4, 0)
	rw := s.Rewards(nil, ids, pos, nil, 2, 4, last)
	if want := []float32{v.Data[2], v.Data[7]}; !slices.Equal(rw.Data, want) {
		t.Errorf("rewards %v, want %v", rw.Data, want)
	}
	n := Norm{Normalize: true, Mean: 1, Std: 2}
	x := []float32{3, -1}
	n.Apply(x)
	if !slices.Equal(x, []float32{1, -1}) {
		t.Errorf("normalised %v", x)
	}
	DefaultNorm().Apply(x)
	if !slices.Equal(x, []float32{1, -1}) {
		t.Errorf("the default norm changed %v", x)
	}
}
