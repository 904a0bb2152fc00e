package gpt2

import (
	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// KVShape implements model.Decoder. The learned position table limits
// sequences to n_positions tokens.
func (m *Model) KVShape() model.KVShape {
	c := m.Config
	return model.KVShape{Layers: c.Layers, KVHeads: c.Heads, HeadDim: c.Hidden / c.Heads, Heads: c.Heads,
		MaxPositions: c.MaxPositions}
}

// Step implements model.Decoder: the same layers as Forward over only the
// new rows of a ragged batch, each row embedded at its absolute position,
// attention delegated to the cache. Inference only (no tape).
func (m *Model) Step(b *model.Batch, kv model.KVCache) *tensor.Tensor {
	b.Check()
	c := m.Config
	x := tensor.Add(nil, tensor.Embedding(nil, m.WTE, b.Tokens), tensor.Embedding(nil, m.WPE, b.Positions()))
	for l, blk := range m.Blocks {
		x = blk.step(x, c, l, b, kv, &m.step)
	}
	x = m.LNF.Forward(nil, tensor.GatherRows(nil, x, b.Logits))
	return m.step.Linear(x, m.WTE, nil)
}

func (blk *Block) step(x *tensor.Tensor, c Config, layer int, b *model.Batch, kv model.KVCache, w *model.StepWeights) *tensor.Tensor {
	C := c.Hidden
	h := blk.LN1.Forward(nil, x)
	qkv := tensor.SplitLastDim(nil, stepConv(w, h, blk.AttnW, blk.AttnB, blk.AttnLoRA), C, C, C)
	kv.Store(layer, b, qkv[1].Data, qkv[2].Data)
	a := tensor.New(qkv[0].Shape...)
	kv.Attend(layer, b, qkv[0].Data, a.Data)
	x = tensor.Add(nil, x, stepConv(w, a, blk.AttnProjW, blk.AttnProjB, blk.AttnProjLoRA))
	h = blk.LN2.Forward(nil, x)
	h = tensor.GELU(nil, stepConv(w, h, blk.FcW, blk.FcB, blk.FcLoRA))
	return tensor.Add(nil, x, stepConv(w, h, blk.MLPProjW, blk.MLPProjB, blk.MLPProjLoRA))
}

// SetStepDType implements model.StepDTyper: the attention, projection
// and MLP weights and the tied LM head get a dt copy that Step reads; the
// embedding lookups stay f32.
func (m *Model) SetStepDType(dt half.DType) {
	var ms []model.StepMatrix
	for _, blk := range m.Blocks {
		for _, w := range []*tensor.Tensor{blk.AttnW, blk.AttnProjW, blk.FcW, blk.MLPProjW} {
			ms = append(ms, model.StepMatrix{W: w})
		}
	}
	ms = append(ms, model.StepMatrix{W: m.WTE, OutIn: true})
	m.step.Set(dt, ms)
}

// StepDType implements model.StepDTyper.
func (m *Model) StepDType() half.DType { return m.step.DType() }

var _ model.StepDTyper = (*Model)(nil)

// stepConv is one Conv1D of a decode step: the LoRA path when the matrix
// has an adapter (f32 base plus adapter), else w's 16-bit copy of the
// matrix when there is one.
func stepConv(w *model.StepWeights, x, wt, b *tensor.Tensor, a *nn.LoRA) *tensor.Tensor {
	if a != nil {
		return conv(nil, x, wt, b, a)
	}
	return w.Conv1D(x, wt, b)
}
