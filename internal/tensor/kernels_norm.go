package tensor

import (
	"math"

	"github.com/gorlhf/gorlhf/internal/par"
)

// rowGrain is the smallest number of rows worth a goroutine in row kernels.
const rowGrain = 16

// parallelCols splits a column range for column-wise reductions, so every
// column is summed by one goroutine in row order (deterministic).
func parallelCols(cols int, fn func(c0, c1 int)) { par.For(cols, 64, fn) }

// rmsNormForward: y = x / sqrt(mean(x²) + eps) ⊙ w, per row.
func rmsNormForward(x, w, y, rstd []float32, rows, cols int, eps float32) {
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			var ss float32
			for _, v := range xr {
				ss += v * v
			}
			s := float32(1 / math.Sqrt(float64(ss/float32(cols)+eps)))
			rstd[r] = s
			for c, v := range xr {
				yr[c] = v * s * w[c]
			}
		}
	})
}

// rmsNormBackward: with x̂ = x·rstd,
// dx = rstd·(dy⊙w − x̂·mean(dy⊙w⊙x̂)), dw += Σ_rows dy⊙x̂.
func rmsNormBackward(x, w, rstd, dy, dx, dw []float32, rows, cols int) {
	if dx != nil {
		par.For(rows, rowGrain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				xr, dyr, dxr := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
				s := rstd[r]
				var dot float32
				for c, v := range xr {
					dot += dyr[c] * w[c] * v * s
				}
				dot /= float32(cols)
				for c, v := range xr {
					dxr[c] += s * (dyr[c]*w[c] - v*s*dot)
				}
			}
		})
	}
	if dw != nil {
		parallelCols(cols, func(c0, c1 int) {
			for r := 0; r < rows; r++ {
				s := rstd[r]
				xr, dyr := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols]
				for c := c0; c < c1; c++ {
					dw[c] += dyr[c] * xr[c] * s
				}
			}
		})
	}
}

// layerNormForward: y = (x − μ)/sqrt(σ² + eps) ⊙ w + b, per row (biased σ²).
func layerNormForward(x, w, b, y, mean, rstd []float32, rows, cols int, eps float32) {
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
			m := sum4(xr) / float32(cols)
			vs := sumSqDev4(xr, m)
			s := float32(1 / math.Sqrt(float64(vs/float32(cols)+eps)))
			mean[r], rstd[r] = m, s
			for c, v := range xr {
				o := (v - m) * s * w[c]
				if b != nil {
					o += b[c]
				}
				yr[c] = o
			}
		}
	})
}

// The row sums of LayerNorm run as four interleaved chains (elements
// i ≡ j mod 4 in chain j, the chains added pairwise at the end): one chain
// is bound by the add's latency, four keep the adders busy. The *Serial
// functions in the tests are the one-chain twins they are checked against.

// sum4 returns Σ x in four chains.
func sum4(x []float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// sumSqDev4 returns Σ (x − m)² in four chains.
func sumSqDev4(x []float32, m float32) float32 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		d0, d1, d2, d3 := x[i]-m, x[i+1]-m, x[i+2]-m, x[i+3]-m
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(x); i++ {
		d := x[i] - m
		s0 += d * d
	}
	return (s0 + s1) + (s2 + s3)
}

// layerNormRowSums returns Σ g and Σ g·(x − m)·s with g = dy⊙w, in four
// chains each.
func layerNormRowSums(x, dy, w []float32, m, s float32) (gm, gx float32) {
	var a0, a1, a2, a3, b0, b1, b2, b3 float32
	n := len(x)
	dy, w = dy[:n], w[:n]
	i := 0
	for ; i+4 <= n; i += 4 {
		g0, g1, g2, g3 := dy[i]*w[i], dy[i+1]*w[i+1], dy[i+2]*w[i+2], dy[i+3]*w[i+3]
		a0 += g0
		a1 += g1
		a2 += g2
		a3 += g3
		b0 += g0 * (x[i] - m) * s
		b1 += g1 * (x[i+1] - m) * s
		b2 += g2 * (x[i+2] - m) * s
		b3 += g3 * (x[i+3] - m) * s
	}
	for ; i < n; i++ {
		g := dy[i] * w[i]
		a0 += g
		b0 += g * (x[i] - m) * s
	}
	return (a0 + a1) + (a2 + a3), (b0 + b1) + (b2 + b3)
}

// layerNormBackward: with x̂ = (x−μ)·rstd and g = dy⊙w,
// dx = rstd·(g − mean(g) − x̂·mean(g⊙x̂)), dw += Σ dy⊙x̂, db += Σ dy.
func layerNormBackward(x, w, mean, rstd, dy, dx, dw, db []float32, rows, cols int) {
	if dx != nil {
		par.For(rows, rowGrain, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				xr, dyr, dxr := x[r*cols:(r+1)*cols], dy[r*cols:(r+1)*cols], dx[r*cols:(r+1)*cols]
				m, s := mean[r], rstd[r]
				gm, gx := layerNormRowSums(xr, dyr, w, m, s)
				gm /= float32(cols)
				gx /= float32(cols)
				for c, v := range xr {
					dxr[c] += s * (dyr[c]*w[c] - gm - (v-m)*s*gx)
				}
			}
		})
	}
	if dw == nil && db == nil {
		return
	}
	parallelCols(cols, func(c0, c1 int) {
		for r := 0; r < rows; r++ {
			xr, dyr := x[r*cols+c0:r*cols+c1], dy[r*cols+c0:r*cols+c1]
			if dw != nil {
				m, s, dwr := mean[r], rstd[r], dw[c0:c1]
				for c, g := range dyr {
					dwr[c] += g * (xr[c] - m) * s
				}
			}
			if db != nil {
				addTo(db[c0:c1], dyr)
			}
		}
	})
}

// tokenLogProbsForward: out[n] = z[n,t] − logsumexp(z[n]), lse[n] saved.
func tokenLogProbsForward(logits []float32, targets []int32, out, lse []float32, rows, vocab int) {
	par.For(rows, rowGrain, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			z := logits[r*vocab : (r+1)*vocab]
			l := logSumExp(z)
			lse[r] = l
			if t := targets[r]; t >= 0 {
				out[r] = z[t] - l
			} else {
				out[r] = 0
			}
		}
	})
}

// tokenLogProbsBackward: dz[n,j] += g[n]·(1[j=t] − e^{z[n,j] − lse[n]}).
func tokenLogProbsBackward(logits []float32, targets []int32, lse, dout, dlogits []float32, rows, vocab int) {
	par.For(rows, rowGrain, func(lo, hi int) {
		p := make([]float32, vocab) // softmax row scratch
		for r := lo; r < hi; r++ {
			t, g := targets[r], dout[r]
			if t < 0 || g == 0 {
				continue
			}
			dz := dlogits[r*vocab : (r+1)*vocab]
			expShift(logits[r*vocab:(r+1)*vocab], p, lse[r])
			for j, e := range p {
				dz[j] -= g * e
			}
			dz[t] += g
		}
	})
}

// logSumExp returns log Σ e^{z_j}, shifted by the max for stability.
func logSumExp(z []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range z {
		m = max(m, v)
	}
	if math.IsInf(float64(m), -1) {
		return m
	}
	return m + Logf(expShift(z, nil, m))
}

// parallelRows splits a row loop across threads.
func parallelRows(rows int, fn func(lo, hi int)) { par.For(rows, rowGrain, fn) }
