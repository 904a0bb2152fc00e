package train

import (
	"io"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Env is what the command line resolves before a trainer starts: the
// loaded model, its tokenizer (and the files to save with it), the chat
// template, and where progress goes.
type Env struct {
	Model *load.Loaded
	Tok   tokenizer.Tokenizer
	// TokenizerFiles are written verbatim next to every saved model so
	// that a checkpoint or the final folder loads with its tokenizer.
	TokenizerFiles map[string][]byte
	// Template renders conversations; nil when no chat template is used.
	Template *chattmpl.Template
	Console  io.Writer
	TTY      bool
}

// Encoder returns the data encoder for dc with this environment's
// tokenizer and template.
func (e Env) Encoder(dc data.Config) (*data.Encoder, error) {
	tmpl := e.Template
	if !dc.ApplyChatTemplate {
		tmpl = nil
	}
	return data.NewEncoder(e.Tok, tmpl, dc.InputTemplate, dc.MaxLen)
}

// PadID is the token used for padding: the tokenizer's PAD, else EOS, else
// 0. Padding never reaches a loss, so any valid id works.
func (e Env) PadID() int32 {
	sp := e.Tok.Specials()
	switch {
	case sp.PAD >= 0:
		return int32(sp.PAD)
	case sp.EOS >= 0:
		return int32(sp.EOS)
	}
	return 0
}
