package kd

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a knowledge-distillation run. Start from
// DefaultConfig.
type Config struct {
	// Model is the student to train (--model.model_name_or_path).
	Model string `flag:"model.model_name_or_path"`
	// Teacher is the frozen teacher (--teacher.model_name_or_path,
	// OpenRLHF's --teacher_model); it must use the student's tokenizer.
	Teacher string `flag:"teacher.model_name_or_path"`
	// KDCoef mixes the losses: (1 − c)·SFT + c·distillation
	// (--model.kd_coef, OpenRLHF's --kd_coef); 0 is plain SFT, 1 pure
	// distillation.
	KDCoef float64 `flag:"model.kd_coef"`
	// PretrainMode trains on every token of --data.input_key
	// (--model.pretrain_mode_enable).
	PretrainMode bool `flag:"model.pretrain_mode_enable"`
	// GradientCheckpointing recomputes the student's transformer block
	// activations in the backward pass (--model.gradient_checkpointing_enable;
	// same gradients bit for bit, so not part of what a resume compares).
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	Data  data.Config
	Train train.Config
}

// DefaultConfig returns OpenRLHF v0.8's train_kd defaults on the embedded
// model (kd_coef 0.4, learning rate 5e-6, one epoch, --input_key input,
// --output_key output, the "User: {}\nAssistant: " template).
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	tc.MaxEpochs, tc.Optim.LR = 1, 5e-6
	return Config{
		Model:  "stories260K",
		KDCoef: 0.4,
		Data:   data.Config{MaxLen: 2048, InputKey: "input", OutputKey: "output", InputTemplate: "User: {}\nAssistant: "},
		Train:  tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("kd: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if c.Teacher == "" {
		errs = append(errs, fmt.Errorf("kd: %s is required", cfgflag.Flag(&c, &c.Teacher)))
	}
	if c.KDCoef < 0 || c.KDCoef > 1 {
		errs = append(errs, fmt.Errorf("kd: %s must be in [0, 1], got %g", cfgflag.Flag(&c, &c.KDCoef), c.KDCoef))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate(), c.keys().Validate(c.Data.ApplyChatTemplate))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("kd: %w", err)
	}
	return nil
}

// keys returns how records are read.
func (c Config) keys() data.SFTKeys {
	return data.SFTKeys{InputKey: c.Data.InputKey, OutputKey: c.Data.OutputKey, Multiturn: c.Data.Multiturn, PretrainMode: c.PretrainMode}
}
