package rm

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a reward-model run. Start from DefaultConfig.
type Config struct {
	// Model is the backbone (--model.model_name_or_path): a causal LM gets a
	// fresh scalar head; a reward model (*ForSequenceClassification)
	// continues training with its own.
	Model string `flag:"model.model_name_or_path"`
	// Loss is the pairwise loss (--model.loss_type): sigmoid or logexp.
	Loss LossKind `flag:"model.loss_type"`
	// MarginLoss subtracts each pair's "margin" field inside the sigmoid
	// loss (--model.margin_loss_enable).
	MarginLoss bool `flag:"model.margin_loss_enable"`
	// GradientCheckpointing recomputes each transformer block's activations
	// in the backward pass instead of keeping them
	// (--model.gradient_checkpointing_enable): far less memory for about
	// one more forward pass per step, and the same gradients bit for bit,
	// so it is not part of what a resume compares.
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	Data  data.Config
	Train train.Config
}

// DefaultConfig returns OpenRLHF's train_rm defaults on the embedded model.
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	tc.MicroBatchSize, tc.MaxEpochs, tc.Optim.LR = 1, 1, 9e-6
	return Config{
		Model: "stories260K", Loss: Sigmoid,
		Data:  data.Config{MaxLen: 512, ChosenKey: "chosen", RejectedKey: "rejected"},
		Train: tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("rm: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if c.Loss != Sigmoid && c.Loss != LogExp {
		errs = append(errs, fmt.Errorf("rm: %s must be sigmoid or logexp", cfgflag.Flag(&c, &c.Loss)))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate(), c.keys().Validate())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("rm: %w", err)
	}
	return nil
}

// keys returns how preference records are read.
func (c Config) keys() data.PairKeys {
	k := data.PairKeys{PromptKey: c.Data.PromptKey, ChosenKey: c.Data.ChosenKey, RejectedKey: c.Data.RejectedKey}
	if c.MarginLoss {
		k.MarginKey = "margin"
	}
	return k
}
