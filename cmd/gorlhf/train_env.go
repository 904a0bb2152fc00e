package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/train"
)

// loadOptions are the load options of every command: the Hub cache from
// the environment, warnings to stderr.
func loadOptions() load.Options {
	return load.Options{Hub: hubOptions(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}
}

// loadModel loads a model reference with the hub cache from the environment.
func loadModel(ref string) (*load.Loaded, error) { return load.Load(ref, loadOptions()) }

// loadReference loads a trainer's frozen reference model: ref, or the
// policy as loaded when ref is empty (OpenRLHF's --ref_pretrain default).
func loadReference(ref, policy string) (*load.Loaded, error) {
	if ref == "" {
		ref = policy
	}
	return loadModel(ref)
}

// trainSetup opens the model bundle a trainer starts from (load.Open: the
// model, its tokenizer and files, its chat template) and, unless quiet,
// sends progress to stderr. With --data.apply_chat_template the template
// (the model's, or --data.tokenizer_chat_template) must exist.
func trainSetup(ref string, dc data.Config, quiet bool) (train.Setup, error) {
	o := load.OpenOptions{Load: loadOptions()}
	if dc.ApplyChatTemplate {
		o.ChatTemplate = dc.TokenizerChatTemplate
	}
	b, err := load.Open(ref, o)
	if err != nil {
		return train.Setup{}, err
	}
	s := train.Setup{Bundle: b}
	if dc.ApplyChatTemplate {
		if _, err := b.NeedTemplate(); err != nil {
			return s, fmt.Errorf("--data.apply_chat_template: %w (or pass one with --data.tokenizer_chat_template)", err)
		}
	}
	if !quiet {
		s.Console = os.Stderr
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			s.TTY = true
		}
	}
	return s, nil
}
