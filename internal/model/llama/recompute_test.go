package llama_test

import (
	"fmt"
	"strings"
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
				modeltest.Setup{Name: "recompute", Apply: func() { m.SetBlockRunner(model.Recompute{}) }},
				modeltest.Setup{Name: "pooled tape", Apply: func() { m.SetBlockRunner(nil) }, Pooled: true},
				modeltest.Setup{Name: "pooled tape, recompute", Apply: func() { m.SetBlockRunner(model.Recompute{}) }, Pooled: true})
			m.SetBlockRunner(nil)
		})
	}
}

// TestUseRecompute: UseRecompute sets the runner of a model.Blocked model
// and refuses a model that is not one.
func TestUseRecompute(t *testing.T) {
	m, err := llama.New(llama.Config{VocabSize: 7, Hidden: 8, Intermediate: 4, Layers: 1, Heads: 2, RMSNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	if err := model.UseRecompute(m); err != nil {
		t.Fatal(err)
	}
	hidden := struct{ model.CausalLM }{m} // a CausalLM that does not say it is Blocked
	if err := model.UseRecompute(hidden); err == nil || !strings.Contains(err.Error(), "does not implement model.Blocked") {
		t.Fatalf("err %v", err)
	}
}
