package tensor_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// segBlock is a small transformer-like block: RMSNorm, Q/K/V projections,
// RoPE, grouped-query attention (optionally packed), an output projection
// with bias and a residual add. x is [B, T, C] with C = 8, 2 query heads
// sharing 1 KV head of D = 4.
type segBlock struct {
	norm, wq, wk, wv, wo, bo *tensor.Tensor
	rope                     *tensor.RoPE
	pos, seg                 []int32
}

func newSegBlock(t *testing.T, seed uint64, b, tokens int, packed bool) *segBlock {
	t.Helper()
	rope, err := tensor.NewRoPE(4, 10000, tensor.RotateHalf, nil)
	if err != nil {
		t.Fatal(err)
	}
	blk := &segBlock{
		norm: param(seed, 0.5, 1.5, 8), wq: param(seed+1, -0.5, 0.5, 8, 8), wk: param(seed+2, -0.5, 0.5, 4, 8),
		wv: param(seed+3, -0.5, 0.5, 4, 8), wo: param(seed+4, -0.5, 0.5, 8, 8), bo: param(seed+5, -0.1, 0.1, 8),
		rope: rope,
	}
	for r := 0; r < b; r++ {
		for i := 0; i < tokens; i++ {
			p, s := i, 0
			if packed && i >= tokens/2 { // two samples per row
				p, s = i-tokens/2, 1
			}
			blk.pos, blk.seg = append(blk.pos, int32(p)), append(blk.seg, int32(s))
		}
	}
	if !packed {
		blk.seg = nil
	}
	return blk
}

func (blk *segBlock) params() []*tensor.Tensor {
	return []*tensor.Tensor{blk.norm, blk.wq, blk.wk, blk.wv, blk.wo, blk.bo}
}

// f is the block's forward pass: it reads only x and the block's own
// parameters (and constant positions and segment ids).
func (blk *segBlock) f(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	h := tensor.RMSNorm(tp, x, blk.norm, 1e-5)
	q := tensor.ApplyRoPE(tp, tensor.Linear(tp, h, blk.wq, nil), blk.pos, blk.rope)
	k := tensor.ApplyRoPE(tp, tensor.Linear(tp, h, blk.wk, nil), blk.pos, blk.rope)
	v := tensor.Linear(tp, h, blk.wv, nil)
	a := tensor.Attention(tp, q, k, v, 2, 1, blk.seg)
	return tensor.Add(tp, x, tensor.Linear(tp, a, blk.wo, blk.bo))
}

// segRun is one configuration of the network around the blocks: how each
// block runs (directly, or through RunSegment with a Segment).
type segRun func(tp *tensor.Tape, layer int, x *tensor.Tensor, f func(*tensor.Tape, *tensor.Tensor) *tensor.Tensor) *tensor.Tensor

