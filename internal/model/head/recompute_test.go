package head_test

import (
	"fmt"
	"testing"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/model/gpt2"
	"github.com/gorlhf/gorlhf/internal/model/head"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/model/modeltest"
	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// TestScoreModel_RecomputeBitIdentical: a score model's per-token values,
// a loss on them and every gradient (backbone and head), over two
// accumulated micro-batches, plain and packed, have the same bits with
// gradient checkpointing set on the score model (which hands it to its
// backbone) as without — on stories260K and on a small random GPT-2.
func TestScoreModel_RecomputeBitIdentical(t *testing.T) {
	l, err := load.Load(load.DefaultModel, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stories, _, err := load.ScoreModel(l, l.Model, tt.Rand(8))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gpt2.New(gpt2.Config{VocabSize: 64, MaxPositions: 32, Hidden: 32, Layers: 2, Heads: 4, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	g.Init(tt.Rand(9))
	small := head.NewScoreModel(g, 32)
	small.Head.Init(tt.Rand(10))
	for _, c := range []struct {
		name string
		s    *head.ScoreModel
	}{{"stories260K", stories}, {"gpt2", small}} {
		for _, packed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/packed=%v", c.name, packed), func(t *testing.T) {
				const b, tl = 2, 12
				ids, _, pos, seg := modeltest.RandomBatch(tt.Rand(11), c.s.Dims().Vocab, b, tl, packed)
				proj := tt.Uniform(tt.Rand(12), -1, 1, b, tl)
				pass := func(tp *tensor.Tape, mb int) (out, loss *tensor.Tensor) {
					out = c.s.Values(tp, ids[mb], pos, seg, b, tl)
					return out, tensor.Sum(tp, tensor.Mul(tp, out, proj))
				}
				s := c.s
				modeltest.CheckSameBits(t, s.Params(), 2, pass,
					modeltest.Setup{Name: "direct", Apply: func() { s.SetBlockRunner(nil) }},
					modeltest.Setup{Name: "recompute", Apply: func() { s.SetBlockRunner(model.Recompute{}) }},
					modeltest.Setup{Name: "pooled tape", Apply: func() { s.SetBlockRunner(nil) }, Pooled: true},
					modeltest.Setup{Name: "pooled tape, recompute", Apply: func() { s.SetBlockRunner(model.Recompute{}) }, Pooled: true})
				s.SetBlockRunner(nil)
			})
		}
	}
}
