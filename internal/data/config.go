package data

import (
	"errors"
	"fmt"
)

// Config holds the dataset options (OpenRLHF's --data.* flags). Trainers
// read the keys that apply to them; DefaultConfig values are OpenRLHF's.
type Config struct {
	Dataset    string // --data.dataset: comma-separated files (.jsonl, .jsonl.gz, .json, .parquet)
	MaxSamples int    // --data.max_samples: records read at most; 0 = all
	MaxLen     int    // --data.max_len: tokens per sequence (longer ones are truncated, see Encoder)

	InputKey    string // --data.input_key (SFT): prompt, or the conversation
	OutputKey   string // --data.output_key (SFT): response; "" = last turn of the conversation
	PromptKey   string // --data.prompt_key (RM, DPO): "" = no separate prompt
	ChosenKey   string // --data.chosen_key (RM, DPO)
	RejectedKey string // --data.rejected_key (RM, DPO)

	// InputTemplate formats plain-text prompts ("{}" is the prompt); ""
	// uses them as they are (--data.input_template).
	InputTemplate string
	// ApplyChatTemplate renders conversations with the model's chat
	// template (--data.apply_chat_template); TokenizerChatTemplate
	// overrides that template with a .jinja file or template text
	// (--data.tokenizer_chat_template).
	ApplyChatTemplate     bool
	TokenizerChatTemplate string
	// Multiturn trains SFT on every assistant turn (--data.multiturn).
	Multiturn bool
}

// Validate checks what every trainer needs.
func (c Config) Validate() error {
	var errs []error
	if c.Dataset == "" {
		errs = append(errs, errors.New("data: --data.dataset is required"))
	}
	if c.MaxLen < 2 {
		errs = append(errs, fmt.Errorf("data: max_len must be ≥ 2, got %d", c.MaxLen))
	}
	if c.MaxSamples < 0 {
		errs = append(errs, fmt.Errorf("data: max_samples must be ≥ 0, got %d", c.MaxSamples))
	}
	if c.Multiturn && !c.ApplyChatTemplate {
		errs = append(errs, errors.New("data: --data.multiturn needs --data.apply_chat_template"))
	}
	return errors.Join(errs...)
}
