package tensor

import (
	"fmt"
	"math"

	"github.com/gorlhf/gorlhf/internal/par"
)

// AttentionArgs carries one multi-head attention call to a Backend.
// Queries are the last Tq of Tk positions (Tq = Tk in training; Tq < Tk when
// decoding after a cache). Query i (absolute position Tk−Tq+i) attends key j
// iff j ≤ Tk−Tq+i and, when Seg is set, Seg[b, j] == Seg[b, Tk−Tq+i]: a
// block-diagonal mask that isolates samples packed into one row.
type AttentionArgs struct {
	B, Tq, Tk, H, Hkv, D int
	Scale                float32
	Q                    []float32 // [B, Tq, H·D]
	K, V                 []float32 // [B, Tk, Hkv·D]
	Seg                  []int32   // [B, Tk] segment ids, or nil
	Out                  []float32 // [B, Tq, H·D]
	P                    []float32 // [B, H, Tq, Tk] probabilities kept for backward; nil in inference
	DOut                 []float32 // backward input  [B, Tq, H·D]
	DQ, DK, DV           []float32 // backward outputs (accumulated); nil to skip
}

// Attention returns softmax(Q·Kᵀ/√D + mask)·V with causal masking, grouped
// query heads (H query heads share H/Hkv key/value heads, GQA) and an
// optional per-sample block-diagonal mask seg [B·T] for packed sequences.
// q [B, T, H·D]; k, v [B, T, Hkv·D] → [B, T, H·D].
func Attention(tp *Tape, q, k, v *Tensor, heads, kvHeads int, seg []int32) *Tensor {
	if len(q.Shape) != 3 || len(k.Shape) != 3 || !SameShape(k.Shape, v.Shape) || q.Shape[0] != k.Shape[0] {
		panic(fmt.Sprintf("tensor: Attention: q %v, k %v, v %v", q.Shape, k.Shape, v.Shape))
	}
	b, tq, tk := q.Shape[0], q.Shape[1], k.Shape[1]
	if heads <= 0 || kvHeads <= 0 || heads%kvHeads != 0 || q.Shape[2]%heads != 0 ||
		k.Shape[2] != kvHeads*(q.Shape[2]/heads) || tq > tk || (seg != nil && len(seg) != b*tk) {
		panic(fmt.Sprintf("tensor: Attention: q %v, k %v, heads %d/%d, %d segment ids", q.Shape, k.Shape, heads, kvHeads, len(seg)))
	}
	d := q.Shape[2] / heads
	out := tp.output(q.Shape, q, k, v)
	a := &AttentionArgs{B: b, Tq: tq, Tk: tk, H: heads, Hkv: kvHeads, D: d,
		Scale: float32(1 / math.Sqrt(float64(d))), Q: q.Data, K: k.Data, V: v.Data, Seg: seg, Out: out.Data}
	if out.RequiresGrad {
		a.P = make([]float32, b*heads*tq*tk)
	}
	be := Active()
	be.AttentionForward(a)
	tp.record(out, func() {
		a.DOut, a.DQ, a.DK, a.DV = out.Grad, gradOrNil(q), gradOrNil(k), gradOrNil(v)
		be.AttentionBackward(a)
	})
	ensureOutGrad(out)
	return out
}

// visible returns how many leading keys query i may see, and whether key j
// is in its segment.
func (a *AttentionArgs) visible(b, i int) int { return a.Tk - a.Tq + i + 1 }

func (a *AttentionArgs) sameSeg(b, i, j int) bool {
	if a.Seg == nil {
		return true
	}
	s := a.Seg[b*a.Tk:]
	return s[a.Tk-a.Tq+i] == s[j]
}

