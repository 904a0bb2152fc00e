package gemm

// refKernel is the naive triple loop. It is slow on purpose: it has no
// blocking, packing or parallelism to get wrong, so every fast kernel is
// tested against it.
type refKernel struct{}

func (refKernel) Name() string { return "ref" }

func (r refKernel) Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	r.SgemmSerial(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

func (refKernel) SgemmSerial(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkArgs("ref", transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	for i := range m {
		for j := range n {
			var sum float32
			for p := range k {
				sum += at(a, lda, transA, i, p) * at(b, ldb, transB, p, j)
			}
			if beta == 0 {
				c[i*ldc+j] = alpha * sum
			} else {
				c[i*ldc+j] = alpha*sum + beta*c[i*ldc+j]
			}
		}
	}
}

// at returns op(X)[i][j] for a row-major X with stride ld.
func at(x []float32, ld int, trans bool, i, j int) float32 {
	if trans {
		return x[j*ld+i]
	}
	return x[i*ld+j]
}
