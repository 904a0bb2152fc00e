package rm

import (
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// LossKind is the pairwise reward-model loss (--model.loss_type).
type LossKind string

const (
	// Sigmoid is Bradley–Terry: −log σ(r_c − r_r − m), with an optional
	// per-pair margin m (OpenRLHF's PairWiseLoss).
	Sigmoid LossKind = "sigmoid"
	// LogExp is log(1 + exp(r_r − r_c)) (Askell et al. 2021; OpenRLHF's
	// LogExpLoss, which takes no margin). It equals Sigmoid without a
	// margin; it is computed in the same overflow-free form.
	LogExp LossKind = "logexp"
)

// String implements flag.Value.
func (k LossKind) String() string { return string(k) }

// Set implements flag.Value.
func (k *LossKind) Set(s string) error {
	switch LossKind(s) {
	case Sigmoid, LogExp:
		*k = LossKind(s)
		return nil
	}
	return fmt.Errorf("unknown reward loss %q (want sigmoid or logexp)", s)
}

// Loss returns Σ_p ℓ(r_c[p], r_r[p], m[p]) / norm for chosen and rejected
// rewards [P] (norm is the number of pairs in the whole optimizer step, so
// micro-batch losses add up to the step's mean). margin may be nil (no
// margin); LogExp ignores it.
func Loss(tp *tensor.Tape, kind LossKind, chosen, rejected *tensor.Tensor, margin []float32, norm int) *tensor.Tensor {
	diff := tensor.Sub(tp, chosen, rejected)
	if kind == Sigmoid && margin != nil {
		diff = tensor.Sub(tp, diff, tensor.FromSlice(margin, len(margin)))
	}
	return tensor.Scale(tp, tensor.Sum(tp, tensor.LogSigmoid(tp, diff)), -1/float32(max(norm, 1)))
}
