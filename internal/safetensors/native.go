package safetensors

import (
	"encoding/binary"
	"unsafe"
)

// littleEndian reports whether this machine stores numbers as the format
// does; then F32 data can be read straight into a []float32.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// float32Bytes views dst's memory as bytes (every bit pattern is a valid
// float32, so writing through the view is safe).
func float32Bytes(dst []float32) []byte {
	if len(dst) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst))
}
