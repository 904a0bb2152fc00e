package llama_test

import (
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/llama"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestModel_RecomputeBitIdentical: stories260K's logits, loss and every
// parameter gradient, over two accumulated micro-batches, plain and packed,
// have the same bits with gradient checkpointing (model.Recompute) as
// without.
func TestModel_RecomputeBitIdentical(t *testing.T) {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := l.Model.(*llama.Model)
	for _, packed := range []bool{false, true} {
		t.Run(fmt.Sprintf("packed=%v", packed), func(t *testing.T) {
			const b, tl = 2, 12
			ids, targets, pos, seg := modeltest.RandomBatch(tt.Rand(7), m.Dims().Vocab, b, tl, packed)
			pass := func(tp *tensor.Tape, mb int) (out, loss *tensor.Tensor) {
				out = m.Forward(tp, ids[mb], pos, seg, b, tl)
				return out, tensor.CrossEntropy(tp, out, targets[mb])
			}
			modeltest.CheckSameBits(t, m.Params(), 2, pass,
				modeltest.Setup{Name: "direct", Apply: func() { m.SetBlockRunner(nil) }},
				modeltest.Setup{Name: "recompute", Apply: func() { m.SetBlockRunner(model.Recompute{}) }})
			m.SetBlockRunner(nil)
		})
	}
}
