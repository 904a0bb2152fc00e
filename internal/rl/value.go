package rl

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/tensor"
)

// ValueLossConfig configures the critic's loss (OpenRLHF --critic.value_clip).
type ValueLossConfig struct {
	// Clip is ε_v: new values may move at most ε_v from the rollout's values
	// before the clipped term takes over. 0 disables clipping (OpenRLHF's
	// None); OpenRLHF's CLI default is 0.5.
	Clip float64 `flag:"value_clip"`
	// Aggregation reduces the per-token loss; default token_mean.
	Aggregation Aggregation
}

// DefaultValueLossConfig returns ε_v = 0.5 with token-mean aggregation.
func DefaultValueLossConfig() ValueLossConfig {
	return ValueLossConfig{Clip: 0.5, Aggregation: TokenMean}
}

// Validate checks ranges and the aggregation.
func (c ValueLossConfig) Validate() error {
	var errs []error
	if !(c.Clip >= 0) {
		errs = append(errs, fmt.Errorf("rl: value clip must be ≥ 0 (0 disables it), got %g", c.Clip))
	}
	if err := checkEnum(c.Aggregation, "loss aggregation", aggregations); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValueMetrics describes one evaluation of ValueLoss, over valid tokens.
type ValueMetrics struct {
	Loss      float64 // the scalar loss
	ClipFrac  float64 // share of tokens where the clipped term is the larger one
	ValueMean float64 // mean of the new values
}

// ValueLoss returns the critic's clipped regression loss (OpenRLHF's
// ValueLoss, after the PPO2 baselines) and its metrics:
//
//	V^clip = V_old + clamp(V − V_old, −ε_v, ε_v)
//	loss   = ½·Aggregate(max((V^clip − R)², (V − R)²), mask)
//
// or ½·Aggregate((V − R)², mask) when Clip is 0. values [B, A] are the
// critic's outputs (requiring grad); oldValues, returns and mask [B, A] are
// constants from the experience.
func ValueLoss(tp *tensor.Tape, cfg ValueLossConfig, values, oldValues, returns, mask *tensor.Tensor, norm LossNorm) (*tensor.Tensor, ValueMetrics) {
	mustBA("ValueLoss", mask, values, oldValues, returns)
	unclipped := tensor.Square(tp, tensor.Sub(tp, values, returns))
	perToken := unclipped
	var clipped *tensor.Tensor
	if cfg.Clip > 0 {
		eps := float32(cfg.Clip)
		vc := tensor.Add(tp, oldValues, tensor.Clamp(tp, tensor.Sub(tp, values, oldValues), -eps, eps))
		clipped = tensor.Square(tp, tensor.Sub(tp, vc, returns))
		perToken = tensor.Maximum(tp, clipped, unclipped)
	}
	loss := tensor.Scale(tp, Aggregate(tp, perToken, mask, cfg.Aggregation, norm), 0.5)
	vm := ValueMetrics{Loss: float64(loss.Item())}
	if clipped != nil {
		vm.ClipFrac = maskedFrac(mask.Data, func(i int) bool { return clipped.Data[i] > unclipped.Data[i] })
	}
	vm.ValueMean, _, _ = maskedStats(values.Data, mask.Data)
	return loss, vm
}
