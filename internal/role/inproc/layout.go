package inproc

import (
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// layout is a batch of B prompt+response sequences laid out for one
// forward pass as [rows, T] tokens, and where the prediction of each
// response token sits in it. Padded (newLayout): one sequence per row,
// right-padded to the longest. Packed (newPackedLayout): several per row,
// isolated by segment ids.
type layout struct {
	b, a     int     // sequences and the longest response: results are [B, A]
	rows, t  int     // the forward pass is [rows, T]
	ids, pos []int32 // [rows·T]; padding is token 0 (a causal model never looks ahead, so it changes nothing before it)
	seg      []int32 // [rows·T] segment ids of a packed layout (padding −1); nil when padded
	// targets [rows·T] is the next token at every position that predicts
	// a response token, negative elsewhere (TokenLogProbs gives 0 there).
	targets []int32
	// gather [B·A] is the flat [rows·T] index of the position that
	// predicts response token j of sequence i; past a response's end it
	// points at the sequence's last position, whose target is always
	// negative.
	gather []int
	lens   []int // response lengths
}

// layoutOf lays s out packed or padded.
func layoutOf(s role.Sequences, pack bool) layout {
	if pack {
		return newPackedLayout(s)
	}
	return newLayout(s)
}

// newLayout lays s out one sequence per row, right-padded to the longest.
func newLayout(s role.Sequences) layout {
	l := layout{b: s.Len(), a: s.Width(), lens: s.ResponseLens()}
	for _, toks := range s.Tokens {
		l.t = max(l.t, len(toks))
	}
	l.rows = l.b
	n := l.b * l.t
	l.ids, l.pos, l.targets = make([]int32, n), make([]int32, n), make([]int32, n)
	l.gather = make([]int, l.b*l.a)
	for i, toks := range s.Tokens {
		row := i * l.t
		copy(l.ids[row:], toks)
		for j := range l.t {
			l.pos[row+j], l.targets[row+j] = int32(j), -1
		}
		p := s.PromptLens[i]
		for j := range l.a {
			at := row + l.t - 1
			if j < l.lens[i] {
				at = row + p - 1 + j
				l.targets[at] = toks[p+j]
			}
			l.gather[i*l.a+j] = at
		}
	}
	return l
}

// PackAlign is where packed sequences may start in a row: at multiples of
// 32 tokens, the attention kernel's block of query rows and a multiple of
// the CPU kernels' vector width (8 or 16 floats). A sequence starting
// there meets the same lane alignment and query blocks as at the start of
// a padded row, so it rounds nearly the same way: with each of gorlhf's
// own GEMM kernels the gradients agree with the padded ones to ~3e-7
// relative per tensor, the noise of merely reordering the batch, against
// ~8e-7 at multiples of 16 and ~3e-6 at any offset, where every attention
// value differs by an ulp or two and five layers and a backward pass grow
// it (TestPacked_Gradients; a system BLAS blocks its own way: ~1.5e-6
// with OpenBLAS). The cost is at most 31 tokens of padding per sequence.
const PackAlign = 32

// newPackedLayout lays s out packed with data.PackAligned: in sequence
// order, each sequence goes into the first row with room left (first
// fit), starting at a multiple of PackAlign, and a row holds as many
// tokens as the longest sequence, so T is the padded layout's T and the
// rows are at most as many (the longest sequence fills a row by itself).
// Positions restart at 0 for every sequence and its segment id is its
// index, so attention never crosses sequences. When no two sequences
// share a row it is the padded layout: segment ids would only cost the
// attention kernel their checks.
func newPackedLayout(s role.Sequences) layout {
	l := layout{b: s.Len(), a: s.Width(), lens: s.ResponseLens()}
	samples := make([]data.Sample, l.b)
	rowLen := 0
	for i, toks := range s.Tokens {
		loss := make([]bool, len(toks)) // data.Pack's targets: the response tokens
		for j := s.PromptLens[i]; j < len(toks); j++ {
			loss[j] = true
		}
		samples[i] = data.Sample{IDs: toks, Loss: loss}
		rowLen = max(rowLen, len(toks))
	}
	pb := data.PackAligned(samples, rowLen, PackAlign, 0)
	if pb.B == l.b {
		return newLayout(s)
	}
	l.rows, l.t, l.ids, l.pos, l.seg, l.targets = pb.B, pb.T, pb.IDs, pb.Pos, pb.Seg, pb.Targets
	l.gather = make([]int, l.b*l.a)
	for i, sp := range pb.Spans {
		p := s.PromptLens[i]
		for j := range l.a {
			at := sp.Last(l.t)
			if j < l.lens[i] {
				at = sp.Flat(l.t, p-1+j)
			}
			l.gather[i*l.a+j] = at
		}
	}
	return l
}

// actions picks the response positions [B, A] out of a per-position
// tensor [rows, T]; gradients flow back through the gather.
func (l layout) actions(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	flat := tensor.Reshape(tp, x, l.rows*l.t, 1)
	return tensor.Reshape(tp, tensor.GatherRows(tp, flat, l.gather), l.b, l.a)
}

// logProbs returns log π(response token | prefix) [B, A] and the logits
// [rows, T, V] they came from.
func (l layout) logProbs(tp *tensor.Tape, m model.CausalLM) (lp, logits *tensor.Tensor) {
	logits = m.Forward(tp, l.ids, l.pos, l.seg, l.rows, l.t)
	return l.actions(tp, tensor.TokenLogProbs(tp, logits, l.targets)), logits
}

// chunks calls fn on consecutive slices of at most size sequences (all of
// them when size ≤ 0), in order.
func chunks(s role.Sequences, size int, fn func(role.Sequences) error) error {
	n := s.Len()
	if size <= 0 {
		size = max(n, 1)
	}
	for lo := 0; lo < n; lo += size {
		idx := make([]int, 0, size)
		for i := lo; i < min(lo+size, n); i++ {
			idx = append(idx, i)
		}
		if err := fn(s.Select(idx)); err != nil {
			return err
		}
	}
	return nil
}

// forwardLogProbs returns the per-token log-probs of every sequence under
// m, in chunks of size sequences (each packed when pack), without a tape.
func forwardLogProbs(m model.CausalLM, s role.Sequences, size int, pack bool) (role.PerToken, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := make(role.PerToken, 0, s.Len())
	err := chunks(s, size, func(c role.Sequences) error {
		l := layoutOf(c, pack)
		lp, _ := l.logProbs(nil, m)
		out = append(out, role.Unpad(lp, l.lens)...)
		return nil
	})
	return out, err
}
