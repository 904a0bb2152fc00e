//go:build !amd64

package half

// fusedTail is false: the portable loop is the only kernel, and the
// compiler fuses its multiply-adds where the platform does.
const fusedTail = false

// useSIMD has no effect here: there are no assembly kernels.
var useSIMD = false

// ISA names the kernels Mul uses here.
func ISA() string { return "go" }

func kernelsFor(DType) *kernelSet { return &portable }
