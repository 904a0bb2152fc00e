package gemm

import "fmt"

// checkArgs panics with a message naming the shapes and strides when the
// arguments of an Sgemm call are inconsistent. Bad shapes are programmer
// errors, so they panic instead of returning an error.
func checkArgs(kernel string, transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm %s: negative size m=%d n=%d k=%d", kernel, m, n, k))
	}
	// Stored shapes: A is m×k (k×m when transposed), B is k×n (n×k).
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	checkMatrix(kernel, "A", transA, ar, ac, a, lda, m, n, k)
	checkMatrix(kernel, "B", transB, br, bc, b, ldb, m, n, k)
	checkMatrix(kernel, "C", false, m, n, c, ldc, m, n, k)
}

// checkMatrix checks one stored rows×cols matrix with row stride ld.
func checkMatrix(kernel, name string, trans bool, rows, cols int, x []float32, ld, m, n, k int) {
	if ld < max(1, cols) {
		panic(fmt.Sprintf("gemm %s: %s stored %dx%d (trans=%v) needs stride >= %d, got %d (m=%d n=%d k=%d)",
			kernel, name, rows, cols, trans, max(1, cols), ld, m, n, k))
	}
	if need := matrixLen(rows, cols, ld); len(x) < need {
		panic(fmt.Sprintf("gemm %s: %s stored %dx%d (trans=%v) with stride %d needs %d elements, got %d (m=%d n=%d k=%d)",
			kernel, name, rows, cols, trans, ld, need, len(x), m, n, k))
	}
}

// matrixLen is the number of elements a rows×cols matrix with row stride ld
// spans: the last row need not be padded to the full stride.
func matrixLen(rows, cols, ld int) int {
	if rows == 0 || cols == 0 {
		return 0
	}
	return (rows-1)*ld + cols
}

// scaleC sets C = beta·C on its m×n window; beta == 0 writes zeros so that
// NaN or Inf in the old contents do not survive.
func scaleC(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := range m {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
