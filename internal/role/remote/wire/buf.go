package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
)

// encoder appends to buf; encoding cannot fail once a codec compiled.
type encoder struct{ buf []byte }

// grow makes room for n more bytes, at least doubling the capacity
// (slices.Grow would reallocate to the exact size, once per row).
func (e *encoder) grow(n int) {
	if cap(e.buf)-len(e.buf) >= n {
		return
	}
	b := make([]byte, len(e.buf), max(2*cap(e.buf), len(e.buf)+n, 512))
	copy(b, e.buf)
	e.buf = b
}

func (e *encoder) uvarint(x uint64) { e.buf = binary.AppendUvarint(e.buf, x) }
func (e *encoder) varint(x int64)   { e.buf = binary.AppendVarint(e.buf, x) }
func (e *encoder) u32(x uint32)     { e.buf = binary.LittleEndian.AppendUint32(e.buf, x) }
func (e *encoder) u64(x uint64)     { e.buf = binary.LittleEndian.AppendUint64(e.buf, x) }

// decoder consumes buf. The first error sticks: later reads return zeros
// and leave it, so codecs check err only where they loop.
type decoder struct {
	buf []byte
	err error
}

var errShort = errors.New("unexpected end of data")

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.buf) {
		d.err = errShort
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *decoder) byte() byte {
	b := d.take(1)
	if b == nil {
		return 0xff // any invalid marker; err is set
	}
	return b[0]
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return x
}

func (d *decoder) u32() uint32 {
	if b := d.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if b := d.take(8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// length reads a slice or map header: (length+1), or 0 for nil. A length
// whose elements, of at least each bytes, cannot fit in the bytes
// left is refused, so a corrupt header cannot make the decoder allocate.
func (d *decoder) length(each int) (n int, isNil bool) {
	x := d.uvarint()
	if d.err != nil || x == 0 {
		return 0, true
	}
	if x-1 > uint64(len(d.buf)/each) {
		d.fail(fmt.Sprintf("length %d with %d bytes left", x-1, len(d.buf)))
		return 0, true
	}
	return int(x - 1), false
}

// --- bulk slices: one bounds check, no reflection per element

// bulkCodecs are the slice codecs keyed by element type (exact types:
// a named element type takes the general path).
var bulkCodecs = map[reflect.Type]codec{
	reflect.TypeFor[float32](): bulk(4, func(b []byte, s []float32) []byte {
		for _, x := range s {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
		return b
	}, func(s []float32, b []byte) {
		for i := range s {
			s[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}),
	reflect.TypeFor[int32](): bulk(4, func(b []byte, s []int32) []byte {
		for _, x := range s {
			b = binary.LittleEndian.AppendUint32(b, uint32(x))
		}
		return b
	}, func(s []int32, b []byte) {
		for i := range s {
			s[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
		}
	}),
	reflect.TypeFor[bool](): bulk(1, func(b []byte, s []bool) []byte {
		for _, x := range s {
			if x {
				b = append(b, 1)
			} else {
				b = append(b, 0)
			}
		}
		return b
	}, func(s []bool, b []byte) {
		for i := range s {
			s[i] = b[i] != 0
		}
	}),
	reflect.TypeFor[byte](): bulk(1, func(b []byte, s []byte) []byte { return append(b, s...) },
		func(s []byte, b []byte) { copy(s, b) }),
}

// bulk returns a codec for slices (of any slice type whose element is
// E) of fixed-size elements, size bytes each, through put and get.
func bulk[E any](size int, put func([]byte, []E) []byte, get func([]E, []byte)) codec {
	plain := reflect.TypeFor[[]E]()
	return codec{
		min: 1,
		enc: func(e *encoder, v reflect.Value) {
			if v.IsNil() {
				e.uvarint(0)
				return
			}
			s := v.Convert(plain).Interface().([]E)
			e.uvarint(uint64(len(s)) + 1)
			e.grow(size * len(s))
			e.buf = put(e.buf, s)
		},
		dec: func(d *decoder, v reflect.Value) {
			n, isNil := d.length(size)
			if isNil || d.err != nil {
				v.SetZero()
				return
			}
			b := d.take(size * n)
			if b == nil {
				return
			}
			s := make([]E, n)
			get(s, b)
			v.Set(reflect.ValueOf(s).Convert(v.Type()))
		},
	}
}
