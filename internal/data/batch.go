package data

import "fmt"

// IgnoreIndex marks a position with no training target (PyTorch's
// ignore_index).
const IgnoreIndex = -100

// Span is where one sample sits in a batch: row Row, tokens
// [Start, Start+Len) of that row.
type Span struct{ Row, Start, Len int }

// Flat returns the index in the [B·T] layout of token j of the span.
func (s Span) Flat(t, j int) int { return s.Row*t + s.Start + j }

// Last returns the flat index of the span's last token.
func (s Span) Last(t int) int { return s.Flat(t, s.Len-1) }

// Batch is samples laid out as B rows of T tokens, ready for a model's
// Forward(ids, pos, seg, B, T). Padded batches hold one sample per row;
// packed batches hold several per row, isolated from each other by Seg
// (attention never crosses segments) and with positions restarting at 0
// for every sample, so each sample is computed exactly as if alone.
type Batch struct {
	B, T int
	IDs  []int32 // [B·T] token ids; padding holds PadID
	Pos  []int32 // [B·T] position of each token within its sample
	// Seg is [B·T] segment ids for packed batches (padding gets −1), nil
	// for padded batches, where right padding needs no mask under causal
	// attention.
	Seg []int32
	// Targets[n] is the token the model is scored on predicting at n (the
	// next token of the same sample, when that one is a loss token), else
	// IgnoreIndex.
	Targets []int32
	Spans   []Span // one per sample, in input order
}

// LossTokens counts positions with a target.
func (b *Batch) LossTokens() int {
	n := 0
	for _, t := range b.Targets {
		if t != IgnoreIndex {
			n++
		}
	}
	return n
}

// Pad lays out one sample per row, right-padded with padID to the longest.
func Pad(samples []Sample, padID int32) *Batch {
	t := 0
	for _, s := range samples {
		t = max(t, s.Len())
	}
	b := newBatch(len(samples), t, padID, false)
	for i, s := range samples {
		b.place(s, Span{Row: i, Start: 0, Len: s.Len()}, 0)
	}
	return b
}

// Pack lays samples out greedily in input order: each goes into the first
// row with room left (first fit), rows hold at most rowLen tokens, and T is
// the longest row. A sample longer than rowLen is a programmer error (the
// encoder truncates to max_len).
func Pack(samples []Sample, rowLen int, padID int32) *Batch {
	return PackAligned(samples, rowLen, 1, padID)
}

// PackAligned is Pack with every sample starting at a multiple of align
// tokens in its row (padding between samples fills the gap; a sample fits
// a row when its aligned start plus its length is at most rowLen). Aligned
// starts line a packed sample up with the vector lanes and blocks of the
// CPU kernels as the start of a padded row does, so that it rounds the
// same way (package role/inproc). Pack is PackAligned with align 1.
func PackAligned(samples []Sample, rowLen, align int, padID int32) *Batch {
	if align < 1 {
		panic(fmt.Sprintf("data: PackAligned: alignment %d < 1", align))
	}
	var used []int // tokens used per row, up to the end of its last sample
	spans := make([]Span, len(samples))
	for i, s := range samples {
		if s.Len() > rowLen {
			panic(fmt.Sprintf("data: Pack: sample of %d tokens exceeds the row length %d", s.Len(), rowLen))
		}
		row, start := -1, 0
		for r, u := range used {
			if start = roundUp(u, align); start+s.Len() <= rowLen {
				row = r
				break
			}
		}
		if row < 0 {
			row, start = len(used), 0
			used = append(used, 0)
		}
		spans[i] = Span{Row: row, Start: start, Len: s.Len()}
		used[row] = start + s.Len()
	}
	t := 0
	for _, u := range used {
		t = max(t, u)
	}
	b := newBatch(len(used), t, padID, true)
	for i, s := range samples {
		b.place(s, spans[i], int32(i))
	}
	return b
}

// roundUp is n rounded up to a multiple of m.
func roundUp(n, m int) int { return (n + m - 1) / m * m }

// newBatch allocates an all-padding batch.
func newBatch(rows, t int, padID int32, packed bool) *Batch {
	n := rows * t
	b := &Batch{B: rows, T: t, IDs: make([]int32, n), Pos: make([]int32, n), Targets: make([]int32, n)}
	if packed {
		b.Seg = make([]int32, n)
	}
	for i := range b.IDs {
		b.IDs[i], b.Targets[i] = padID, IgnoreIndex
		b.Pos[i] = int32(i % max(t, 1))
		if packed {
			b.Seg[i] = -1
		}
	}
	return b
}

// place writes sample s at span sp with segment id seg.
func (b *Batch) place(s Sample, sp Span, seg int32) {
	for j := 0; j < sp.Len; j++ {
		n := sp.Flat(b.T, j)
		b.IDs[n], b.Pos[n] = s.IDs[j], int32(j)
		if b.Seg != nil {
			b.Seg[n] = seg
		}
		if j+1 < sp.Len && s.Loss[j+1] {
			b.Targets[n] = s.IDs[j+1]
		}
	}
	b.Spans = append(b.Spans, sp)
}

// Collate lays samples out packed into rows of rowLen tokens (packed) or
// one per row with padding.
func Collate(samples []Sample, packed bool, rowLen int, padID int32) *Batch {
	if packed {
		return Pack(samples, rowLen, padID)
	}
	return Pad(samples, padID)
}

// Select returns the samples at idx.
func Select(samples []Sample, idx []int) []Sample {
	out := make([]Sample, len(idx))
	for i, j := range idx {
		out[i] = samples[j]
	}
	return out
}
