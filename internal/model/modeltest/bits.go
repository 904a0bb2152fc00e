package modeltest

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/nn"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// Setup is one way of running a model, e.g. with or without gradient
// checkpointing: Apply puts the model in that state.
type Setup struct {
	Name  string
	Apply func()
	// Pooled runs the pass on one pooled tape (tensor.NewPooledTape) that
	// poisons recycled buffers with NaN and is recycled before each
	// micro-batch, so every micro-batch after the first runs in the
	// memory of the one before.
	Pooled bool
}

// Pass is one micro-batch's forward pass: the output that matters (logits,
// values) and the scalar loss built from it.
type Pass func(tp *tensor.Tape, mb int) (out, loss *tensor.Tensor)

// CheckSameBits runs a training pass under each setup — microBatches
// forward and backward passes on one tape, gradients accumulated from
// zero — and fails unless every setup gives the very bits of the first:
// each micro-batch's output and loss, and every gradient of ps. Under
// each setup it also requires the inference output (nil tape) to have the
// bits of the recorded one, so no kernel takes another path when it
// records.
func CheckSameBits(t *testing.T, ps nn.Params, microBatches int, pass Pass, setups ...Setup) {
	t.Helper()
	var want [][]float32
	for i, s := range setups {
		s.Apply()
		got := trainPass(ps, microBatches, pass, s.Pooled)
		if inf, _ := pass(nil, 0); !bitsEqual(inf.Data, got[0]) {
			t.Errorf("%s: the inference output differs from the recorded one", s.Name)
		}
		if i == 0 {
			for k, p := range ps {
				if got[2*microBatches+k] == nil {
					t.Fatalf("%s: parameter %s got no gradient", s.Name, p.Name)
				}
			}
			want = got
			continue
		}
		for k := range want {
			if !bitsEqual(got[k], want[k]) {
				t.Errorf("%s: %s differs from %s", s.Name, resultName(ps, microBatches, k), setups[0].Name)
			}
		}
	}
}

// trainPass returns, in order, each micro-batch's output and loss, then
// every parameter's gradient.
func trainPass(ps nn.Params, microBatches int, pass Pass, pooled bool) [][]float32 {
	for _, p := range ps {
		p.Tensor.Grad = nil
	}
	var got [][]float32
	tp := tensor.NewTape()
	if pooled {
		tp = tensor.NewPooledTape()
		tp.PoisonRecycled()
	}
	for mb := 0; mb < microBatches; mb++ {
		tp.Recycle()
		out, loss := pass(tp, mb)
		got = append(got, slices.Clone(out.Data), slices.Clone(loss.Data))
		tp.Backward(loss)
	}
	for _, p := range ps {
		got = append(got, slices.Clone(p.Tensor.Grad))
	}
	return got
}

func resultName(ps nn.Params, microBatches, k int) string {
	if k < 2*microBatches {
		return [...]string{"output", "loss"}[k%2] + " of micro-batch " + string(rune('0'+k/2))
	}
	return "gradient of " + ps[k-2*microBatches].Name
}

func bitsEqual(a, b []float32) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// RandomBatch draws two micro-batches of token ids [B·T] from r and their
// targets (about one in five ignored, −100), and positions [B·T]: 0…T−1 in
// each row, or, packed, two samples per row with positions restarting and
// segment ids seg [B·T] telling them apart (nil when not packed).
func RandomBatch(r *rand.Rand, vocab, b, t int, packed bool) (ids, targets [2][]int32, pos, seg []int32) {
	for mb := range 2 {
		for range b * t {
			ids[mb] = append(ids[mb], int32(r.IntN(vocab)))
			tg := int32(r.IntN(vocab))
			if r.IntN(5) == 0 {
				tg = -100
			}
			targets[mb] = append(targets[mb], tg)
		}
	}
	for range b {
		for i := range t {
			p, s := i, 0
			if packed && i >= t/3 {
				p, s = i-t/3, 1
			}
			pos, seg = append(pos, int32(p)), append(seg, int32(s))
		}
	}
	if !packed {
		seg = nil
	}
	return ids, targets, pos, seg
}
