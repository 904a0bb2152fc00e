package train

import (
	"io"

	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/model/load"
)

// Setup is what a trainer starts from: the model bundle the command line
// opened (load.Open: the model, its tokenizer and the files to save with
// it, its chat template, stop ids and BOS rule) and where progress goes.
type Setup struct {
	*load.Bundle
	Console io.Writer // progress bar and text log; nil = none
	TTY     bool      // redraw the progress bar in place
}

// Encoder returns the data encoder for dc with this setup's tokenizer and,
// when dc.ApplyChatTemplate is set, its chat template.
func (s Setup) Encoder(dc data.Config) (*data.Encoder, error) {
	tmpl := s.Template
	if !dc.ApplyChatTemplate {
		tmpl = nil
	}
	return data.NewEncoder(s.Tok, tmpl, dc.InputTemplate, dc.MaxLen)
}

// PadID is the token used for padding: the tokenizer's PAD, else EOS, else
// 0. Padding never reaches a loss, so any valid id works.
func (s Setup) PadID() int32 {
	sp := s.Tok.Specials()
	switch {
	case sp.PAD >= 0:
		return int32(sp.PAD)
	case sp.EOS >= 0:
		return int32(sp.EOS)
	}
	return 0
}
