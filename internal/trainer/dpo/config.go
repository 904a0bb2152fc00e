package dpo

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a DPO run. Start from DefaultConfig.
type Config struct {
	// Model is the policy to train (--model.model_name_or_path).
	Model string `flag:"model.model_name_or_path"`
	// Ref is the frozen reference (--ref.model_name_or_path); "" = a
	// frozen copy of Model as loaded.
	Ref string `flag:"ref.model_name_or_path"`
	// Loss is β, IPO and the cDPO label smoothing (--model.beta,
	// --model.ipo_enable, --model.label_smoothing).
	Loss LossConfig
	// NLLCoef weighs the NLL term on the chosen responses
	// (--model.nll_loss_coef); 0 = off.
	NLLCoef float64 `flag:"model.nll_loss_coef"`
	// GradientCheckpointing recomputes the policy's transformer block
	// activations in the backward pass instead of keeping them
	// (--model.gradient_checkpointing_enable; the reference runs no
	// backward pass): far less memory for about one more forward pass per
	// step, and the same gradients bit for bit, so it is not part of what
	// a resume compares.
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	Data  data.Config
	Train train.Config
}

// DefaultConfig returns OpenRLHF's train_dpo defaults on the embedded model.
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	tc.MaxEpochs, tc.Optim.LR = 1, 1e-5
	return Config{
		Model: "stories260K",
		Loss:  LossConfig{Beta: 0.1},
		Data:  data.Config{MaxLen: 512, ChosenKey: "chosen", RejectedKey: "rejected"},
		Train: tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("dpo: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if !(c.Loss.Beta > 0) {
		errs = append(errs, fmt.Errorf("dpo: %s must be > 0, got %g", cfgflag.Flag(&c, &c.Loss.Beta), c.Loss.Beta))
	}
	if c.Loss.LabelSmoothing < 0 || c.Loss.LabelSmoothing >= 0.5 {
		errs = append(errs, fmt.Errorf("dpo: %s must be in [0, 0.5), got %g", cfgflag.Flag(&c, &c.Loss.LabelSmoothing), c.Loss.LabelSmoothing))
	}
	if c.Loss.IPO && c.Loss.LabelSmoothing != 0 {
		errs = append(errs, errors.New("dpo: IPO takes no label smoothing"))
	}
	if c.NLLCoef < 0 {
		errs = append(errs, fmt.Errorf("dpo: %s must be ≥ 0, got %g", cfgflag.Flag(&c, &c.NLLCoef), c.NLLCoef))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate(), c.keys().Validate())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("dpo: %w", err)
	}
	return nil
}

// keys returns how preference records are read.
func (c Config) keys() data.PairKeys {
	return data.PairKeys{PromptKey: c.Data.PromptKey, ChosenKey: c.Data.ChosenKey, RejectedKey: c.Data.RejectedKey, DPO: true}
}
