//go:build !amd64

package generate

import "github.com/gorlhf/gorlhf/internal/tensor"

// expShift writes dst[j] = tensor.Expf(src[j] − m).
func expShift(dst, src []float32, m float32) {
	for j, v := range src {
		dst[j] = tensor.Expf(v - m)
	}
}
