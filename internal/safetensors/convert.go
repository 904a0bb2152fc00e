package safetensors

import (
	"encoding/binary"
	"math"

	"github.com/gorlhf/gorlhf/internal/par"
)

// convertGrain is the number of elements per worker chunk: large enough
// that small tensors convert on the calling goroutine.
const convertGrain = 1 << 16

// convert decodes little-endian elements of a float dtype from src into dst.
// len(src) must be len(dst) × dt.Size(); the header validation guarantees it.
func convert(dst []float32, src []byte, dt DType) {
	par.For(len(dst), convertGrain, func(lo, hi int) {
		convertRange(dst[lo:hi], src[lo*dt.Size():hi*dt.Size()], dt)
	})
}

func convertRange(dst []float32, src []byte, dt DType) {
	le := binary.LittleEndian
	switch dt {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(le.Uint32(src[4*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(le.Uint16(src[2*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(le.Uint64(src[8*i:])))
		}
	default:
		panic("safetensors: convert called with non-float dtype " + string(dt))
	}
}
