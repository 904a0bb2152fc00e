package model

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/half"
	"github.com/gorlhf/gorlhf/internal/tensor"
)

// StepDTyper is a Decoder whose Step can multiply by 16-bit copies of its
// weight matrices (the rollout engine's --dtype bf16 or f16) instead of
// the f32 parameters, which stay the master weights for training and
// Forward.
type StepDTyper interface {
	Decoder
	// SetStepDType converts the weight matrices Step reads to dt (F32
	// drops the copies: Step reads the parameters again). Call it again
	// after the parameters change: the copies are not kept in sync.
	SetStepDType(dt half.DType)
	// StepDType is the format Step reads its weight matrices in.
	StepDType() half.DType
}

// StepMatrix names one weight matrix a Step multiplies by.
type StepMatrix struct {
	W     *tensor.Tensor
	OutIn bool // [out, in] (nn.Linear, LM heads); false: [in, out] (GPT-2 Conv1D)
}

// StepWeights holds a Decoder's 16-bit weight copies for Step. The zero
// value has none: Linear and Conv1D are then tensor.Linear and
// tensor.Conv1D, bit for bit.
type StepWeights struct {
	dt   half.DType
	mats map[*tensor.Tensor]*half.Matrix
}

// Set converts ms to dt, reusing the copies of an earlier Set of the same
// format (a weight update); F32 drops them all.
func (s *StepWeights) Set(dt half.DType, ms []StepMatrix) {
	if dt == half.F32 {
		*s = StepWeights{}
		return
	}
	old := s.mats
	if s.dt != dt {
		old = nil
	}
	mats := make(map[*tensor.Tensor]*half.Matrix, len(ms))
	for _, sm := range ms {
		if _, done := mats[sm.W]; done { // a tied head converted once
			continue
		}
		if len(sm.W.Shape) != 2 {
			panic(fmt.Sprintf("model: step weight %v is not a matrix", sm.W.Shape))
		}
		in, out := sm.W.Shape[0], sm.W.Shape[1]
		if sm.OutIn {
			in, out = out, in
		}
		m := old[sm.W]
		if m == nil || m.In != in || m.Out != out {
			m = half.NewMatrix(dt, in, out)
		}
		if sm.OutIn {
			m.SetOutIn(sm.W.Data)
		} else {
			m.SetInOut(sm.W.Data)
		}
		mats[sm.W] = m
	}
	s.dt, s.mats = dt, mats
}

// DType is the format of the copies (F32 when there are none).
func (s *StepWeights) DType() half.DType { return s.dt }

// Bytes is the memory the copies take.
func (s *StepWeights) Bytes() int {
	n := 0
	for _, m := range s.mats {
		n += m.Bytes()
	}
	return n
}

// Linear returns x·Wᵀ + b for W [out, in] (inference only), from W's
// 16-bit copy when there is one.
func (s *StepWeights) Linear(x, w, b *tensor.Tensor) *tensor.Tensor {
	if m := s.mats[w]; m != nil {
		return mulHalf(x, m, b)
	}
	return tensor.Linear(nil, x, w, b)
}

// Conv1D returns x·W + b for W [in, out] (inference only), from W's
// 16-bit copy when there is one.
func (s *StepWeights) Conv1D(x, w, b *tensor.Tensor) *tensor.Tensor {
	if m := s.mats[w]; m != nil {
		return mulHalf(x, m, b)
	}
	return tensor.Conv1D(nil, x, w, b)
}

// mulHalf is x·W + b with W a half.Matrix: [..., In] → [..., Out].
func mulHalf(x *tensor.Tensor, m *half.Matrix, b *tensor.Tensor) *tensor.Tensor {
	n, in := x.Rows()
	if in != m.In || (b != nil && len(b.Data) != m.Out) {
		panic(fmt.Sprintf("model: step weight [%d, %d] for input %v", m.In, m.Out, x.Shape))
	}
	shape := append(append([]int(nil), x.Shape[:len(x.Shape)-1]...), m.Out)
	y := tensor.New(shape...)
	half.Mul(y.Data, x.Data, n, m)
	if b != nil {
		for r := 0; r < n; r++ {
			row := y.Data[r*m.Out : (r+1)*m.Out]
			for j, v := range b.Data {
				row[j] += v
			}
		}
	}
	return y
}
