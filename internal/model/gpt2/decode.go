package gpt2

import (
	"github.com/gorlhf/gorlhf/internal/model"
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
		x = blk.step(x, c, l, b, kv)
	}
	x = m.LNF.Forward(nil, tensor.GatherRows(nil, x, b.Logits))
	return tensor.Linear(nil, x, m.WTE, nil)
}

func (blk *Block) step(x *tensor.Tensor, c Config, layer int, b *model.Batch, kv model.KVCache) *tensor.Tensor {
	C := c.Hidden
	h := blk.LN1.Forward(nil, x)
	qkv := tensor.SplitLastDim(nil, conv(nil, h, blk.AttnW, blk.AttnB, blk.AttnLoRA), C, C, C)
	kv.Store(layer, b, qkv[1].Data, qkv[2].Data)
	a := tensor.New(qkv[0].Shape...)
	kv.Attend(layer, b, qkv[0].Data, a.Data)
	x = tensor.Add(nil, x, conv(nil, a, blk.AttnProjW, blk.AttnProjB, blk.AttnProjLoRA))
	h = blk.LN2.Forward(nil, x)
	h = tensor.GELU(nil, conv(nil, h, blk.FcW, blk.FcB, blk.FcLoRA))
	return tensor.Add(nil, x, conv(nil, h, blk.MLPProjW, blk.MLPProjB, blk.MLPProjLoRA))
}

var _ model.Decoder = (*Model)(nil)
