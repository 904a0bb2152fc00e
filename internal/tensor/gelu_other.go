//go:build !amd64

package tensor

func geluForwardSIMD(x, y, th []float32) int { return 0 }
