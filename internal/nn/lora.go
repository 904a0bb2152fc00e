package nn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LoRA is a low-rank adapter on one linear map (Hu et al. 2021, PEFT's
// LoraLayer): the map's output gains
//
//	Δy = (α/r) · dropout(x) · Aᵀ · Bᵀ
//
// with A [r, in] and B [out, r], so the adapted map is x·Wᵀ + Δy while W
// stays frozen. The adapter is the same for a Linear ([out, in]) and a
// GPT-2 Conv1D ([in, out]) weight; only merging (DeltaInto) transposes.
type LoRA struct {
	A     *tensor.Tensor // [r, in]: lora_A.weight
	B     *tensor.Tensor // [out, r]: lora_B.weight
	Scale float32        // α/r
	// Dropout is the probability of zeroing an input element in training
	// (a forward pass with a tape); Rand draws the masks. Inference never
	// drops.
	Dropout float32
	Rand    *rand.Rand
}

// NewLoRA returns an adapter of rank r on a map in → out with PEFT's
// default initialisation: A Kaiming-uniform with a = √5 (uniform in
// ±1/√in), B zero, so the adapted map starts equal to the base. r draws A
// and, when dropout > 0, the dropout masks.
func NewLoRA(in, out, rank int, alpha, dropout float32, r *rand.Rand) *LoRA {
	l := &LoRA{A: tensor.Param(rank, in), B: tensor.Param(out, rank), Scale: alpha / float32(rank), Dropout: dropout}
	bound := 1 / math.Sqrt(float64(in))
	for i := range l.A.Data {
		l.A.Data[i] = float32((2*r.Float64() - 1) * bound)
	}
	if dropout > 0 {
		l.Rand = r
	}
	return l
}

// Rank is r.
func (l *LoRA) Rank() int { return l.A.Shape[0] }

// Delta returns Δy [..., out] for x [..., in].
func (l *LoRA) Delta(tp *tensor.Tape, x *tensor.Tensor) *tensor.Tensor {
	if tp != nil && l.Dropout > 0 {
		x = tensor.Mul(tp, x, l.mask(x.Shape))
	}
	return tensor.Scale(tp, tensor.Linear(tp, tensor.Linear(tp, x, l.A, nil), l.B, nil), l.Scale)
}

// mask is an inverted-dropout mask: 0 with probability p, else 1/(1−p).
func (l *LoRA) mask(shape []int) *tensor.Tensor {
	m := tensor.New(shape...)
	keep := 1 / (1 - l.Dropout)
	for i := range m.Data {
		if l.Rand.Float32() >= l.Dropout {
			m.Data[i] = keep
		}
	}
	return m
}

// Params names prefix+"lora_A.weight" and prefix+"lora_B.weight" (PEFT's
// names below the adapted module, adapter name dropped).
func (l *LoRA) Params(prefix string) Params {
	return Params{{prefix + "lora_A.weight", l.A}, {prefix + "lora_B.weight", l.B}}
}

// DeltaInto adds the adapter's weight change (α/r)·B·A to w: w is the
// base weight [out, in], or [in, out] when fanInFanOut (GPT-2's Conv1D,
// PEFT's fan_in_fan_out), which adds the transpose. Each element is the
// float64 sum over the rank, rounded once.
func (l *LoRA) DeltaInto(w []float32, fanInFanOut bool) {
	r, in, out := l.A.Shape[0], l.A.Shape[1], l.B.Shape[0]
	if len(w) != in*out {
		panic(fmt.Sprintf("nn: LoRA DeltaInto: weight of %d values for a %d×%d adapter", len(w), out, in))
	}
	s := float64(l.Scale)
	for o := 0; o < out; o++ {
		b := l.B.Data[o*r : (o+1)*r]
		for i := 0; i < in; i++ {
			var d float64
			for k, bk := range b {
				d += float64(bk) * float64(l.A.Data[k*in+i])
			}
			j := o*in + i
			if fanInFanOut {
				j = i*out + o
			}
			w[j] += float32(s * d)
		}
	}
}

// LoRATarget is one linear map of a model that can carry an adapter.
type LoRATarget struct {
	// Module is the Hugging Face module path, e.g.
	// "model.layers.0.self_attn.q_proj" (the weight is Module+".weight").
	Module string
	// Weight is the frozen base weight: [out, in], or [in, out] when
	// FanInFanOut (GPT-2's Conv1D layout).
	Weight      *tensor.Tensor
	FanInFanOut bool
	// Slot is where the model looks for the adapter (nil: none).
	Slot **LoRA
}

// Short is the module's own name, the last part of Module ("q_proj"),
// which target_modules lists.
func (t LoRATarget) Short() string {
	for i := len(t.Module) - 1; i >= 0; i-- {
		if t.Module[i] == '.' {
			return t.Module[i+1:]
		}
	}
	return t.Module
}

// InOut returns the map's input and output widths.
func (t LoRATarget) InOut() (in, out int) {
	if t.FanInFanOut {
		return t.Weight.Shape[0], t.Weight.Shape[1]
	}
	return t.Weight.Shape[1], t.Weight.Shape[0]
}

// Apply returns x·op(W) + b plus the adapter's Δy for x [..., in]: W is
// [out, in] when outIn, else GPT-2's Conv1D [in, out]. It is one fused op
// (tensor.LoRALinear), except in training with dropout, which composes
// the base map and Delta (the fused op's twin, see applyTwin).
func (l *LoRA) Apply(tp *tensor.Tape, x, w, b *tensor.Tensor, outIn bool) *tensor.Tensor {
	if tp != nil && l.Dropout > 0 {
		return l.applyTwin(tp, x, w, b, outIn)
	}
	return tensor.LoRALinear(tp, x, w, b, l.A, l.B, l.Scale, outIn)
}

// applyTwin is Apply as separate ops: the base map, plus Delta.
func (l *LoRA) applyTwin(tp *tensor.Tape, x, w, b *tensor.Tensor, outIn bool) *tensor.Tensor {
	var y *tensor.Tensor
	if outIn {
		y = tensor.Linear(tp, x, w, b)
	} else {
		y = tensor.Conv1D(tp, x, w, b)
	}
	return tensor.Add(tp, y, l.Delta(tp, x))
}
