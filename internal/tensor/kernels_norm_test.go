package tensor

import (
	"math"
	"testing"
)

// sumSerial, sumSqDevSerial and layerNormRowSumsSerial are the one-chain
// twins of the four-chain row sums.
func sumSerial(x []float32) (s float32) {
	for _, v := range x {
		s += v
	}
	return s
}

func sumSqDevSerial(x []float32, m float32) (s float32) {
	for _, v := range x {
		d := v - m
		s += d * d
	}
	return s
}

func layerNormRowSumsSerial(x, dy, w []float32, m, s float32) (gm, gx float32) {
	for c, v := range x {
		g := dy[c] * w[c]
		gm += g
		gx += g * (v - m) * s
	}
	return gm, gx
}

// TestLayerNormRowSums_SerialTwin: the four-chain sums agree with the
// one-chain twins to float32 rounding (a reordered sum of n terms differs
// by a few ulps of the sum of |terms|), on lengths around the 4-step.
func TestLayerNormRowSums_SerialTwin(t *testing.T) {
	r := NewRand(7)
	near := func(got, want, scale float32) bool {
		return math.Abs(float64(got-want)) <= 1e-6*float64(scale)+1e-30
	}
	for n := 1; n <= 300; n += 7 {
		x, dy, w := make([]float32, n), make([]float32, n), make([]float32, n)
		var abs, absG, absGX float32
		for i := range x {
			x[i], dy[i], w[i] = float32(r.NormFloat64()*3+1), float32(r.NormFloat64()), float32(r.NormFloat64())
			abs += float32(math.Abs(float64(x[i])))
		}
		m := sumSerial(x) / float32(n)
		for i := range x {
			d := x[i] - m
			g := dy[i] * w[i]
			absG += float32(math.Abs(float64(g)))
			absGX += float32(math.Abs(float64(g * d)))
		}
		if got, want := sum4(x), sumSerial(x); !near(got, want, abs) {
			t.Fatalf("n=%d: sum4 %v, serial %v", n, got, want)
		}
		if got, want := sumSqDev4(x, m), sumSqDevSerial(x, m); !near(got, want, want) {
			t.Fatalf("n=%d: sumSqDev4 %v, serial %v", n, got, want)
		}
		gm, gx := layerNormRowSums(x, dy, w, m, 0.7)
		wm, wx := layerNormRowSumsSerial(x, dy, w, m, 0.7)
		if !near(gm, wm, absG) || !near(gx, wx, absGX) {
			t.Fatalf("n=%d: row sums %v, %v; serial %v, %v", n, gm, gx, wm, wx)
		}
	}
}
