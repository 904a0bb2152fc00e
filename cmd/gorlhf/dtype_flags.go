package main

import (
	"flag"

	"github.com/gorlhf/gorlhf/internal/half"
)

// dtypeFlag binds --dtype to a half.DType.
type dtypeFlag struct{ d *half.DType }

func (f dtypeFlag) String() string {
	if f.d == nil {
		return half.F32.String()
	}
	return f.d.String()
}

func (f dtypeFlag) Set(s string) error {
	d, err := half.ParseDType(s)
	if err != nil {
		return err
	}
	*f.d = d
	return nil
}

// registerDType adds --dtype (vLLM's name) for the rollout engine's
// weight format.
func registerDType(fs *flag.FlagSet, d *half.DType) {
	fs.Var(dtypeFlag{d}, "dtype", "weight format for decoding: f32, bf16 or f16 (bf16/f16 keep a 16-bit copy of the weight matrices and widen it inside the kernels: about half the memory traffic per token)")
}
