package gpt2

import (
	"encoding/json"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/tensor"
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
