package generate

// vecMatGo is the portable vecMat: y[j] += Σ_i a[i]·x[i·ldx+j] for j <
// len(y), i < len(a). It is also the twin the assembly is tested against.
func vecMatGo(y, a, x []float32, ldx int) {
	n := len(y)
	for i, ai := range a {
		row := x[i*ldx : i*ldx+n]
		for j, v := range row {
			y[j] += ai * v
		}
	}
}
