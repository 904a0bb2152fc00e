package gemm

import "unsafe"

// packA copies rows [i0, i0+rows) × k range [p0, p0+kc) of op(A) into dst
// as kc groups of mr values (one per row), padding missing rows with zeros
// so the micro-kernel never needs an edge case.
func packA(dst, a []float32, lda int, transA bool, i0, rows, p0, kc, mr int) {
	dst = dst[:kc*mr]
	if transA {
		// A is stored k×m: each k step is already a contiguous run of rows.
		for p := range kc {
			src := a[(p0+p)*lda+i0:]
			d := dst[p*mr : p*mr+mr]
			copy(d, src[:rows])
			clear(d[rows:])
		}
		return
	}
	for r := range rows {
		src := a[(i0+r)*lda+p0:]
		src = src[:kc]
		for p, v := range src {
			dst[p*mr+r] = v
		}
	}
	if rows < mr {
		for p := range kc {
			clear(dst[p*mr+rows : p*mr+mr])
		}
	}
}

// packB copies columns [j0, j0+cols) × k range [p0, p0+kc) of op(B) into
// dst as kc groups of nr values, padding missing columns with zeros.
func packB(dst, b []float32, ldb int, transB bool, p0, kc, j0, cols, nr int) {
	dst = dst[:kc*nr]
	if !transB {
		for p := range kc {
			d := dst[p*nr : p*nr+nr]
			copy(d, b[(p0+p)*ldb+j0:][:cols])
			clear(d[cols:])
		}
		return
	}
	// B is stored n×k: transpose each stored row into a column of the panel.
	for c := range cols {
		src := b[(j0+c)*ldb+p0:]
		src = src[:kc]
		for p, v := range src {
			dst[p*nr+c] = v
		}
	}
	if cols < nr {
		for p := range kc {
			clear(dst[p*nr+cols : p*nr+nr])
		}
	}
}

// alignedFloats returns n floats starting on a 64-byte boundary.
func alignedFloats(n int) []float32 {
	raw := make([]float32, n+16)
	off := 0
	if r := uintptr(unsafe.Pointer(&raw[0])) % 64; r != 0 {
		off = int(64-r) / 4
	}
	return raw[off : off+n : off+n]
}
