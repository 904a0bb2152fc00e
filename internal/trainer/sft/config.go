package sft

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/train"
)

// Config holds every knob of an SFT run. Start from DefaultConfig.
type Config struct {
	// Model is the model to fine-tune (--model.model_name_or_path): an HF
	// folder, a llama2.c file, a Hub id in the local cache, or
	// "stories260K", the embedded default.
	Model string `flag:"model.model_name_or_path"`
	// PretrainMode trains on every token of --data.input_key, with no
	// prompt and no masking (--model.pretrain_mode_enable).
	PretrainMode bool `flag:"model.pretrain_mode_enable"`
	// GradientCheckpointing recomputes each transformer block's activations
	// in the backward pass instead of keeping them
	// (--model.gradient_checkpointing_enable): far less memory for about
	// one more forward pass per step, and the same gradients bit for bit,
	// so it is not part of what a resume compares.
	GradientCheckpointing bool `json:"-" flag:"model.gradient_checkpointing_enable"`

	// Samples is how many eval prompts get a greedy completion in the log
	// and samples.txt at the end (0: none); SampleTokens caps their length.
	Samples      int `flag:"sft.samples"`
	SampleTokens int `flag:"sft.sample_tokens"`
	// Reward is conditional SFT: each record's prompt rewritten with its
	// score through a template (--data.reward_template, off when empty).
	Reward data.RewardConditioning
	Data   data.Config
	Train  train.Config
}

// DefaultConfig returns OpenRLHF's train_sft defaults on the embedded model.
func DefaultConfig() Config {
	tc := train.DefaultConfig()
	return Config{
		Model:   "stories260K",
		Samples: 3, SampleTokens: 128,
		Reward: data.RewardConditioning{RewardKey: "reward"},
		Data:   data.Config{MaxLen: 2048, InputKey: "input", InputTemplate: "User: {}\nAssistant: "},
		Train:  tc,
	}
}

// Validate checks the configuration.
func (c Config) Validate() error {
	var errs []error
	if c.Model == "" {
		errs = append(errs, fmt.Errorf("sft: %s is required", cfgflag.Flag(&c, &c.Model)))
	}
	if c.Samples < 0 || c.SampleTokens < 1 {
		errs = append(errs, fmt.Errorf("sft: samples (%d) must be ≥ 0 and sample tokens (%d) ≥ 1", c.Samples, c.SampleTokens))
	}
	errs = append(errs, c.Data.Validate(), c.Train.Validate(), c.keys().Validate(c.Data.ApplyChatTemplate))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := cfgflag.Finite(&c); err != nil {
		return fmt.Errorf("sft: %w", err)
	}
	return nil
}

// keys returns how records are read.
func (c Config) keys() data.SFTKeys {
	return data.SFTKeys{InputKey: c.Data.InputKey, OutputKey: c.Data.OutputKey, Multiturn: c.Data.Multiturn, PretrainMode: c.PretrainMode, Reward: c.Reward}
}
