//go:build noblas

package gemm

const noblasTag = true
