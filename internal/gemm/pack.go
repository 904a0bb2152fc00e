package gemm

import "unsafe"

// Packing copies a block of A or B into the order the micro-kernel reads:
// k-major groups of mr (A) or nr (B) values. Two of the four cases are plain
// row copies; the other two (A untransposed, B transposed) are transposes,
// which the SIMD kernels do with an 8×8 AVX transpose (transpose8Strip) and
// the pure Go kernel with a scalar loop.

// packA copies rows [i0, i0+rows) × k range [p0, p0+kc) of op(A) into dst
// as kc groups of mr values (one per row), padding missing rows with zeros
// so the micro-kernel never needs an edge case.
func packA(dst, a []float32, lda int, transA bool, i0, rows, p0, kc, mr int, asm bool) {
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
	done := 0 // k steps already packed
	if asm && rows == mr && mr >= 8 && kc >= 8 {
		// Transpose 8 rows at a time; when mr is not a multiple of 8 the
		// last group overlaps the previous one and rewrites equal values.
		for r0 := 0; ; r0 += 8 {
			r0 = min(r0, mr-8)
			transposeRows(dst[r0:], mr, a[(i0+r0)*lda+p0:], lda, kc)
			if r0+8 == mr {
				break
			}
		}
		done = kc &^ 7
	}
	if mr == 6 && rows == 6 && done == 0 { // the AVX2 tile: too short for the 8×8 transposes
		packA6(dst, a, lda, i0, p0, kc)
		return
	}
	for r := range rows {
		src := a[(i0+r)*lda+p0+done : (i0+r)*lda+p0+kc]
		for p, v := range src {
			dst[(done+p)*mr+r] = v
		}
	}
	if rows < mr {
		for p := range kc {
			clear(dst[p*mr+rows : p*mr+mr])
		}
	}
}

// packA6 is packA of six untransposed rows: one pass over the k steps,
// each writing a group of six from six row slices the compiler has
// bounds-checked once.
func packA6(dst, a []float32, lda, i0, p0, kc int) {
	r0 := a[(i0+0)*lda+p0:][:kc]
	r1 := a[(i0+1)*lda+p0:][:kc]
	r2 := a[(i0+2)*lda+p0:][:kc]
	r3 := a[(i0+3)*lda+p0:][:kc]
	r4 := a[(i0+4)*lda+p0:][:kc]
	r5 := a[(i0+5)*lda+p0:][:kc]
	dst = dst[:6*kc]
	for p := range kc {
		d := (*[6]float32)(dst[6*p:])
		d[0], d[1], d[2], d[3], d[4], d[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
	}
}

// packB copies columns [j0, j0+cols) × k range [p0, p0+kc) of op(B) into
// dst as kc groups of nr values, padding missing columns with zeros.
func packB(dst, b []float32, ldb int, transB bool, p0, kc, j0, cols, nr int, asm bool) {
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
	c0 := 0 // columns already packed
	if asm && kc >= 8 {
		for ; c0+8 <= cols; c0 += 8 {
			transposeRows(dst[c0:], nr, b[(j0+c0)*ldb+p0:], ldb, kc)
		}
	}
	for c := c0; c < cols; c++ {
		src := b[(j0+c)*ldb+p0 : (j0+c)*ldb+p0+kc]
		for p, v := range src {
			dst[p*nr+c] = v
		}
	}
	if c0 > 0 && kc&7 != 0 {
		// The transposes stopped at a multiple of 8 k steps.
		for c := range c0 {
			src := b[(j0+c)*ldb+p0 : (j0+c)*ldb+p0+kc]
			for p := kc &^ 7; p < kc; p++ {
				dst[p*nr+c] = src[p]
			}
		}
	}
	if cols < nr {
		for p := range kc {
			clear(dst[p*nr+cols : p*nr+nr])
		}
	}
}

// packBRows packs k steps [lo, hi) of every panel of an untransposed B
// block (columns [j0, j0+nc), k range from p0, panels of kc×nr): one
// sequential pass along each stored row of B, which the hardware prefetcher
// follows, instead of one short strided read per row and panel.
func packBRows(dst, b []float32, ldb, p0, kc, j0, nc, nr, lo, hi int) {
	panels := ceilDiv(nc, nr)
	for p := lo; p < hi; p++ {
		row := b[(p0+p)*ldb+j0 : (p0+p)*ldb+j0+nc]
		for jp := range panels {
			d := dst[jp*kc*nr+p*nr : jp*kc*nr+p*nr+nr]
			n := copy(d, row[jp*nr:])
			clear(d[n:])
		}
	}
}

// transposeRows writes dst[p*ldd + j] = src[j*lds + p] for 8 rows j and the
// first kc&^7 columns p, with the AVX transpose. Callers handle the rest.
func transposeRows(dst []float32, ldd int, src []float32, lds, kc int) {
	n := kc / 8
	_ = src[7*lds+8*n-1]
	_ = dst[(8*n-1)*ldd+7]
	transpose8Strip(&src[0], lds, &dst[0], ldd, n)
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
