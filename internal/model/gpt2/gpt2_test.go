package gpt2

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/optim"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestModel_Golden compares logits, loss and every parameter gradient with
// PyTorch 1.13 on a tiny random GPT-2 (tools/golden_engine.py).
func TestModel_Golden(t *testing.T) {
	var c modeltest.Case
	modeltest.Load(t, "gpt2", &c)
	var cfg Config
	if err := json.Unmarshal(c.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetParams(m.Params()); err != nil {
		t.Fatal(err)
	}
	ids, _, pos, b, tl := c.Flat()
	c.Check(t, m.Params(), func(tp *tensor.Tape) *tensor.Tensor { return m.Forward(tp, ids, pos, nil, b, tl) }, 1e-5, 1e-4)
}

// TestModel_Deterministic runs two identical training steps from the same
// seed and requires bit-identical weights, with every kernel multi-threaded.
func TestModel_Deterministic(t *testing.T) {
	run := func() []float32 {
		m, err := New(Config{VocabSize: 64, MaxPositions: 32, Hidden: 64, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		r := tt.Rand(3)
		m.Init(r)
		ps := m.Params()
		opt, _ := optim.New(ps, optim.DefaultConfig())
		ids, targets, pos := make([]int32, 64), make([]int32, 64), make([]int32, 64)
		for i := range ids {
			ids[i], targets[i], pos[i] = int32(r.IntN(64)), int32(r.IntN(64)), int32(i%32)
		}
		for step := 0; step < 2; step++ {
			tp := tensor.NewTape()
			ps.ZeroGrad()
			tp.Backward(tensor.CrossEntropy(tp, m.Forward(tp, ids, pos, nil, 2, 32), targets))
			opt.Step(1e-3)
		}
		var all []float32
		for _, p := range ps {
			all = append(all, p.Tensor.Data...)
		}
		return all
	}
	a, b := run(), run()
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			t.Fatalf("weight %d differs between identical runs: %v vs %v", i, a[i], b[i])
		}
	}
}
