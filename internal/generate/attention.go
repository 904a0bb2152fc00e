package generate

import (
	"math"

	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/par"
)

// kBlock is the k-block of the gemm package's SIMD kernels: the
// probability-weighted sum of values restarts its accumulator every kBlock
// positions, as a GEMM over the positions does.
const kBlock = 256

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
// its sequence's cache, never on the rest of the batch.
//
// The arithmetic follows a GEMM-based attention (one FMA chain per score
// over D with the 1/√D scale applied after it, a softmax of tensor.Expf
// terms summed in order, one chain per output over positions in k-blocks
// of 256), so cached decoding rounds like a full recompute up to the
// kernels package tensor and gemm pick by shape (their small-m dot path
// and vectorised exponential sum in other orders): ~1e-7 relative.
func (c *PagedCache) Attend(layer int, b *model.Batch, q, out []float32) {
	rows := c.rows(b)
	maxPos := 0
	for _, sp := range b.Seqs {
		maxPos = max(maxPos, sp.Start+sp.Len-1)
	}
	h, d := c.shape.Heads, c.shape.HeadDim
	par.For(len(rows)*h, 8, func(lo, hi int) {
		// Scores get slack: the last, partial block or the last group of
		// strips is computed at full SIMD width and the extra lanes ignored.
		scores := make([]float32, maxPos+1+max(c.blockSize, 64))
		sc := attnScratch{scores: scores, probs: make([]float32, len(scores)), acc: make([]float32, d)}
		for task := lo; task < hi; task++ {
			r, head := task/h, task%h
			off := (r*h + head) * d
			c.attendOne(layer, rows[r], head, q[off:off+d], out[off:off+d], &sc)
		}
	})
}

// attnScratch is one worker's scratch space.
type attnScratch struct {
	scores, probs []float32 // positions + slack
	acc           []float32 // [D]
}

// attendOne computes one head of one row: o = softmax(q·Kᵀ/√D)·V over the
// row's positions 0…pos.
func (c *PagedCache) attendOne(layer int, r attnRow, head int, q, o []float32, sc *attnScratch) {
	scores, acc := sc.scores, sc.acc
	d, bs, hkv := c.shape.HeadDim, c.blockSize, c.shape.KVHeads
	kh := head / (c.shape.Heads / hkv)
	per := d * bs
	n := r.pos + 1
	if !c.scoresByStrips(layer, r, kh, q, scores) {
		for bi := 0; bi*bs < n; bi++ {
			w := c.scoreWidth(min(bs, n-bi*bs))
			seg := scores[bi*bs : bi*bs+w]
			clear(seg)
			vecMat(seg, q, c.k[layer].block(r.table[bi])[kh*per:], d, w, bs) // K block is [D, BlockSize]
		}
	}
	raw := scores[:n]
	scale := float32(1 / math.Sqrt(float64(d)))
	for j := range raw {
		raw[j] *= scale
	}
	s := sc.probs[:n]
	softmax(s, raw)
	// o = Σ_j s_j·V_j, one chain per k-block of positions, blocks added up.
	clear(o)
	for k0 := 0; k0 < n; k0 += kBlock {
		dst := o
		if k0 > 0 {
			dst = acc
			clear(dst)
		}
		for j := k0; j < min(n, k0+kBlock); {
			bi, off := j/bs, j%bs
			cnt := min(bs-off, n-j, k0+kBlock-j)
			vb := c.v[layer].block(r.table[bi])[kh*per+off*d:]
			vecMat(dst, s[j:j+cnt], vb, cnt, d, d) // V block is [BlockSize, D]
			j += cnt
		}
		if k0 > 0 {
			for x := range o {
				o[x] = acc[x] + o[x]
			}
		}
	}
}

// scoresByStrips computes the raw scores q·k_j of every position j ≤ pos
// sixteen positions (a strip of a block) at a time, four strips per pass.
// Strips past the end compute garbage into the slack of scores. It needs
// blocks of a multiple of 16 tokens and the SIMD kernel.
func (c *PagedCache) scoresByStrips(layer int, r attnRow, kh int, q, scores []float32) bool {
	d, bs := c.shape.HeadDim, c.blockSize
	if bs%16 != 0 || !haveFMA {
		return false
	}
	per := d * bs
	strips := r.pos/16 + 1
	var xs [4][]float32
	for s0 := 0; s0 < strips; s0 += 4 {
		for i := range xs {
			s := min(s0+i, strips-1) // past the end: recompute the last strip
			blk, col := s*16/bs, s*16%bs
			xs[i] = c.k[layer].block(r.table[blk])[kh*per+col:]
		}
		vecMatStrips(scores[s0*16:s0*16+64], q, &xs, d, bs)
	}
	return true
}

// scoreWidth is how many score columns to compute for a block holding
// cnt positions: rounded up to the SIMD width when the block has room.
func (c *PagedCache) scoreWidth(cnt int) int {
	if w := (cnt + 7) &^ 7; haveFMA && w <= c.blockSize {
		return w
	}
	return cnt
}

// softmax writes p = softmax(z) with the arithmetic of tensor's
// softmaxRow (tensor.Expf of z − max, summed in order, times 1/sum).
func softmax(p, z []float32) {
	m := z[0]
	for _, v := range z {
		m = max(m, v)
	}
	expShift(p, z, m)
	var sum float32
	for _, e := range p {
		sum += e
	}
	inv := 1 / sum
	for j := range p {
		p[j] *= inv
	}
}
