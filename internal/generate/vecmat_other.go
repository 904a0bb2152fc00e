//go:build !amd64

package generate

// haveFMA is false: there are no assembly kernels on this platform.
const haveFMA = false

// vecMat does y[0:n] = fma-chain over i of a[i]·x[i·ldx : i·ldx+n],
// starting from y (portable Go; amd64 has assembly kernels).
func vecMat(y, a, x []float32, rows, n, ldx int) {
	if rows == 0 || n == 0 {
		return
	}
	vecMatGo(y[:n], a[:rows], x, ldx)
}

// vecMatStrips has no portable version: callers go block by block.
func vecMatStrips(y, a []float32, xs *[4][]float32, rows, ldx int) bool { return false }
