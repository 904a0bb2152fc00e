package train

import (
	"fmt"
	"github.com/gorlhf/gorlhf/internal/collective"
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
	// Comm makes an offline trainer data-parallel over its ranks (nil:
	// this process alone); Claimed is the run folder rank 0's launcher
	// claimed already (Options.Comm, Options.Claimed).
	Comm    collective.Comm
	Claimed *RunDir
}

// Encoder returns the data encoder for dc with this setup's tokenizer and,
// when dc.ApplyChatTemplate is set, its chat template. Its token budget
// is SeqLimit(dc.MaxLen).
func (s Setup) Encoder(dc data.Config) (*data.Encoder, error) {
	tmpl := s.Template
	if !dc.ApplyChatTemplate {
		tmpl = nil
	}
	return data.NewEncoder(s.Tok, tmpl, dc.InputTemplate, s.SeqLimit(dc.MaxLen))
}

// SeqLimit is the longest sequence a trainer gives the model: maxLen
// (--data.max_len), or the model's position limit (its context length)
// when that is shorter. Past it a model's output is garbage (rotary
// positions) or undefined (learned ones), so longer sequences are cut
// there as they are at max_len.
func (s Setup) SeqLimit(maxLen int) int {
	if p := s.Model.Dims().MaxPositions; p > 0 && p < maxLen {
		return p
	}
	return maxLen
}

// SeqLimitNote is the warning for a run whose --data.max_len passes the
// model's position limit ("" when it does not).
func (s Setup) SeqLimitNote(maxLen int) string {
	n := s.SeqLimit(maxLen)
	if n == maxLen {
		return ""
	}
	return fmt.Sprintf("--data.max_len %d is more than the model's %d positions (max_position_embeddings): sequences are cut at %d tokens", maxLen, n, n)
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
