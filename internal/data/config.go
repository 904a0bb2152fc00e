package data

import (
	"errors"
	"fmt"

	"github.com/gorlhf/gorlhf/internal/cfgflag"
)

// Config holds the dataset options (OpenRLHF's --data.* flags). Trainers
// read the keys that apply to them; DefaultConfig values are OpenRLHF's.
type Config struct {
	Dataset    string `flag:"data.dataset"`     // comma-separated files (.jsonl, .jsonl.gz, .json, .parquet)
	MaxSamples int    `flag:"data.max_samples"` // records read at most; 0 = all
	MaxLen     int    `flag:"data.max_len"`     // tokens per sequence (longer ones are truncated, see Encoder)

	InputKey    string `flag:"data.input_key"`    // SFT: prompt, or the conversation
	OutputKey   string `flag:"data.output_key"`   // SFT: response; "" = last turn of the conversation
	PromptKey   string `flag:"data.prompt_key"`   // RM, DPO: "" = no separate prompt
	ChosenKey   string `flag:"data.chosen_key"`   // RM, DPO
	RejectedKey string `flag:"data.rejected_key"` // RM, DPO

	// InputTemplate formats plain-text prompts ("{}" is the prompt); ""
	// uses them as they are (--data.input_template).
	InputTemplate string `flag:"data.input_template"`
	// ApplyChatTemplate renders conversations with the model's chat
	// template (--data.apply_chat_template); TokenizerChatTemplate
	// overrides that template with a .jinja file or template text
	// (--data.tokenizer_chat_template).
	ApplyChatTemplate     bool   `flag:"data.apply_chat_template"`
	TokenizerChatTemplate string `flag:"data.tokenizer_chat_template"`
	// Multiturn trains SFT on every assistant turn (--data.multiturn).
	Multiturn bool `flag:"data.multiturn"`
}

// chatTemplateFlag names the flag that turns chat templates on, for
// messages that suggest it.
var chatTemplateFlag = func() string {
	var c Config
	return cfgflag.Flag(&c, &c.ApplyChatTemplate)
}()

// Validate checks what every trainer needs.
func (c Config) Validate() error {
	var errs []error
	if c.Dataset == "" {
		errs = append(errs, fmt.Errorf("data: %s is required", cfgflag.Flag(&c, &c.Dataset)))
	}
	if c.MaxLen < 2 {
		errs = append(errs, fmt.Errorf("data: max_len must be ≥ 2, got %d", c.MaxLen))
	}
	if c.MaxSamples < 0 {
		errs = append(errs, fmt.Errorf("data: max_samples must be ≥ 0, got %d", c.MaxSamples))
	}
	if c.Multiturn && !c.ApplyChatTemplate {
		errs = append(errs, fmt.Errorf("data: %s needs %s", cfgflag.Flag(&c, &c.Multiturn), chatTemplateFlag))
	}
	return errors.Join(errs...)
}
