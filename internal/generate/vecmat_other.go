//go:build !amd64

package generate

// vecMat does y[0:n] += Σ_{i<rows} a[i]·x[i·ldx : i·ldx+n] (portable Go;
// amd64 has assembly kernels).
func vecMat(y, a, x []float32, rows, n, ldx int) {
	if rows == 0 || n == 0 {
		return
	}
	vecMatGo(y[:n], a[:rows], x, ldx)
}
