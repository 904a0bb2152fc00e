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
	Q                    []float32 // [B, Tq, H·D], rows LdQ apart
	K, V                 []float32 // [B, Tk, Hkv·D], rows LdKV apart
	// LdQ and LdKV are the row strides of Q and DQ, and of K, V, DK and DV
	// (0: dense, H·D and Hkv·D). A fused q|k|v projection is read in
	// place with both set to its width.
	LdQ, LdKV  int
	Seg        []int32   // [B, Tk] segment ids, or nil
	Out        []float32 // [B, Tq, H·D]
	P          []float32 // [B, H, Tq, Tk] probabilities kept for backward; nil in inference
	DOut       []float32 // backward input  [B, Tq, H·D]
	DQ, DK, DV []float32 // backward outputs (accumulated); nil to skip
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
	out := tp.outputRaw(q.Shape, q, k, v)
	a := &AttentionArgs{B: b, Tq: tq, Tk: tk, H: heads, Hkv: kvHeads, D: d,
		Scale: float32(1 / math.Sqrt(float64(d))), Q: q.Data, K: k.Data, V: v.Data, Seg: seg, Out: out.Data}
	if out.RequiresGrad {
		a.P = tp.allocRaw(b * heads * tq * tk)
	}
	be := Active()
	be.AttentionForward(a)
	tp.record(out, func() {
		a.DOut, a.DQ, a.DK, a.DV = out.Grad, gradOrNil(q), gradOrNil(k), gradOrNil(v)
		be.AttentionBackward(a)
	})
	tp.ensureOutGrad(out)
	return out
}

// AttentionQKV is Attention on a fused projection qkv [B, T, (H+2·Hkv)·D]
// holding q, k and v side by side in its last dimension (GPT-2's c_attn),
// read in place: no split copies in the forward pass, no gradient scatter
// in the backward pass. → [B, T, H·D].
func AttentionQKV(tp *Tape, qkv *Tensor, heads, kvHeads int, seg []int32) *Tensor {
	if len(qkv.Shape) != 3 || heads <= 0 || kvHeads <= 0 || heads%kvHeads != 0 || qkv.Shape[2]%(heads+2*kvHeads) != 0 {
		panic(fmt.Sprintf("tensor: AttentionQKV: qkv %v with heads %d/%d", qkv.Shape, heads, kvHeads))
	}
	b, t, w := qkv.Shape[0], qkv.Shape[1], qkv.Shape[2]
	d := w / (heads + 2*kvHeads)
	if seg != nil && len(seg) != b*t {
		panic(fmt.Sprintf("tensor: AttentionQKV: qkv %v with %d segment ids", qkv.Shape, len(seg)))
	}
	out := tp.outputRaw([]int{b, t, heads * d}, qkv)
	qd, kd := heads*d, kvHeads*d
	a := &AttentionArgs{B: b, Tq: t, Tk: t, H: heads, Hkv: kvHeads, D: d, LdQ: w, LdKV: w,
		Scale: float32(1 / math.Sqrt(float64(d))), Q: qkv.Data, K: qkv.Data[qd:], V: qkv.Data[qd+kd:], Seg: seg, Out: out.Data}
	if out.RequiresGrad {
		a.P = tp.allocRaw(b * heads * t * t)
	}
	be := Active()
	be.AttentionForward(a)
	tp.record(out, func() {
		g := qkv.ensureGrad()
		a.DOut, a.DQ, a.DK, a.DV = out.Grad, g, g[qd:], g[qd+kd:]
		be.AttentionBackward(a)
	})
	tp.ensureOutGrad(out)
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

// attnBlock is the number of query rows processed together. Causal
// masking means a block of rows [i0, i1) only sees keys [0, Tk−Tq+i1), so
// scores, softmax and products skip the hidden upper triangle block-wise.
// (Taller blocks pack K and V less often: 128 rows measured 0–6 % faster
// on the bench GPT, but regroup dK/dV's sums over query blocks, which
// moves the low bits of every trained model; left at 32.)
const attnBlock = 32

// blocks calls fn for each query block [i0, i1) with its visible key count n.
func (a *AttentionArgs) blocks(fn func(i0, i1, n int)) {
	for i0 := 0; i0 < a.Tq; i0 += attnBlock {
		i1 := min(i0+attnBlock, a.Tq)
		fn(i0, i1, a.Tk-a.Tq+i1)
	}
}

// strides returns the row strides of the output, Q and K/V.
func (a *AttentionArgs) strides() (hd, ldq, ldkv int) {
	hd, ldq, ldkv = a.H*a.D, a.LdQ, a.LdKV
	if ldq == 0 {
		ldq = hd
	}
	if ldkv == 0 {
		ldkv = a.Hkv * a.D
	}
	return hd, ldq, ldkv
}

func attentionForward(be Backend, a *AttentionArgs) {
	hd, ldq, kd := a.strides()
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
			q := a.Q[b*a.Tq*ldq+h*a.D:]
			k := a.K[b*a.Tk*kd+(h/group)*a.D:]
			v := a.V[b*a.Tk*kd+(h/group)*a.D:]
			out := a.Out[b*a.Tq*hd+h*a.D:]
			a.blocks(func(i0, i1, n int) {
				pb := p[i0*a.Tk:]
				be.GemmSerial(false, true, i1-i0, n, a.D, a.Scale, q[i0*ldq:], ldq, k, kd, 0, pb, a.Tk)
				a.maskedSoftmax(b, p, i0, i1)
				be.GemmSerial(false, false, i1-i0, a.D, n, 1, pb, a.Tk, v, kd, 0, out[i0*hd:], hd)
			})
		}
	})
}

