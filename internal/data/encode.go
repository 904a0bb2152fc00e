package data

import (
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Sample is one tokenized sequence and which of its tokens are trained on.
type Sample struct {
	IDs []int32
	// Loss[i] reports whether token i is a training target, i.e. whether
	// the model is scored on predicting IDs[i] from IDs[:i]. Loss[0] is
	// always false: nothing predicts the first token.
	Loss []bool
	Pos  Position
}

// Len is the number of tokens.
func (s Sample) Len() int { return len(s.IDs) }

// LossTokens counts the trained-on tokens.
func (s Sample) LossTokens() int {
	n := 0
	for _, l := range s.Loss {
		if l {
			n++
		}
	}
	return n
}

// PromptLen is the index of the first trained-on token (Len when none).
func (s Sample) PromptLen() int {
	for i, l := range s.Loss {
		if l {
			return i
		}
	}
	return len(s.Loss)
}

// Encoder turns text into samples: it renders chat templates, applies the
// plain-text input template, tokenizes, adds BOS/EOS and enforces the
// token budget.
type Encoder struct {
	Tok tokenizer.Tokenizer
	// Template renders conversations (--data.apply_chat_template); nil
	// means plain text.
	Template *chattmpl.Template
	// InputTemplate formats a plain-text prompt, "{}" standing for it
	// (OpenRLHF's --data.input_template, e.g. "User: {}\nAssistant: ");
	// "" means the prompt is used as is. Ignored with a chat template.
	InputTemplate string
	// MaxLen is the token budget of one sequence (--data.max_len).
	MaxLen int
	// BOS and EOS are added around every sequence when the tokenizer
	// defines them (−1: not defined); NewEncoder reads them.
	BOS, EOS int32
}

// NewEncoder returns an encoder with the tokenizer's BOS and EOS.
func NewEncoder(tok tokenizer.Tokenizer, tmpl *chattmpl.Template, inputTemplate string, maxLen int) (*Encoder, error) {
	if maxLen < 2 {
		return nil, fmt.Errorf("data: max_len must be ≥ 2, got %d", maxLen)
	}
	if inputTemplate != "" && !strings.Contains(inputTemplate, "{}") {
		return nil, fmt.Errorf("data: input template %q has no {} for the prompt", inputTemplate)
	}
	sp := tok.Specials()
	return &Encoder{Tok: tok, Template: tmpl, InputTemplate: inputTemplate, MaxLen: maxLen,
		BOS: int32(sp.BOS), EOS: int32(sp.EOS)}, nil
}

// formatPrompt applies the input template to a plain-text prompt.
func (e *Encoder) formatPrompt(p string) string {
	if e.InputTemplate == "" {
		return p
	}
	return strings.Replace(e.InputTemplate, "{}", p, 1)
}

// render applies the chat template; an error is a skip reason.
func (e *Encoder) render(msgs []chattmpl.Message, generationPrompt bool) (string, error) {
	out, err := e.Template.Render(msgs, chattmpl.RenderOptions{AddGenerationPrompt: generationPrompt})
	if err != nil {
		var raise *chattmpl.RaiseError
		if errors.As(err, &raise) {
			return "", skipError("chat template rejected the conversation: " + raise.Message)
		}
		return "", skipError("chat template: " + err.Error())
	}
	return out, nil
}

// span is a byte range [start, end) of a text whose tokens are trained on.
type span struct{ start, end int }

// encodeMasked tokenizes text and marks the tokens of the spans as loss
// tokens, then frames the sequence with BOS (and EOS when the last span
// reaches the end of the text, so the model learns to stop) and applies
// the token budget. special is true for rendered chat templates, whose
// special tokens (e.g. "<|im_start|>") must become their ids.
//
// A span's first token is found as the first token where the encoding of
// the whole text departs from the encoding of the text before the span
// (their longest common prefix). Encoding the parts separately would be
// wrong: SentencePiece-style tokenizers add a dummy space to every call,
// and BPE merges across the boundary ("Assistant: " + "Hi" gives "▁Hi",
// not "▁" then "Hi"); a token that straddles the boundary holds response
// text and is trained on.
func (e *Encoder) encodeMasked(text string, spans []span, special bool) (Sample, bool) {
	opts := tokenizer.EncodeOptions{ParseSpecial: special}
	need := e.MaxLen + 1 // enough to tell a sequence over the budget; the rest is cut anyway
	full := toInt32(encodePrefix(e.Tok, text, opts, need))
	loss := make([]bool, len(full))
	boundary := func(at int) int {
		if at >= len(text) {
			return len(full)
		}
		if at <= 0 {
			return 0
		}
		return commonPrefix(toInt32(encodePrefix(e.Tok, text[:at], opts, need)), full)
	}
	endsWithLoss := false
	for _, s := range spans {
		lo, hi := boundary(s.start), boundary(s.end)
		for i := lo; i < hi; i++ {
			loss[i] = true
		}
		endsWithLoss = endsWithLoss || (s.end >= len(text) && hi > lo)
	}
	ids, mask := full, loss
	if e.BOS >= 0 && (len(ids) == 0 || ids[0] != e.BOS) {
		ids = append([]int32{e.BOS}, ids...)
		mask = append([]bool{false}, mask...)
	}
	if e.EOS >= 0 && (len(ids) == 0 || ids[len(ids)-1] != e.EOS) {
		ids = append(ids, e.EOS)
		mask = append(mask, endsWithLoss)
	}
	mask[0] = false
	truncated := false
	if len(ids) > e.MaxLen {
		ids, mask, truncated = ids[:e.MaxLen], mask[:e.MaxLen], true
	}
	return Sample{IDs: ids, Loss: mask}, truncated
}

// commonPrefix returns the length of the longest common prefix of a and b.
func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
