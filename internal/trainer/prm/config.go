package prm

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of a process-reward-model run. Start from
// DefaultConfig.
type Config struct {
	// Model is the causal LM to train (--model.model_name_or_path): its LM
	// head's logits at each step tag are the step's reward logits.
	Model string `flag:"model.model_name_or_path"`
	// PlaceholderToken is the step tag (--placeholder_token), e.g. "ки":
	// it ends every step of an input, and it must be one token.
	PlaceholderToken string `flag:"placeholder_token"`
	// RewardTokens restrict the classifier to these tokens' logits
	// (--reward_tokens, e.g. "+,-"); the first is the positive one, the
	// second the negative one. Empty: hard labels over the whole
	// vocabulary. Soft (numeric) labels need exactly two.
	RewardTokens []string `flag:"reward_tokens"`
	// LabelKey is the field holding one label per step tag
	// (--data.label_key): reward tokens as strings (hard labels) or
	// probabilities of the positive token in [0, 1] (soft labels).
	LabelKey string `flag:"data.label_key"`
	// GradientCheckpointing recomputes each transformer block's activations
	// in the backward pass (--model.gradient_checkpointing_enable).
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	Data  data.Config
	Train train.Config
}

// DefaultConfig returns OpenRLHF's train_prm defaults on the embedded
// model: no placeholder (it must be set) and no reward tokens (hard labels
// over the whole vocabulary). OpenRLHF's Math-Shepherd example sets "ки"
// and "+", "-".
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	tc.MicroBatchSize, tc.BatchSize, tc.MaxEpochs, tc.Optim.LR = 1, 128, 1, 1e-6
	return Config{
		Model: "stories260K", LabelKey: "label",
		Data:  data.Config{MaxLen: 2048, InputKey: "input"},
		Train: tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("prm: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if c.PlaceholderToken == "" {
		errs = append(errs, fmt.Errorf("prm: %s is required (the step tag)", cfgflag.Flag(&c, &c.PlaceholderToken)))
	}
	if slices.Contains(c.RewardTokens, c.PlaceholderToken) && c.PlaceholderToken != "" {
		errs = append(errs, fmt.Errorf("prm: %s %q is also a reward token (%s)", cfgflag.Flag(&c, &c.PlaceholderToken), c.PlaceholderToken, cfgflag.Flag(&c, &c.RewardTokens)))
	}
	for i, t := range c.RewardTokens {
		if t == "" || slices.Index(c.RewardTokens, t) != i {
			errs = append(errs, fmt.Errorf("prm: %s: %q is empty or repeated", cfgflag.Flag(&c, &c.RewardTokens), t))
		}
	}
	if c.Data.InputKey == "" || c.LabelKey == "" {
		errs = append(errs, fmt.Errorf("prm: %s and %s must name fields", cfgflag.Flag(&c, &c.Data.InputKey), cfgflag.Flag(&c, &c.LabelKey)))
	}
	if c.Data.ApplyChatTemplate {
		errs = append(errs, fmt.Errorf("prm: %s is not supported: PRM inputs are tokenized as they are, as OpenRLHF does", cfgflag.Flag(&c, &c.Data.ApplyChatTemplate)))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate())
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("prm: %w", err)
	}
	return nil
}
