package llama2c

import (
	"fmt"
	"math"
)

// miniModel is a deliberately plain float32 Llama forward pass, one token at
// a time with a KV cache, used only to check that parsed weights behave.
type miniModel struct {
	c      Config
	w      map[string][]float32
	rope   func([]float32, int)
	kCache [][][]float32 // [layer][pos][kvDim]
	vCache [][][]float32
}

func newMiniModel(ck *Checkpoint, rope func([]float32, int)) *miniModel {
	m := &miniModel{c: ck.Config, w: map[string][]float32{}, rope: rope}
	for _, t := range ck.Tensors {
		m.w[t.Name] = t.Data
	}
	m.kCache = make([][][]float32, m.c.Layers)
	m.vCache = make([][][]float32, m.c.Layers)
	return m
}

func (m *miniModel) layer(l int, kind string) []float32 {
	return m.w[fmt.Sprintf("model.layers.%d.%s.weight", l, kind)]
}

func rmsNorm(x, w []float32) []float32 {
	var ss float32
	for _, v := range x {
		ss += v * v
	}
	inv := 1 / float32(math.Sqrt(float64(ss/float32(len(x))+RMSNormEps)))
	out := make([]float32, len(x))
	for i := range x {
		out[i] = w[i] * (inv * x[i])
	}
	return out
}

func (m *miniModel) forward(tok, pos int) []float32 {
	c := m.c
	hd := c.HeadDim()
	x := append([]float32(nil), m.w["model.embed_tokens.weight"][tok*c.Dim:(tok+1)*c.Dim]...)
	for l := range c.Layers {
		xb := rmsNorm(x, m.layer(l, "input_layernorm"))
		q := matVec(m.layer(l, "self_attn.q_proj"), xb)
		k := matVec(m.layer(l, "self_attn.k_proj"), xb)
		v := matVec(m.layer(l, "self_attn.v_proj"), xb)
		for h := range c.Heads {
			m.rope(q[h*hd:(h+1)*hd], pos)
		}
		for h := range c.KVHeads {
			m.rope(k[h*hd:(h+1)*hd], pos)
		}
		m.kCache[l] = append(m.kCache[l], k)
		m.vCache[l] = append(m.vCache[l], v)
		att := m.attention(l, q)
		x = add(x, matVec(m.layer(l, "self_attn.o_proj"), att))
		xb = rmsNorm(x, m.layer(l, "post_attention_layernorm"))
		gate := matVec(m.layer(l, "mlp.gate_proj"), xb)
		up := matVec(m.layer(l, "mlp.up_proj"), xb)
		for i, g := range gate {
			gate[i] = g / (1 + float32(math.Exp(float64(-g)))) * up[i]
		}
		x = add(x, matVec(m.layer(l, "mlp.down_proj"), gate))
	}
	x = rmsNorm(x, m.w["model.norm.weight"])
	cls := m.w["model.embed_tokens.weight"]
	if w, ok := m.w["lm_head.weight"]; ok {
		cls = w
	}
	return matVec(cls, x)
}

// attention is causal softmax attention of one query over the cache, with
// query heads sharing key/value heads in groups (GQA).
func (m *miniModel) attention(l int, q []float32) []float32 {
	c := m.c
	hd := c.HeadDim()
	out := make([]float32, c.Dim)
	n := len(m.kCache[l])
	scores := make([]float32, n)
	for h := range c.Heads {
		kvh := h / (c.Heads / c.KVHeads)
		qh := q[h*hd : (h+1)*hd]
		maxS := float32(math.Inf(-1))
		for t := range n {
			scores[t] = dot(qh, m.kCache[l][t][kvh*hd:(kvh+1)*hd]) / float32(math.Sqrt(float64(hd)))
			maxS = max(maxS, scores[t])
		}
		var sum float32
		for t := range n {
			scores[t] = float32(math.Exp(float64(scores[t] - maxS)))
			sum += scores[t]
		}
		for t := range n {
			vh := m.vCache[l][t][kvh*hd : (kvh+1)*hd]
			for i := range hd {
				out[h*hd+i] += scores[t] / sum * vh[i]
			}
		}
	}
	return out
}

func add(a, b []float32) []float32 {
	for i := range a {
		a[i] += b[i]
	}
	return a
}
