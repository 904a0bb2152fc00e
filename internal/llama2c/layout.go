package llama2c

import (
	"encoding/binary"
	"fmt"
	"math"
)

// spec is one block of the file: a weight kind for every layer (perLayer)
// or a single tensor. An empty name marks bytes that are skipped.
type spec struct {
	name     string // HF name; contains %d when perLayer
	perLayer int    // number of layers, 0 for a single tensor
	shape    []int  // shape of one tensor
}

// floats64 is the number of float32 values in the block, saturating on
// overflow so a corrupt header cannot wrap around.
func (s spec) floats64() int64 {
	n := int64(max(s.perLayer, 1))
	for _, d := range s.shape {
		n = satMul(n, int64(d))
	}
	return n
}

// floats is floats64 for a block already known to fit in the file.
func (s spec) floats() int { return int(s.floats64()) }

// layout lists the blocks of a legacy checkpoint in file order, with the
// HF names and [out, in] shapes of each weight. llama2.c stores every matrix
// as [out][in], like torch.nn.Linear, so no transposition is needed.
func layout(c Config) []spec {
	L, D, H, KV := c.Layers, c.Dim, c.HiddenDim, c.KVDim()
	specs := []spec{
		{"model.embed_tokens.weight", 0, []int{c.Vocab, D}},
		{"model.layers.%d.input_layernorm.weight", L, []int{D}},
		{"model.layers.%d.self_attn.q_proj.weight", L, []int{D, D}},
		{"model.layers.%d.self_attn.k_proj.weight", L, []int{KV, D}},
		{"model.layers.%d.self_attn.v_proj.weight", L, []int{KV, D}},
		{"model.layers.%d.self_attn.o_proj.weight", L, []int{D, D}},
		{"model.layers.%d.post_attention_layernorm.weight", L, []int{D}},
		{"model.layers.%d.mlp.gate_proj.weight", L, []int{H, D}}, // w1
		{"model.layers.%d.mlp.down_proj.weight", L, []int{D, H}}, // w2
		{"model.layers.%d.mlp.up_proj.weight", L, []int{H, D}},   // w3
		{"model.norm.weight", 0, []int{D}},
		{"", 0, []int{2, c.SeqLen, c.HeadDim() / 2}}, // freq_cis_real, freq_cis_imag: unused
	}
	if !c.Tied {
		specs = append(specs, spec{"lm_head.weight", 0, []int{c.Vocab, D}})
	}
	return specs
}

// decode converts a block's bytes into its tensors.
func (s spec) decode(b []byte) []Tensor {
	vals := make([]float32, len(b)/4)
	for i := range vals {
		vals[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	if s.perLayer == 0 {
		return []Tensor{{Name: s.name, Shape: s.shape, Data: vals}}
	}
	per := len(vals) / s.perLayer
	out := make([]Tensor, s.perLayer)
	for l := range out {
		out[l] = Tensor{
			Name:  fmt.Sprintf(s.name, l),
			Shape: append([]int(nil), s.shape...),
			Data:  vals[l*per : (l+1)*per : (l+1)*per],
		}
	}
	return out
}
