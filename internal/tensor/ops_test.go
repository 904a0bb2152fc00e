package tensor_test

import (
	"math"
	"testing"

	"github.com/gorlhf/gorlhf/internal/tensor"
	tt "github.com/gorlhf/gorlhf/internal/tensor/tensortest"
)

// param returns a random leaf that requires grad.
func param(seed uint64, lo, hi float32, shape ...int) *tensor.Tensor {
	t := tt.Uniform(tt.Rand(seed), lo, hi, shape...)
	t.RequiresGrad = true
	return t
}

// TestOps_GradCheck checks every op's hand-written backward against central
// finite differences in f32 (h = 3e-3, tolerance 2e-2 relative to
// max(1, |grad|): f32 rounding of the summed loss dominates the error).
func TestOps_GradCheck(t *testing.T) {
	ids := []int32{3, 0, 3, 4, 1, 2}
	targets := []int32{2, -100, 0, 4, 1, 3}
	seg := []int32{0, 0, 0, 1, 1, 2, 5, 5, 5, 5, 5, 5}
	rope, err := tensor.NewRoPE(4, 10000, tensor.RotateHalf, nil)
	if err != nil {
		t.Fatal(err)
	}
	ropeI, _ := tensor.NewRoPE(4, 500, tensor.Interleaved, &tensor.RoPEScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 16})
	pos := []int32{0, 1, 2, 7, 30, 511}

	cases := []struct {
		name   string
		inputs []*tensor.Tensor
		f      func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor
	}{
		{"Add", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, -1, 1, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Add(tp, in[0], in[1]) }},
		{"Sub", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, -1, 1, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Sub(tp, in[0], in[1]) }},
		{"Mul", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, -1, 1, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Mul(tp, in[0], in[1]) }},
		{"Div", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, 1, 2, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Div(tp, in[0], in[1]) }},
		{"MinimumMaximum", []*tensor.Tensor{param(1, -1, 1, 12), param(2, -1, 1, 12)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Add(tp, tensor.Minimum(tp, in[0], in[1]), tensor.Scale(tp, tensor.Maximum(tp, in[0], in[1]), 2))
			}},
		{"ScaleAddScalar", []*tensor.Tensor{param(1, -1, 1, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.AddScalar(tp, tensor.Scale(tp, in[0], -3), 0.5)
			}},
		{"Exp", []*tensor.Tensor{param(1, -2, 2, 7)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Exp(tp, in[0]) }},
		{"Log", []*tensor.Tensor{param(1, 0.5, 3, 7)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Log(tp, in[0]) }},
		{"Square", []*tensor.Tensor{param(1, -2, 2, 7)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Square(tp, in[0]) }},
		{"Sigmoid", []*tensor.Tensor{param(1, -4, 4, 9)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Sigmoid(tp, in[0]) }},
		{"LogSigmoid", []*tensor.Tensor{param(1, -6, 6, 9)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.LogSigmoid(tp, in[0]) }},
		{"Clamp", []*tensor.Tensor{param(1, -2, 2, 9)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Clamp(tp, in[0], -0.8, 0.7) }},
		{"Abs", []*tensor.Tensor{param(1, -2, 2, 9)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Abs(tp, in[0]) }},
		{"Sum", []*tensor.Tensor{param(1, -1, 1, 2, 3)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Sum(tp, in[0]) }},
		{"Mean", []*tensor.Tensor{param(1, -1, 1, 2, 3)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Mean(tp, in[0]) }},
		{"MaskedMean", []*tensor.Tensor{param(1, -1, 1, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.MaskedMean(tp, in[0], tensor.FromSlice([]float32{1, 0, 1, 1, 0, 0.5}, 6))
			}},
		{"SumLastDim", []*tensor.Tensor{param(1, -1, 1, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.SumLastDim(tp, in[0]) }},
		{"ReshapeGatherRows", []*tensor.Tensor{param(1, -1, 1, 2, 3, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.GatherRows(tp, tensor.Reshape(tp, in[0], 6, 4), []int{5, 0, 5})
			}},
		{"AddRowVector", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, -1, 1, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.AddRowVector(tp, in[0], in[1])
			}},
		{"Linear", []*tensor.Tensor{param(1, -1, 1, 2, 3, 5), param(2, -1, 1, 4, 5), param(3, -1, 1, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Linear(tp, in[0], in[1], in[2])
			}},
		{"LinearNoBias", []*tensor.Tensor{param(1, -1, 1, 7, 5), param(2, -1, 1, 1, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Linear(tp, in[0], in[1], nil) }},
		{"MatMul", []*tensor.Tensor{param(1, -1, 1, 3, 4), param(2, -1, 1, 4, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.MatMul(tp, in[0], in[1], false, false)
			}},
		{"MatMulTransposes", []*tensor.Tensor{param(1, -1, 1, 4, 3), param(2, -1, 1, 5, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.MatMul(tp, in[0], in[1], true, true)
			}},
		{"MatMulBatched", []*tensor.Tensor{param(1, -1, 1, 2, 3, 4), param(2, -1, 1, 2, 5, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.MatMul(tp, in[0], in[1], false, true)
			}},
		{"MatMulBatchedShared", []*tensor.Tensor{param(1, -1, 1, 3, 4, 3), param(2, -1, 1, 4, 2)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.MatMul(tp, in[0], in[1], true, false)
			}},
		{"Embedding", []*tensor.Tensor{param(1, -1, 1, 5, 3)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Embedding(tp, in[0], ids) }},
		{"RMSNorm", []*tensor.Tensor{param(1, -1, 1, 4, 6), param(2, 0.5, 1.5, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.RMSNorm(tp, in[0], in[1], 1e-5)
			}},
		{"LayerNorm", []*tensor.Tensor{param(1, -1, 1, 4, 6), param(2, 0.5, 1.5, 6), param(3, -1, 1, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.LayerNorm(tp, in[0], in[1], in[2], 1e-5)
			}},
		{"GELU", []*tensor.Tensor{param(1, -4, 4, 17)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.GELU(tp, in[0]) }},
		{"SiLU", []*tensor.Tensor{param(1, -4, 4, 17)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.SiLU(tp, in[0]) }},
		{"SwiGLU", []*tensor.Tensor{param(1, -3, 3, 3, 5), param(2, -1, 1, 3, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.SwiGLU(tp, in[0], in[1]) }},
		{"Softmax", []*tensor.Tensor{param(1, -3, 3, 3, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Softmax(tp, in[0]) }},
		{"LogSoftmax", []*tensor.Tensor{param(1, -3, 3, 3, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.LogSoftmax(tp, in[0]) }},
		{"TokenLogProbs", []*tensor.Tensor{param(1, -3, 3, 2, 3, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.TokenLogProbs(tp, in[0], targets)
			}},
		{"CrossEntropy", []*tensor.Tensor{param(1, -3, 3, 6, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.CrossEntropy(tp, in[0], targets)
			}},
		{"Entropy", []*tensor.Tensor{param(1, -3, 3, 4, 5)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor { return tensor.Entropy(tp, in[0]) }},
		{"RoPERotateHalf", []*tensor.Tensor{param(1, -1, 1, 6, 8)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.ApplyRoPE(tp, in[0], pos, rope)
			}},
		{"RoPEInterleavedLlama3", []*tensor.Tensor{param(1, -1, 1, 6, 8)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.ApplyRoPE(tp, in[0], pos, ropeI)
			}},
		{"AttentionMHA", []*tensor.Tensor{param(1, -1, 1, 2, 5, 6), param(2, -1, 1, 2, 5, 6), param(3, -1, 1, 2, 5, 6)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Attention(tp, in[0], in[1], in[2], 2, 2, nil)
			}},
		{"AttentionGQAPacked", []*tensor.Tensor{param(1, -1, 1, 2, 6, 8), param(2, -1, 1, 2, 6, 4), param(3, -1, 1, 2, 6, 4)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Attention(tp, in[0], in[1], in[2], 4, 2, seg)
			}},
		{"AttentionQKVGQAPacked", []*tensor.Tensor{param(1, -1, 1, 2, 6, 16)}, // 4 query heads, 2 KV heads, D 2
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.AttentionQKV(tp, in[0], 4, 2, seg)
			}},
		{"AttentionDecodeTail", []*tensor.Tensor{param(1, -1, 1, 1, 2, 4), param(2, -1, 1, 1, 5, 2), param(3, -1, 1, 1, 5, 2)},
			func(tp *tensor.Tape, in []*tensor.Tensor) *tensor.Tensor {
				return tensor.Attention(tp, in[0], in[1], in[2], 2, 1, nil)
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := func(tp *tensor.Tape) *tensor.Tensor { return c.f(tp, c.inputs) }
			if err := tt.GradCheck(f, c.inputs, 3e-3, 2e-2); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAttention_Masks checks the masks directly: a query never depends on
// future keys or on keys of another packed segment.
func TestAttention_Masks(t *testing.T) {
	r := tt.Rand(7)
	q, k, v := tt.Uniform(r, -1, 1, 1, 6, 4), tt.Uniform(r, -1, 1, 1, 6, 4), tt.Uniform(r, -1, 1, 1, 6, 4)
	seg := []int32{0, 0, 0, 1, 1, 1}
	base := tensor.Attention(nil, q, k, v, 1, 1, seg)
	// Changing key/value 4 (segment 1) must not move rows 0..3 (row 3 is
	// in segment 1 but before position 4: causal).
	k.Data[4*4] += 5
	v.Data[4*4+1] -= 3
	moved := tensor.Attention(nil, q, k, v, 1, 1, seg)
	for i := 0; i < 4*4; i++ {
		if base.Data[i] != moved.Data[i] {
			t.Fatalf("row %d changed after editing a future or foreign key", i/4)
		}
	}
	// Packed equals separate: segment 1 alone.
	alone := tensor.Attention(nil, tensor.FromSlice(q.Data[12:], 1, 3, 4), tensor.FromSlice(k.Data[12:], 1, 3, 4), tensor.FromSlice(v.Data[12:], 1, 3, 4), 1, 1, nil)
	if e := tt.MaxRelErr(moved.Data[12:], alone.Data, 1e-6); e > 1e-6 {
		t.Fatalf("packed segment differs from the same sequence alone: %g", e)
	}
}

func TestMathf(t *testing.T) {
	var worstExp, worstTanh float64
	for x := -87.0; x < 88; x += 0.0137 {
		want := math.Exp(x)
		worstExp = math.Max(worstExp, math.Abs(float64(tensor.Expf(float32(x)))-want)/want)
	}
	for x := -12.0; x < 12; x += 0.00113 {
		want := math.Tanh(x)
		got := float64(tensor.Tanhf(float32(x)))
		worstTanh = math.Max(worstTanh, math.Abs(got-want)/math.Max(math.Abs(want), 1e-30))
	}
	// f32 has 2^-24 ≈ 6e-8 resolution; allow a few ulp plus input rounding
	// (x rounded to f32 moves e^x by up to |x|·6e-8 ≈ 5e-6 at |x| = 87).
	if worstExp > 8e-6 || worstTanh > 1e-6 {
		t.Fatalf("worst relative error: exp %g, tanh %g", worstExp, worstTanh)
	}
	if !math.IsInf(float64(tensor.Expf(100)), 1) || tensor.Expf(-200) != 0 || tensor.Tanhf(50) != 1 {
		t.Fatal("edge values wrong")
	}
}

func TestOps_GradCheckShapes(t *testing.T) {
	x, w, b := param(1, -1, 1, 3, 4), param(2, -1, 1, 4, 6), param(3, -1, 1, 6)
	if err := tt.GradCheck(func(tp *tensor.Tape) *tensor.Tensor { return tensor.Conv1D(tp, x, w, b) },
		[]*tensor.Tensor{x, w, b}, 3e-3, 2e-2); err != nil {
		t.Fatal("Conv1D:", err)
	}
	y := param(4, -1, 1, 2, 3, 7)
	if err := tt.GradCheck(func(tp *tensor.Tape) *tensor.Tensor {
		p := tensor.SplitLastDim(tp, y, 2, 4, 1)
		return tensor.Add(tp, tensor.SumLastDim(tp, tensor.Square(tp, p[1])), tensor.Mul(tp, tensor.SumLastDim(tp, p[0]), tensor.SumLastDim(tp, p[2])))
	}, []*tensor.Tensor{y}, 3e-3, 2e-2); err != nil {
		t.Fatal("SplitLastDim:", err)
	}
}

// TestTokenLogProbs_Twin checks the fused kernel against its unfused twin,
// log-softmax followed by a gather, in value and gradient.
func TestTokenLogProbs_Twin(t *testing.T) {
	r := tt.Rand(11)
	rows, vocab := 37, 101
	targets := make([]int32, rows)
	for i := range targets {
		targets[i] = int32(r.IntN(vocab))
	}
	targets[5] = -100
	a := tt.Uniform(r, -8, 8, rows, vocab)
	a.RequiresGrad = true
	b := a.Clone()
	b.RequiresGrad = true
	tp := tensor.NewTape()
	fused := tensor.TokenLogProbs(tp, a, targets)
	tp.Backward(tensor.Sum(tp, fused))
	ls := tensor.LogSoftmax(tp, b)
	idx := make([]int, 0, rows)
	for i, tg := range targets {
		if tg >= 0 {
			idx = append(idx, i*vocab+int(tg))
		}
	}
	picked := tensor.GatherRows(tp, tensor.Reshape(tp, ls, rows*vocab, 1), idx)
	tp.Backward(tensor.Sum(tp, picked))
	j := 0
	for i, tg := range targets {
		if tg < 0 {
			if fused.Data[i] != 0 {
				t.Fatalf("ignored row %d has value %v", i, fused.Data[i])
			}
			continue
		}
		if d := math.Abs(float64(fused.Data[i] - picked.Data[j])); d > 1e-5 {
			t.Fatalf("row %d: fused %v, twin %v", i, fused.Data[i], picked.Data[j])
		}
		j++
	}
	if e := tt.MaxRelErr(a.Grad, b.Grad, 1e-6); e > 1e-5 {
		t.Fatalf("gradients differ: %g", e)
	}
}

// naiveAttention is the float64 twin of Attention: every score computed,
// masked and normalised one element at a time.
func naiveAttention(q, k, v []float32, b, tq, tk, h, hkv, d int, seg []int32) []float64 {
	out := make([]float64, b*tq*h*d)
	for bi := 0; bi < b; bi++ {
		for hi := 0; hi < h; hi++ {
			kh := hi / (h / hkv)
			for i := 0; i < tq; i++ {
				abs := tk - tq + i
				w := make([]float64, tk)
				m := math.Inf(-1)
				for j := 0; j <= abs; j++ {
					if seg != nil && seg[bi*tk+j] != seg[bi*tk+abs] {
						continue
					}
					var s float64
					for x := 0; x < d; x++ {
						s += float64(q[(bi*tq+i)*h*d+hi*d+x]) * float64(k[(bi*tk+j)*hkv*d+kh*d+x])
					}
					w[j] = s / math.Sqrt(float64(d))
					m = math.Max(m, w[j])
				}
				var z float64
				for j := 0; j <= abs; j++ {
					if seg != nil && seg[bi*tk+j] != seg[bi*tk+abs] {
						w[j] = 0
						continue
					}
					w[j] = math.Exp(w[j] - m)
					z += w[j]
				}
				for j := 0; j <= abs; j++ {
					for x := 0; x < d; x++ {
						out[(bi*tq+i)*h*d+hi*d+x] += w[j] / z * float64(v[(bi*tk+j)*hkv*d+kh*d+x])
					}
				}
			}
		}
	}
	return out
}

// TestAttention_Twin compares the blocked causal kernel with the naive twin
// on lengths spanning several query blocks, with GQA, packing and a
// decode-style query tail, then gradient-checks a multi-block case.
func TestAttention_Twin(t *testing.T) {
	r := tt.Rand(21)
	cases := []struct {
		b, tq, tk, h, hkv, d int
		packed               bool
	}{{2, 70, 70, 4, 2, 8, false}, {1, 65, 65, 2, 1, 4, true}, {1, 33, 100, 2, 2, 8, false}, {3, 1, 40, 4, 4, 2, false},
		{1, 300, 300, 2, 1, 4, true}, {2, 150, 270, 2, 2, 4, false}} // the last two: many blocks, a ragged last one
	for _, c := range cases {
		q := tt.Uniform(r, -1, 1, c.b, c.tq, c.h*c.d)
		k := tt.Uniform(r, -1, 1, c.b, c.tk, c.hkv*c.d)
		v := tt.Uniform(r, -1, 1, c.b, c.tk, c.hkv*c.d)
		var seg []int32
		if c.packed {
			for i := 0; i < c.b*c.tk; i++ {
				seg = append(seg, int32(i/17))
			}
		}
		got := tensor.Attention(nil, q, k, v, c.h, c.hkv, seg)
		want := naiveAttention(q.Data, k.Data, v.Data, c.b, c.tq, c.tk, c.h, c.hkv, c.d, seg)
		for i := range want {
			if d := math.Abs(float64(got.Data[i]) - want[i]); d > 1e-5 {
				t.Fatalf("%+v: element %d: got %v, naive %v", c, i, got.Data[i], want[i])
			}
		}
	}
	q, k, v := param(31, -1, 1, 1, 40, 4), param(32, -1, 1, 1, 40, 2), param(33, -1, 1, 1, 40, 2)
	seg := make([]int32, 40)
	for i := range seg {
		seg[i] = int32(i / 15)
	}
	if err := tt.GradCheck(func(tp *tensor.Tape) *tensor.Tensor { return tensor.Attention(tp, q, k, v, 2, 1, seg) },
		[]*tensor.Tensor{q, k, v}, 3e-3, 2e-2); err != nil {
		t.Fatal(err)
	}
	// A longer packed case: eight full query blocks and a ragged ninth.
	q, k, v = param(34, -1, 1, 1, 270, 2), param(35, -1, 1, 1, 270, 2), param(36, -1, 1, 1, 270, 2)
	seg = make([]int32, 270)
	for i := range seg {
		seg[i] = int32(i / 100)
	}
	if err := tt.GradCheck(func(tp *tensor.Tape) *tensor.Tensor { return tensor.Attention(tp, q, k, v, 1, 1, seg) },
		[]*tensor.Tensor{q, k, v}, 3e-3, 2e-2); err != nil {
		t.Fatal(err)
	}
}

// TestAttentionQKV_SameAsSplit: attention read in place from a fused q|k|v
// projection gives the bits of splitting it first and running Attention,
// forward and backward, with GQA and packed segments.
func TestAttentionQKV_SameAsSplit(t *testing.T) {
	const b, tl, heads, kvHeads, d = 2, 37, 4, 2, 8
	seg := make([]int32, b*tl)
	for i := range seg {
		seg[i] = int32(i % tl / 13)
	}
	qkv := param(5, -1, 1, b, tl, (heads+2*kvHeads)*d)
	proj := tt.Uniform(tt.Rand(6), -1, 1, b, tl, heads*d)
	run := func(fused bool) (out, grad []float32) {
		qkv.Grad = nil
		tp := tensor.NewTape()
		var y *tensor.Tensor
		if fused {
			y = tensor.AttentionQKV(tp, qkv, heads, kvHeads, seg)
		} else {
			p := tensor.SplitLastDim(tp, qkv, heads*d, kvHeads*d, kvHeads*d)
			y = tensor.Attention(tp, p[0], p[1], p[2], heads, kvHeads, seg)
		}
		tp.Backward(tensor.Sum(tp, tensor.Mul(tp, y, proj)))
		return y.Data, qkv.Grad
	}
	wantOut, wantGrad := run(false)
	gotOut, gotGrad := run(true)
	for i := range wantOut {
		if math.Float32bits(gotOut[i]) != math.Float32bits(wantOut[i]) {
			t.Fatalf("output %d: %v, split %v", i, gotOut[i], wantOut[i])
		}
	}
	for i := range wantGrad {
		if gotGrad[i] != wantGrad[i] {
			t.Fatalf("gradient %d: %v, split %v", i, gotGrad[i], wantGrad[i])
		}
	}
}
