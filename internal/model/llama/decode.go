package llama

import (
	"github.com/gorlhf/gorlhf/internal/model"
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
	return tensor.Linear(nil, x, m.LMHead, nil)
}

func (blk *Block) step(x *tensor.Tensor, m *Model, layer int, b *model.Batch, pos []int32, kv model.KVCache) *tensor.Tensor {
	c := m.Config
	h := blk.InputNorm.Forward(nil, x)
	q, k, v := blk.Q.Forward(nil, h), blk.K.Forward(nil, h), blk.V.Forward(nil, h)
	if blk.QNorm != nil { // per-head RMSNorm: view as [N·H, D]
		q = tensor.Reshape(nil, blk.QNorm.Forward(nil, tensor.Reshape(nil, q, len(q.Data)/c.HeadDim, c.HeadDim)), q.Shape...)
		k = tensor.Reshape(nil, blk.KNorm.Forward(nil, tensor.Reshape(nil, k, len(k.Data)/c.HeadDim, c.HeadDim)), k.Shape...)
	}
	q, k = tensor.ApplyRoPE(nil, q, pos, m.rope), tensor.ApplyRoPE(nil, k, pos, m.rope)
	kv.Store(layer, b, k.Data, v.Data)
	a := tensor.New(q.Shape...)
	kv.Attend(layer, b, q.Data, a.Data)
	x = tensor.Add(nil, x, blk.O.Forward(nil, a))
	h = blk.PostAttnNorm.Forward(nil, x)
	return tensor.Add(nil, x, blk.Down.Forward(nil, tensor.SwiGLU(nil, blk.Gate.Forward(nil, h), blk.Up.Forward(nil, h))))
}

var _ model.Decoder = (*Model)(nil)
