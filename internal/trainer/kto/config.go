package kto

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a KTO run. Start from DefaultConfig.
type Config struct {
	// Model is the policy to train (--model.model_name_or_path).
	Model string `flag:"model.model_name_or_path"`
	// Ref is the frozen reference (--ref.model_name_or_path); "" = a
	// frozen copy of Model as loaded.
	Ref string `flag:"ref.model_name_or_path"`
	// Loss is β and the desirable/undesirable weights.
	Loss LossConfig
	// LabelKey names the label field: true/1 desirable, false/0
	// undesirable (OpenRLHF's --label_key).
	LabelKey string `flag:"data.label_key"`
	// GradientCheckpointing recomputes the policy's transformer block
	// activations in the backward pass (--model.gradient_checkpointing_enable;
	// same gradients bit for bit, so not part of what a resume compares).
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	Data  data.Config
	Train train.Config
}

// DefaultConfig returns OpenRLHF v0.8's train_kto defaults on the
// embedded model (β = 0.01, both weights 1, --input_key input,
// --label_key label, the "User: {}\nAssistant: " template).
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	tc.MaxEpochs, tc.Optim.LR = 1, 1e-5
	return Config{
		Model:    "stories260K",
		Loss:     LossConfig{Beta: 0.01, DesirableWeight: 1, UndesirableWeight: 1},
		LabelKey: "label",
		Data:     data.Config{MaxLen: 2048, InputKey: "input", InputTemplate: "User: {}\nAssistant: "},
		Train:    tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("kto: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if !(c.Loss.Beta > 0) {
		errs = append(errs, fmt.Errorf("kto: %s must be > 0, got %g", cfgflag.Flag(&c, &c.Loss.Beta), c.Loss.Beta))
	}
	if c.Loss.DesirableWeight < 0 || c.Loss.UndesirableWeight < 0 {
		errs = append(errs, fmt.Errorf("kto: %s and %s must be ≥ 0, got %g and %g",
			cfgflag.Flag(&c, &c.Loss.DesirableWeight), cfgflag.Flag(&c, &c.Loss.UndesirableWeight),
			c.Loss.DesirableWeight, c.Loss.UndesirableWeight))
	}
	if c.Train.MicroBatchSize < 2 {
		// OpenRLHF: "make sure local batch size >= 2 (to pack unmatched examples)"
		errs = append(errs, fmt.Errorf("kto: %s must be ≥ 2 (the KL estimate pairs each prompt with another sample's response), got %d",
			cfgflag.Flag(&c, &c.Train.MicroBatchSize), c.Train.MicroBatchSize))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate(), c.keys().Validate(c.Data.ApplyChatTemplate))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("kto: %w", err)
	}
	return nil
}

// keys returns how records are read.
func (c Config) keys() data.UnpairedKeys {
	return data.UnpairedKeys{InputKey: c.Data.InputKey, OutputKey: c.Data.OutputKey, LabelKey: c.LabelKey}
}
