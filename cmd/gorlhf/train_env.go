package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gorlhf/gorlhf/internal/assets"
	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/hub"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
	"github.com/gorlhf/gorlhf/internal/train"
)

// tokenizerFileNames are the files of an HF folder that make up its
// tokenizer; they are copied into every saved model.
var tokenizerFileNames = []string{
	"tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json", "special_tokens_map.json",
	"tokenizer.model", "chat_template.jinja", "tokenizer.bin", "generation_config.json",
}

// loadModel loads a model reference with the hub cache from the environment.
func loadModel(ref string) (*load.Loaded, error) {
	return load.Load(ref, load.Options{Hub: hubOptions(), Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
}

// trainEnv loads the model and its tokenizer (the embedded tok512 for the
// embedded model, the folder's tokenizer otherwise, or tokenizer.bin next
// to a llama2.c file) and, when asked, the chat template.
func trainEnv(ref string, dc data.Config, quiet bool) (train.Env, error) {
	m, err := loadModel(ref)
	if err != nil {
		return train.Env{}, err
	}
	env := train.Env{Model: m, TokenizerFiles: map[string][]byte{}}
	if !quiet {
		env.Console = os.Stderr
		if st, err := os.Stderr.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			env.TTY = true
		}
	}
	tokDir := ""
	switch {
	case m.Path == load.EmbeddedPath:
		if env.Tok, err = tokenizer.ParseLlama2C(assets.Tok512()); err != nil {
			return env, err
		}
		env.TokenizerFiles["tokenizer.bin"] = assets.Tok512()
	case m.Location.Kind == hub.Llama2CFile:
		tokDir = filepath.Dir(m.Path)
		p := filepath.Join(tokDir, "tokenizer.bin")
		if env.Tok, err = tokenizer.Load(p); err != nil {
			return env, fmt.Errorf("llama2.c model %s needs its tokenizer at %s: %w", m.Path, p, err)
		}
		if env.TokenizerFiles["tokenizer.bin"], err = os.ReadFile(p); err != nil {
			return env, err
		}
	default:
		tokDir = m.Path
		if env.Tok, err = tokenizer.Load(tokDir); err != nil {
			return env, err
		}
		if err := readTokenizerFiles(tokDir, env.TokenizerFiles); err != nil {
			return env, err
		}
	}
	if dc.ApplyChatTemplate {
		if env.Template, err = chatTemplate(dc.TokenizerChatTemplate, tokDir); err != nil {
			return env, err
		}
	}
	return env, nil
}

// readTokenizerFiles reads the tokenizer files present in dir.
func readTokenizerFiles(dir string, into map[string][]byte) error {
	for _, name := range tokenizerFileNames {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		into[name] = b
	}
	return nil
}

// chatTemplate returns the template override (a file, or the template
// text itself) or the model folder's own template.
func chatTemplate(override, dir string) (*chattmpl.Template, error) {
	if override != "" {
		if _, err := os.Stat(override); err == nil {
			return chattmpl.Load(override)
		}
		return chattmpl.Parse(override, chattmpl.Specials{})
	}
	if dir == "" {
		return nil, errors.New("--data.apply_chat_template: the model has no chat template; pass one with --data.tokenizer_chat_template")
	}
	t, err := chattmpl.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--data.apply_chat_template: %w (or pass one with --data.tokenizer_chat_template)", err)
	}
	return t, nil
}