func attentionForward(be Backend, a *AttentionArgs) {
	hd, kd := a.H*a.D, a.Hkv*a.D
	group := a.H / a.Hkv
	par.For(a.B*a.H, 1, func(lo, hi int) {
		var scratch []float32
		if a.P == nil {
			scratch = make([]float32, a.Tq*a.Tk)
		}
		for task := lo; task < hi; task++ {
			b, h := task/a.H, task%a.H
			p := scratch
			if a.P != nil {
				p = a.P[task*a.Tq*a.Tk : (task+1)*a.Tq*a.Tk]
			}
			q := a.Q[b*a.Tq*hd+h*a.D:]
			k := a.K[b*a.Tk*kd+(h/group)*a.D:]
			v := a.V[b*a.Tk*kd+(h/group)*a.D:]
			be.GemmSerial(false, true, a.Tq, a.Tk, a.D, a.Scale, q, hd, k, kd, 0, p, a.Tk)
			a.maskedSoftmax(b, p)
			be.GemmSerial(false, false, a.Tq, a.D, a.Tk, 1, p, a.Tk, v, kd, 0, a.Out[b*a.Tq*hd+h*a.D:], hd)
		}
	})
}

// maskedSoftmax turns scores p [Tq, Tk] into probabilities in place,
// writing exact zeros where the mask hides a key.
func (a *AttentionArgs) maskedSoftmax(b int, p []float32) {
	for i := 0; i < a.Tq; i++ {
		row := p[i*a.Tk : (i+1)*a.Tk]
		n := a.visible(b, i)
		clear(row[n:])
		if a.Seg != nil {
			for j := 0; j < n; j++ {
				if !a.sameSeg(b, i, j) {
					row[j] = float32(math.Inf(-1))
				}
			}
		}
		softmaxRow(row[:n], row[:n])
	}
}

func attentionBackward(be Backend, a *AttentionArgs) {
	hd, kd := a.H*a.D, a.Hkv*a.D
	group := a.H / a.Hkv
	// One task per (batch, KV head): the query heads of a group all add into
	// the same dK/dV, so they run in order on one goroutine.
	par.For(a.B*a.Hkv, 1, func(lo, hi int) {
		dp := make([]float32, a.Tq*a.Tk)
		for task := lo; task < hi; task++ {
			b, kh := task/a.Hkv, task%a.Hkv
			k, v := a.K[b*a.Tk*kd+kh*a.D:], a.V[b*a.Tk*kd+kh*a.D:]
			for h := kh * group; h < (kh+1)*group; h++ {
				p := a.P[(b*a.H+h)*a.Tq*a.Tk:][:a.Tq*a.Tk]
				q, do := a.Q[b*a.Tq*hd+h*a.D:], a.DOut[b*a.Tq*hd+h*a.D:]
				if a.DV != nil { // dV += Pᵀ·dO
					be.GemmSerial(true, false, a.Tk, a.D, a.Tq, 1, p, a.Tk, do, hd, 1, a.DV[b*a.Tk*kd+kh*a.D:], kd)
				}
				if a.DQ == nil && a.DK == nil {
					continue
				}
				// dP = dO·Vᵀ, then dS = P ⊙ (dP − Σ_j P·dP), scaled.
				be.GemmSerial(false, true, a.Tq, a.Tk, a.D, 1, do, hd, v, kd, 0, dp, a.Tk)
				softmaxBackwardRows(p, dp, a.Tq, a.Tk, a.Scale)
				if a.DQ != nil {
					be.GemmSerial(false, false, a.Tq, a.D, a.Tk, 1, dp, a.Tk, k, kd, 1, a.DQ[b*a.Tq*hd+h*a.D:], hd)
				}
				if a.DK != nil {
					be.GemmSerial(true, false, a.Tk, a.D, a.Tq, 1, dp, a.Tk, q, hd, 1, a.DK[b*a.Tk*kd+kh*a.D:], kd)
				}
			}
		}
	})
}

// softmaxBackwardRows replaces dp with scale·P⊙(dP − rowsum(P⊙dP)).
func softmaxBackwardRows(p, dp []float32, rows, cols int, scale float32) {
	for i := 0; i < rows; i++ {
		pr, dr := p[i*cols:(i+1)*cols], dp[i*cols:(i+1)*cols]
		var s float32
		for j, v := range pr {
			s += v * dr[j]
		}
		for j, v := range pr {
			dr[j] = scale * v * (dr[j] - s)
		}
	}
}
