package llama

import (
	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// KVShape implements model.Decoder; its position limit is the trained
// context length (Config.MaxPositions).
func (m *Model) KVShape() model.KVShape {
	c := m.Config
	return model.KVShape{Layers: c.Layers, KVHeads: c.KVHeads, HeadDim: c.HeadDim, Heads: c.Heads, MaxPositions: c.MaxPositions}
}

// Step implements model.Decoder: the same layers as Forward, over only the
// new rows of a ragged batch, with RoPE at each row's absolute position
// and attention delegated to the cache. Inference only (no tape).
func (m *Model) Step(b *model.Batch, kv model.KVCache) *tensor.Tensor {
	b.Check()
	pos := b.Positions()
	x := tensor.Embedding(nil, m.Embed, b.Tokens) // [N, C]
	for l, blk := range m.Blocks {
		x = blk.step(x, m, l, b, pos, kv)
	}
	x = m.Norm.Forward(nil, tensor.GatherRows(nil, x, b.Logits))
	return m.step.Linear(x, m.LMHead, nil)
}

func (blk *Block) step(x *tensor.Tensor, m *Model, layer int, b *model.Batch, pos []int32, kv model.KVCache) *tensor.Tensor {
	c := m.Config
	h := blk.InputNorm.Forward(nil, x)
	w := &m.step
	q, k, v := stepLinear(w, blk.Q, h), stepLinear(w, blk.K, h), stepLinear(w, blk.V, h)
	if blk.QNorm != nil { // per-head RMSNorm: view as [N·H, D]
		q = tensor.Reshape(nil, blk.QNorm.Forward(nil, tensor.Reshape(nil, q, len(q.Data)/c.HeadDim, c.HeadDim)), q.Shape...)
		k = tensor.Reshape(nil, blk.KNorm.Forward(nil, tensor.Reshape(nil, k, len(k.Data)/c.HeadDim, c.HeadDim)), k.Shape...)
	}
	q, k = tensor.ApplyRoPE(nil, q, pos, m.rope), tensor.ApplyRoPE(nil, k, pos, m.rope)
	kv.Store(layer, b, k.Data, v.Data)
	a := tensor.New(q.Shape...)
	kv.Attend(layer, b, q.Data, a.Data)
	x = tensor.Add(nil, x, stepLinear(w, blk.O, a))
	h = blk.PostAttnNorm.Forward(nil, x)
	return tensor.Add(nil, x, stepLinear(w, blk.Down, tensor.SwiGLU(nil, stepLinear(w, blk.Gate, h), stepLinear(w, blk.Up, h))))
}

// SetStepDType implements model.StepDTyper: every projection, MLP and
// the LM head (the embedding, when tied) get a dt copy that Step reads;
// the embedding lookup stays f32.
func (m *Model) SetStepDType(dt half.DType) {
	var ms []model.StepMatrix
	for _, blk := range m.Blocks {
		for _, l := range []*nn.Linear{blk.Q, blk.K, blk.V, blk.O, blk.Gate, blk.Up, blk.Down} {
			ms = append(ms, model.StepMatrix{W: l.Weight, OutIn: true})
		}
	}
	ms = append(ms, model.StepMatrix{W: m.LMHead, OutIn: true})
	m.step.Set(dt, ms)
}

// StepDType implements model.StepDTyper.
func (m *Model) StepDType() half.DType { return m.step.DType() }

var _ model.StepDTyper = (*Model)(nil)

// stepLinear is one projection of a decode step: the layer itself when it
// carries a LoRA adapter (f32 base plus adapter), else w's 16-bit copy of
// its weight when there is one.
func stepLinear(w *model.StepWeights, l *nn.Linear, x *tensor.Tensor) *tensor.Tensor {
	if l.LoRA != nil {
		return l.Forward(nil, x)
	}
	return w.Linear(x, l.Weight, l.Bias)
}
