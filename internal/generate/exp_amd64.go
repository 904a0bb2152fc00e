package generate

import (
	"math"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

//go:noescape
func expShift8(dst, src *float32, n int, m float32, c *float32) int

// expConsts are tensor.Expf's constants as float32 (the same untyped
// constants, rounded the same way), then eight int32 127s for the
// exponent bias. TestExpShift checks the kernel against tensor.Expf bit
// for bit, so a change there is caught.
var expConsts = [20]float32{
	1.44269504088896341, // log2e
	12582912,            // 1.5·2²³
	0.693359375,         // ln2Hi
	-2.12194440e-4,      // ln2Lo
	-87.3365447504019,   // expLo
	1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1,
	1,
	bias, bias, bias, bias, bias, bias, bias, bias,
}

var bias = math.Float32frombits(127)

// expShift writes dst[j] = tensor.Expf(src[j] − m), eight at a time with
// AVX2 where there is no underflow to handle (the rare lanes below Expf's
// range are redone in Go), so the results are bit-identical to Expf.
func expShift(dst, src []float32, m float32) {
	n := len(src)
	_ = dst[n-1]
	j := 0
	if haveFMA && n >= 8 {
		j = n &^ 7
		if expShift8(&dst[0], &src[0], j, m, &expConsts[0]) != 0 {
			for i := 0; i < j; i++ {
				if x := src[i] - m; !(x >= expConsts[4]) {
					dst[i] = tensor.Expf(x)
				}
			}
		}
	}
	for ; j < n; j++ {
		dst[j] = tensor.Expf(src[j] - m)
	}
}
