package generate

import (
	"math"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/par"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// attnRow is one batch row as attention sees it: its sequence's block
// table and its absolute position.
type attnRow struct {
	table []int32
	pos   int
}

// Attend implements model.KVCache. Every (row, query head) pair is an
// independent task, split across threads: scores against the sequence's
// keys block by block, a softmax, then the probability-weighted sum of
// values block by block. A row's result depends only on its own query and
// its sequence's cache, never on the rest of the batch, which is what
// makes a request's output independent of what it is batched with.
func (c *PagedCache) Attend(layer int, b *model.Batch, q, out []float32) {
	rows := make([]attnRow, 0, len(b.Tokens))
	maxPos := 0
	for _, sp := range b.Seqs {
		t := c.table(sp.ID)
		for i := 0; i < sp.Len; i++ {
			rows = append(rows, attnRow{table: t, pos: sp.Start + i})
		}
		maxPos = max(maxPos, sp.Start+sp.Len-1)
	}
	h, d := c.shape.Heads, c.shape.HeadDim
	par.For(len(rows)*h, 8, func(lo, hi int) {
		scores := make([]float32, maxPos+1)
		qs := make([]float32, d)
		for task := lo; task < hi; task++ {
			r, head := task/h, task%h
			off := (r*h + head) * d
			c.attendOne(layer, rows[r], head, q[off:off+d], out[off:off+d], scores, qs)
		}
	})
}

// attendOne computes one head of one row: o = softmax(q·Kᵀ/√D)·V over the
// row's positions 0…pos.
func (c *PagedCache) attendOne(layer int, r attnRow, head int, q, o, scores, qs []float32) {
	d, bs, hkv := c.shape.HeadDim, c.blockSize, c.shape.KVHeads
	kh := head / (c.shape.Heads / hkv)
	scale := float32(1 / math.Sqrt(float64(d)))
	for x, v := range q {
		qs[x] = v * scale
	}
	n := r.pos + 1
	s := scores[:n]
	clear(s)
	per := d * bs
	for bi := 0; bi*bs < n; bi++ {
		cnt := min(bs, n-bi*bs)
		base := (int(r.table[bi])*hkv + kh) * per
		vecMat(s[bi*bs:], qs, c.k[layer][base:], d, cnt, bs) // K block is [D, BlockSize]
	}
	m := s[0]
	for _, v := range s {
		m = max(m, v)
	}
	var sum float32
	for j, v := range s {
		e := tensor.Expf(v - m)
		s[j] = e
		sum += e
	}
	clear(o)
	for bi := 0; bi*bs < n; bi++ {
		cnt := min(bs, n-bi*bs)
		base := (int(r.table[bi])*hkv + kh) * per
		vecMat(o, s[bi*bs:bi*bs+cnt], c.v[layer][base:], cnt, d, d) // V block is [BlockSize, D]
	}
	inv := 1 / sum
	for x := range o {
		o[x] *= inv
	}
}
