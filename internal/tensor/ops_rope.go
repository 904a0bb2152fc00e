package tensor

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/par"
)

// RoPEStyle says which coordinates of a head are rotated together.
type RoPEStyle int

const (
	// RotateHalf pairs x[i] with x[i+D/2] (Hugging Face Llama, Qwen, Mistral).
	RotateHalf RoPEStyle = iota
	// Interleaved pairs x[2i] with x[2i+1] (llama2.c, Meta's original code).
	Interleaved
)

// RoPEScaling is the optional frequency rescaling of Hugging Face's
// rope_scaling (only "llama3" is supported, as Llama 3.1+ uses).
type RoPEScaling struct {
	Type                 string  // "llama3"
	Factor               float64 // e.g. 8
	LowFreqFactor        float64 // e.g. 1
	HighFreqFactor       float64 // e.g. 4
	OriginalMaxPositions int     // e.g. 8192
}

// RoPE holds the per-pair inverse frequencies of rotary position
// embeddings (Su et al. 2021, https://arxiv.org/abs/2104.09864):
// pair i of a head at position p is rotated by angle p·θ^(−2i/D).
type RoPE struct {
	Style   RoPEStyle
	HeadDim int
	InvFreq []float32 // [D/2]
}

// NewRoPE computes inverse frequencies in float32 the way Hugging Face and
// llama2.c do (so angles round identically), then applies scaling if set.
func NewRoPE(headDim int, theta float64, style RoPEStyle, scaling *RoPEScaling) (*RoPE, error) {
	if headDim <= 0 || headDim%2 != 0 {
		return nil, fmt.Errorf("rope: head dim %d must be positive and even", headDim)
	}
	inv := make([]float32, headDim/2)
	for i := range inv {
		e := float32(2*i) / float32(headDim)
		inv[i] = float32(1 / math.Pow(theta, float64(e)))
	}
	if scaling != nil && scaling.Type != "" && scaling.Type != "default" {
		if scaling.Type != "llama3" {
			return nil, fmt.Errorf("rope: rope_scaling type %q is not supported (only llama3)", scaling.Type)
		}
		llama3Scale(inv, scaling)
	}
	return &RoPE{Style: style, HeadDim: headDim, InvFreq: inv}, nil
}

// llama3Scale applies Llama 3.1's smooth frequency rescaling: long
// wavelengths are divided by factor, short ones kept, the band between
// interpolated.
func llama3Scale(inv []float32, s *RoPEScaling) {
	old := float64(s.OriginalMaxPositions)
	lowWave, highWave := old/s.LowFreqFactor, old/s.HighFreqFactor
	for i, f := range inv {
		wave := 2 * math.Pi / float64(f)
		switch {
		case wave < highWave:
		case wave > lowWave:
			inv[i] = float32(float64(f) / s.Factor)
		default:
			smooth := (old/wave - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor)
			inv[i] = float32((1-smooth)*float64(f)/s.Factor + smooth*float64(f))
		}
	}
}

// ApplyRoPE rotates every head of x [N, H·D] (N token rows) by the angle of
// its row's position pos[n].
func ApplyRoPE(tp *Tape, x *Tensor, pos []int32, r *RoPE) *Tensor {
	rows, cols := x.Rows()
	if cols%r.HeadDim != 0 || len(pos) != rows {
		panic(fmt.Sprintf("tensor: ApplyRoPE: x %v, %d positions, head dim %d", x.Shape, len(pos), r.HeadDim))
	}
	out := tp.output(x.Shape, x)
	r.rotate(x.Data, out.Data, pos, cols, 1)
	tp.record(out, func() {
		tmp := make([]float32, len(x.Data))
		r.rotate(out.Grad, tmp, pos, cols, -1) // the inverse rotation
		addInto(x.ensureGrad(), tmp)
	})
	tp.ensureOutGrad(out)
	return out
}

// rotate writes dst = R(sign·angle)·src for every head of every row.
func (r *RoPE) rotate(src, dst []float32, pos []int32, cols int, sign float32) {
	half := r.HeadDim / 2
	par.For(len(pos), rowGrain, func(lo, hi int) {
		cos, sin := make([]float32, half), make([]float32, half)
		for n := lo; n < hi; n++ {
			p := float32(pos[n])
			for i, f := range r.InvFreq {
				s, c := math.Sincos(float64(p * f))
				cos[i], sin[i] = float32(c), sign*float32(s)
			}
			row, out := src[n*cols:(n+1)*cols], dst[n*cols:(n+1)*cols]
			for h := 0; h < cols; h += r.HeadDim {
				r.rotateHead(row[h:h+r.HeadDim], out[h:h+r.HeadDim], cos, sin)
			}
		}
	})
}

func (r *RoPE) rotateHead(x, y, cos, sin []float32) {
	half := len(cos)
	for i := 0; i < half; i++ {
		ia, ib := i, i+half
		if r.Style == Interleaved {
			ia, ib = 2*i, 2*i+1
		}
		a, b := x[ia], x[ib]
		y[ia] = a*cos[i] - b*sin[i]
		y[ib] = a*sin[i] + b*cos[i]
	}
}
