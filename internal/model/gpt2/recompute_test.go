package gpt2

import (
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestModel_RecomputeBitIdentical: a small random GPT-2's logits, loss and
// every parameter gradient, over two accumulated micro-batches, plain and
// packed, have the same bits with gradient checkpointing (model.Recompute)
// as without.
func TestModel_RecomputeBitIdentical(t *testing.T) {
	m, err := New(Config{VocabSize: 64, MaxPositions: 32, Hidden: 32, Layers: 3, Heads: 4, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	m.Init(tt.Rand(5))
	for _, packed := range []bool{false, true} {
		t.Run(fmt.Sprintf("packed=%v", packed), func(t *testing.T) {
			const b, tl = 2, 12
			ids, targets, pos, seg := modeltest.RandomBatch(tt.Rand(6), 64, b, tl, packed)
			pass := func(tp *tensor.Tape, mb int) (out, loss *tensor.Tensor) {
				out = m.Forward(tp, ids[mb], pos, seg, b, tl)
				return out, tensor.CrossEntropy(tp, out, targets[mb])
			}
			modeltest.CheckSameBits(t, m.Params(), 2, pass,
				modeltest.Setup{Name: "direct", Apply: func() { m.SetBlockRunner(nil) }},
				modeltest.Setup{Name: "recompute", Apply: func() { m.SetBlockRunner(model.Recompute{}) }},
				modeltest.Setup{Name: "pooled tape", Apply: func() { m.SetBlockRunner(nil) }, Pooled: true},
				modeltest.Setup{Name: "pooled tape, recompute", Apply: func() { m.SetBlockRunner(model.Recompute{}) }, Pooled: true})
			m.SetBlockRunner(nil)
		})
	}
}
