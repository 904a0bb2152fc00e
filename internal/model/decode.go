package model

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Decoder is a CausalLM that can also run incrementally over a KV cache:
// each Step feeds only the new tokens of several sequences (a ragged batch)
// and reads the keys and values of earlier tokens from the cache. The
// rollout engine (package generate) drives it; the full-sequence Forward
// stays the training path and the reference Step is tested against.
//
// Step runs every projection and MLP as one GEMM over all new rows of all
// sequences; only attention is per sequence, and it is the cache's job, so
// a paged cache, a flat one, or a device cache can each lay out memory the
// way their attention kernel wants.
type Decoder interface {
	CausalLM
	// KVShape says what the cache must hold per token.
	KVShape() KVShape
	// Step feeds the batch's new tokens, stores their keys and values in kv
	// and returns the logits [len(b.Logits), V] of the rows b.Logits names.
	// Bad token ids or positions are programmer errors and panic: the
	// engine validates requests first. Step only reads the weights, so it
	// may run concurrently with other Steps on other caches, but not with
	// a weight update.
	Step(b *Batch, kv KVCache) *tensor.Tensor
}

// KVShape is the per-token, per-layer geometry of a model's KV cache.
type KVShape struct {
	Layers  int // L
	KVHeads int // Hkv
	HeadDim int // D
	Heads   int // H query heads (a multiple of Hkv)
	// MaxPositions is the longest sequence the model can encode (learned
	// position tables); 0 means no limit (rotary positions).
	MaxPositions int
}

// RowFloats is the number of floats of one token's keys (or values) in one
// layer: Hkv·D.
func (s KVShape) RowFloats() int { return s.KVHeads * s.HeadDim }

// Batch is one decoding step over several sequences. Rows are the new
// tokens of every sequence, back to back in the order of Seqs; a sequence
// in prefill brings a chunk of its prompt, one in decode its last sampled
// token.
type Batch struct {
	Tokens []int32   // [N] new token ids
	Seqs   []SeqSpan // which rows belong to which sequence, in row order
	// Logits lists the rows whose logits Step returns, in that order
	// (typically the last row of each sequence that will sample next).
	Logits []int
}

// SeqSpan is one sequence's part of a Batch.
type SeqSpan struct {
	ID    int // the cache's handle for the sequence
	Start int // absolute position of the first new token (tokens already cached)
	Len   int // number of new tokens, ≥ 1
}

// Positions returns the absolute position of every row: [N].
func (b *Batch) Positions() []int32 {
	pos := make([]int32, 0, len(b.Tokens))
	for _, s := range b.Seqs {
		for i := 0; i < s.Len; i++ {
			pos = append(pos, int32(s.Start+i))
		}
	}
	return pos
}

// Check panics unless the spans exactly cover the tokens and the logit
// rows exist: a malformed batch is a bug in the caller.
func (b *Batch) Check() {
	n := 0
	for _, s := range b.Seqs {
		if s.Len < 1 || s.Start < 0 {
			panic(fmt.Sprintf("model: batch span %+v is empty or starts before 0", s))
		}
		n += s.Len
	}
	if n != len(b.Tokens) {
		panic(fmt.Sprintf("model: batch spans cover %d rows but there are %d tokens", n, len(b.Tokens)))
	}
	for _, r := range b.Logits {
		if r < 0 || r >= n {
			panic(fmt.Sprintf("model: logit row %d outside the batch's %d rows", r, n))
		}
	}
}

// KVCache stores keys and values per sequence and runs attention over them.
//
// For each layer a Decoder first calls Store with the new rows' keys and
// values, then Attend with their queries; the new rows therefore see
// themselves and every earlier position of their sequence (causal
// attention). Implementations decide the memory layout and must return
// the same numbers as softmax(q·kᵀ/√D)·v over positions 0…p for the row at
// position p, with grouped-query heads (query head h reads KV head
// h/(H/Hkv)). They are used by one Step at a time.
type KVCache interface {
	// Store saves k and v [N, Hkv·D] (rows in batch order) for layer.
	Store(layer int, b *Batch, k, v []float32)
	// Attend writes the attention output [N, H·D] of queries q [N, H·D].
	Attend(layer int, b *Batch, q, out []float32)
}