// maskedSoftmax turns scores of rows [i0, i1) of p [Tq, Tk] into
// probabilities in place, writing exact zeros where the mask hides a key.
func (a *AttentionArgs) maskedSoftmax(b int, p []float32, i0, i1 int) {
	for i := i0; i < i1; i++ {
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
	hd, ldq, kd := a.strides()
	group := a.H / a.Hkv
	// One task per (batch, KV head): the query heads of a group all add into
	// the same dK/dV, so they run in order on one goroutine.
	par.For(a.B*a.Hkv, 1, func(lo, hi int) {
		dp := make([]float32, a.Tq*a.Tk)
		for task := lo; task < hi; task++ {
			b, kh := task/a.Hkv, task%a.Hkv
			k, v := a.K[b*a.Tk*kd+kh*a.D:], a.V[b*a.Tk*kd+kh*a.D:]
			var dk, dv []float32
			if a.DK != nil {
				dk = a.DK[b*a.Tk*kd+kh*a.D:]
			}
			if a.DV != nil {
				dv = a.DV[b*a.Tk*kd+kh*a.D:]
			}
			for h := kh * group; h < (kh+1)*group; h++ {
				p := a.P[(b*a.H+h)*a.Tq*a.Tk:][:a.Tq*a.Tk]
				q, do := a.Q[b*a.Tq*ldq+h*a.D:], a.DOut[b*a.Tq*hd+h*a.D:]
				var dq []float32
				if a.DQ != nil {
					dq = a.DQ[b*a.Tq*ldq+h*a.D:]
				}
				a.blocks(func(i0, i1, n int) {
					m, pb, dpb := i1-i0, p[i0*a.Tk:], dp[i0*a.Tk:]
					if dv != nil { // dV[0:n] += P[i0:i1, 0:n]ᵀ·dO[i0:i1]
						be.GemmSerial(true, false, n, a.D, m, 1, pb, a.Tk, do[i0*hd:], hd, 1, dv, kd)
					}
					if dq == nil && dk == nil {
						return
					}
					// dP = dO·Vᵀ, then dS = P ⊙ (dP − Σ_j P·dP), scaled.
					be.GemmSerial(false, true, m, n, a.D, 1, do[i0*hd:], hd, v, kd, 0, dpb, a.Tk)
					softmaxBackwardRows(pb, dpb, m, n, a.Tk, a.Scale)
					if dq != nil {
						be.GemmSerial(false, false, m, a.D, n, 1, dpb, a.Tk, k, kd, 1, dq[i0*ldq:], ldq)
					}
					if dk != nil {
						be.GemmSerial(true, false, n, a.D, m, 1, dpb, a.Tk, q[i0*ldq:], ldq, 1, dk, kd)
					}
				})
			}
		}
	})
}

// softmaxBackwardRows replaces the first cols entries of each of rows rows
// (row stride ld) of dp with scale·P⊙(dP − rowsum(P⊙dP)).
func softmaxBackwardRows(p, dp []float32, rows, cols, ld int, scale float32) {
	for i := 0; i < rows; i++ {
		pr, dr := p[i*ld:i*ld+cols], dp[i*ld:i*ld+cols]
		var s float32
		for j, v := range pr {
			s += v * dr[j]
		}
		for j, v := range pr {
			dr[j] = scale * v * (dr[j] - s)
		}
	}
}
