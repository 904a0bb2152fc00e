package inproc

import (
	"github.com/gorlhf/gorlhf/internal/model"
	"github.com/gorlhf/gorlhf/internal/role"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// layout is a right-padded [B, T] batch of prompt+response sequences and
// where the prediction of each response token sits in it.
type layout struct {
	b, t, a  int
	ids, pos []int32 // [B·T]; padding is token 0 (a causal model never looks ahead, so it changes nothing before it)
	// targets [B·T] is the next token at every position that predicts a
	// response token, −1 elsewhere (TokenLogProbs gives 0 there).
	targets []int32
	// gather [B·A] is the flat [B·T] index of the position that predicts
	// response token j of row i; past a row's end it points at the row's
	// last position, whose target is always −1.
	gather []int
	lens   []int // response lengths
}

func newLayout(s role.Sequences) layout {
	l := layout{b: s.Len(), a: s.Width(), lens: s.ResponseLens()}
	for _, toks := range s.Tokens {
		l.t = max(l.t, len(toks))
	}
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

// actions picks the response positions [B, A] out of a per-position
// tensor [B, T]; gradients flow back through the gather.
func (l layout) actions(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	flat := tensor.Reshape(tp, x, l.b*l.t, 1)
	return tensor.Reshape(tp, tensor.GatherRows(tp, flat, l.gather), l.b, l.a)
}

// logProbs returns log π(response token | prefix) [B, A] and the logits
// [B, T, V] they came from.
func (l layout) logProbs(tp *tensor.Tape, m model.CausalLM) (lp, logits *tensor.Tensor) {
	logits = m.Forward(tp, l.ids, l.pos, nil, l.b, l.t)
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
// m, in chunks of size sequences, without a tape.
func forwardLogProbs(m model.CausalLM, s role.Sequences, size int) (role.PerToken, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	out := make(role.PerToken, 0, s.Len())
	err := chunks(s, size, func(c role.Sequences) error {
		l := newLayout(c)
		lp, _ := l.logProbs(nil, m)
		out = append(out, role.Unpad(lp, l.lens)...)
		return nil
	})
	return out, err
}