func direct(tp *tensor.Tape, _ int, x *tensor.Tensor, f func(*tensor.Tape, *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
	return f(tp, x)
}

func segmented(recompute bool) segRun {
	return func(tp *tensor.Tape, _ int, x *tensor.Tensor, f func(*tensor.Tape, *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
		return tensor.RunSegment(tp, x, tensor.Segment{Recompute: recompute}, f)
	}
}

// segNet holds the leaves of a two-block network with ops on the tape
// before the blocks (a scaled sum of two inputs), between them and after
// them (a residual that reads the first block's input outside any
// segment, a final norm and a token log-prob loss).
type segNet struct {
	x0, x1, lnW *tensor.Tensor
	blocks      []*segBlock
	targets     []int32
	proj        *tensor.Tensor // [C, V] read-out to V = 5 classes
}

func newSegNet(t *testing.T, b, tokens int, packed bool) *segNet {
	n := &segNet{
		x0: param(10, -1, 1, b, tokens, 8), x1: param(11, -1, 1, b, tokens, 8), lnW: param(12, 0.5, 1.5, 8),
		blocks: []*segBlock{newSegBlock(t, 20, b, tokens, packed), newSegBlock(t, 30, b, tokens, packed)},
		proj:   param(13, -0.5, 0.5, 5, 8),
	}
	for i := 0; i < b*tokens; i++ {
		n.targets = append(n.targets, int32(i*7%5))
	}
	n.targets[1] = -100 // an ignored position
	return n
}

func (n *segNet) leaves() []*tensor.Tensor {
	ls := []*tensor.Tensor{n.x0, n.x1, n.lnW, n.proj}
	for _, b := range n.blocks {
		ls = append(ls, b.params()...)
	}
	return ls
}

// loss runs micro-batch mb (which scales the inputs differently) through
// the network; it returns the scalar loss and the last block's output.
func (n *segNet) loss(tp *tensor.Tape, run segRun, mb int) (loss, y *tensor.Tensor) {
	x := tensor.Add(tp, tensor.Scale(tp, n.x0, float32(mb+1)), tensor.Scale(tp, n.x1, 0.5)) // before
	y = run(tp, 0, x, n.blocks[0].f)
	y = tensor.Scale(tp, y, 0.75) // between
	y = run(tp, 1, y, n.blocks[1].f)
	out := tensor.Add(tp, y, x) // after, reading x outside the segments
	logits := tensor.Linear(tp, tensor.RMSNorm(tp, out, n.lnW, 1e-5), n.proj, nil)
	lp := tensor.TokenLogProbs(tp, logits, n.targets)
	return tensor.Scale(tp, tensor.Sum(tp, lp), -1), y
}

// train runs micro-batches forward and backward on one tape, accumulating
// gradients, and returns the bits of every loss, block output and
// gradient, in order.
func (n *segNet) train(run segRun, microBatches int) [][]float32 {
	for _, l := range n.leaves() {
		l.Grad = nil
	}
	var got [][]float32
	tp := tensor.NewTape()
	for mb := 0; mb < microBatches; mb++ {
		loss, y := n.loss(tp, run, mb)
		got = append(got, slices.Clone(loss.Data), slices.Clone(y.Data))
		tp.Backward(loss)
	}
	for _, l := range n.leaves() {
		got = append(got, slices.Clone(l.Grad))
	}
	return got
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// TestRunSegment_BitIdentical: running the blocks through RunSegment, with
// activations kept or recomputed, gives the very bits of running them
// directly — losses, block outputs and every gradient (parameters and the
// leaves before the blocks), over one and two accumulated micro-batches,
// plain and packed.
func TestRunSegment_BitIdentical(t *testing.T) {
	for _, packed := range []bool{false, true} {
		for _, mbs := range []int{1, 2} {
			net := newSegNet(t, 2, 6, packed)
			want := net.train(direct, mbs)
			for _, recompute := range []bool{false, true} {
				t.Run(fmt.Sprintf("packed=%v/microbatches=%d/recompute=%v", packed, mbs, recompute), func(t *testing.T) {
					got := net.train(segmented(recompute), mbs)
					if len(got) != len(want) {
						t.Fatalf("%d results, want %d", len(got), len(want))
					}
					for i := range want {
						if want[i] == nil || !sameBits(got[i], want[i]) {
							t.Fatalf("result %d differs (or is missing): %v vs %v", i, head(got[i]), head(want[i]))
						}
					}
				})
			}
		}
	}
}

func head(x []float32) []float32 { return x[:min(len(x), 4)] }

// TestRunSegment_RecordingTapeKernels: the forward output of a block is the
// same bits in inference mode (nil tape), on a recording tape, and through
// RunSegment in either mode, so no kernel picks another path when it
// records (which would make the recomputation differ from the first pass).
func TestRunSegment_RecordingTapeKernels(t *testing.T) {
	for _, packed := range []bool{false, true} {
		blk := newSegBlock(t, 40, 2, 6, packed)
		x := param(41, -1, 1, 2, 6, 8)
		want := blk.f(nil, x).Data
		if got := blk.f(tensor.NewTape(), x).Data; !sameBits(got, want) {
			t.Fatalf("packed=%v: recorded forward differs from inference", packed)
		}
		for _, recompute := range []bool{false, true} {
			if got := tensor.RunSegment(tensor.NewTape(), x, tensor.Segment{Recompute: recompute}, blk.f).Data; !sameBits(got, want) {
				t.Fatalf("packed=%v recompute=%v: segment forward differs from inference", packed, recompute)
			}
			if got := tensor.RunSegment(nil, x, tensor.Segment{Recompute: recompute}, blk.f).Data; !sameBits(got, want) {
				t.Fatalf("packed=%v recompute=%v: nil-tape segment forward differs from inference", packed, recompute)
			}
		}
	}
}

// TestRunSegment_HookOrder: the hooks of two segments run in the
// documented order, once each per forward and backward pass: forward
// hooks around each forward, BeforeBackward once the later ops' gradients
// have reached the segment's output and before any of its parameters has
// a gradient, AfterBackward once all of them are final and before the
// earlier ops' backward steps ran. A nil tape runs the forward hooks only.
func TestRunSegment_HookOrder(t *testing.T) {
	for _, recompute := range []bool{false, true} {
		t.Run(fmt.Sprintf("recompute=%v", recompute), func(t *testing.T) {
			net := newSegNet(t, 1, 6, false)
			want := net.train(direct, 1)
			wantGrad := map[*tensor.Tensor][]float32{}
			for i, l := range net.leaves() {
				wantGrad[l] = want[2+i]
			}
			for _, l := range net.leaves() {
				l.Grad = nil
			}
			var events []string
			var outs [2]*tensor.Tensor
			hooks := func(layer int) tensor.Segment {
				blk := net.blocks[layer]
				ev := func(name string, check func()) func() {
					return func() {
						events = append(events, fmt.Sprintf("%s%d", name, layer))
						if check != nil {
							check()
						}
					}
				}
				return tensor.Segment{
					Recompute:     recompute,
					BeforeForward: ev("BF", nil),
					AfterForward:  ev("AF", nil),
					BeforeBackward: ev("BB", func() {
						if outs[layer] == nil || outs[layer].Grad == nil || !slices.ContainsFunc(outs[layer].Grad, func(g float32) bool { return g != 0 }) {
							t.Errorf("BeforeBackward %d: the segment's output has no gradient yet", layer)
						}
						for _, p := range blk.params() {
							if p.Grad != nil {
								t.Errorf("BeforeBackward %d: parameter %v already has a gradient", layer, p.Shape)
							}
						}
					}),
					AfterBackward: ev("AB", func() {
						for _, p := range blk.params() {
							if !sameBits(p.Grad, wantGrad[p]) {
								t.Errorf("AfterBackward %d: parameter %v gradient is not final", layer, p.Shape)
							}
						}
						if net.x0.Grad != nil {
							t.Errorf("AfterBackward %d: the ops before the segments already ran backward", layer)
						}
					}),
				}
			}
			run := func(tp *tensor.Tape, layer int, x *tensor.Tensor, f func(*tensor.Tape, *tensor.Tensor) *tensor.Tensor) *tensor.Tensor {
				outs[layer] = tensor.RunSegment(tp, x, hooks(layer), f)
				return outs[layer]
			}
			tp := tensor.NewTape()
			loss, _ := net.loss(tp, run, 0)
			if w := []string{"BF0", "AF0", "BF1", "AF1"}; !slices.Equal(events, w) {
				t.Fatalf("after forward: hooks %v, want %v", events, w)
			}
			tp.Backward(loss)
			if w := []string{"BF0", "AF0", "BF1", "AF1", "BB1", "AB1", "BB0", "AB0"}; !slices.Equal(events, w) {
				t.Fatalf("after backward: hooks %v, want %v", events, w)
			}
			if !sameBits(net.x0.Grad, wantGrad[net.x0]) {
				t.Fatal("x0 gradient differs from the direct run")
			}

			events = nil
			net.loss(nil, run, 0)
			if w := []string{"BF0", "AF0", "BF1", "AF1"}; !slices.Equal(events, w) {
				t.Fatalf("nil tape: hooks %v, want %v", events, w)
			}
		})
	}
}

// TestRunSegment_NoGradient: with nothing requiring a gradient a
// recomputed segment records nothing on the tape.
func TestRunSegment_NoGradient(t *testing.T) {
	blk := newSegBlock(t, 50, 1, 4, false)
	for _, p := range blk.params() {
		p.RequiresGrad = false
	}
	x := tt.Uniform(tt.Rand(51), -1, 1, 1, 4, 8)
	tp := tensor.NewTape()
	y := tensor.RunSegment(tp, x, tensor.Segment{Recompute: true, BeforeBackward: func() { t.Error("BeforeBackward ran") }}, blk.f)
	if tp.Len() != 0 || y.RequiresGrad {
		t.Fatalf("tape has %d steps, output requires grad %v; want none", tp.Len(), y.RequiresGrad)
	}
	if !sameBits(y.Data, blk.f(nil, x).Data) {
		t.Fatal("output differs from inference")
	}
}

// TestRunSegment_GradCheck checks the gradients through a recomputed
// segment (input and parameters) against finite differences.
func TestRunSegment_GradCheck(t *testing.T) {
	for _, packed := range []bool{false, true} {
		blk := newSegBlock(t, 60, 1, 6, packed)
		x := param(61, -1, 1, 1, 6, 8)
		f := func(tp *tensor.Tape) *tensor.Tensor {
			return tensor.RunSegment(tp, x, tensor.Segment{Recompute: true}, blk.f)
		}
		if err := tt.GradCheck(f, append([]*tensor.Tensor{x}, blk.params()...), 3e-3, 2e-2); err != nil {
			t.Fatalf("packed=%v: %v", packed, err)
		}
	}
}