// FlatCache is the simplest KVCache: each sequence's keys and values in
// one growing slice per layer, and attention as plain loops. It is the
// reference the paged cache of package generate is tested against, and
// enough for tests and one-off scoring. Not safe for concurrent use.
type FlatCache struct {
	shape KVShape
	seqs  map[int]*flatSeq
}

type flatSeq struct{ k, v [][]float32 } // per layer: [T, Hkv·D]

// NewFlatCache returns an empty cache for a model with the given shape.
func NewFlatCache(s KVShape) *FlatCache { return &FlatCache{shape: s, seqs: map[int]*flatSeq{}} }

// Len returns how many positions of sequence id are cached.
func (c *FlatCache) Len(id int) int {
	s := c.seqs[id]
	if s == nil || len(s.k) == 0 {
		return 0
	}
	return len(s.k[c.shape.Layers-1]) / c.shape.RowFloats()
}

// Drop forgets sequence id.
func (c *FlatCache) Drop(id int) { delete(c.seqs, id) }

// Store implements KVCache. A span may start before the cached length
// (re-feeding a suffix overwrites it) but not after it.
func (c *FlatCache) Store(layer int, b *Batch, k, v []float32) {
	rf, row := c.shape.RowFloats(), 0
	for _, sp := range b.Seqs {
		s := c.seqs[sp.ID]
		if s == nil {
			s = &flatSeq{k: make([][]float32, c.shape.Layers), v: make([][]float32, c.shape.Layers)}
			c.seqs[sp.ID] = s
		}
		if have := len(s.k[layer]) / rf; sp.Start > have {
			panic(fmt.Sprintf("model: FlatCache: sequence %d starts at %d but has %d positions", sp.ID, sp.Start, have))
		}
		s.k[layer] = append(s.k[layer][:sp.Start*rf], k[row*rf:(row+sp.Len)*rf]...)
		s.v[layer] = append(s.v[layer][:sp.Start*rf], v[row*rf:(row+sp.Len)*rf]...)
		row += sp.Len
	}
}

// Attend implements KVCache with straightforward loops.
func (c *FlatCache) Attend(layer int, b *Batch, q, out []float32) {
	sh := c.shape
	hd, kd, d := sh.Heads*sh.HeadDim, sh.RowFloats(), sh.HeadDim
	group := sh.Heads / sh.KVHeads
	scale := float32(1 / math.Sqrt(float64(d)))
	row := 0
	for _, sp := range b.Seqs {
		s := c.seqs[sp.ID]
		for i := 0; i < sp.Len; i++ {
			n := sp.Start + i + 1 // visible positions
			for h := 0; h < sh.Heads; h++ {
				kh := h / group
				qh := q[(row+i)*hd+h*d : (row+i)*hd+(h+1)*d]
				p := make([]float32, n)
				for j := range p {
					p[j] = scale * dot(qh, s.k[layer][j*kd+kh*d:j*kd+(kh+1)*d])
				}
				softmax(p)
				o := out[(row+i)*hd+h*d : (row+i)*hd+(h+1)*d]
				clear(o)
				for j, pj := range p {
					vj := s.v[layer][j*kd+kh*d : j*kd+(kh+1)*d]
					for x := range o {
						o[x] += pj * vj[x]
					}
				}
			}
		}
		row += sp.Len
	}
}

func dot(a, b []float32) float32 {
	var s float32
	for i, x := range a {
		s += x * b[i]
	}
	return s
}

// softmax replaces p with softmax(p).
func softmax(p []float32) {
	m := p[0]
	for _, v := range p {
		m = max(m, v)
	}
	var s float32
	for j, v := range p {
		p[j] = tensor.Expf(v - m)
		s += p[j]
	}
	for j := range p {
		p[j] /= s
	}
}

var _ KVCache = (*FlatCache)(nil)
