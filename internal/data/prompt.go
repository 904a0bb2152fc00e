package data

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Prompt is one prompt, ready for a rollout engine.
type Prompt struct {
	Text  string  // what the model sees, templates applied (BOS not included)
	IDs   []int32 // its tokens, BOS first when the encoder puts one
	Label string  // the label field as text ("" when none)
}

// PromptKeys says how to read a prompt record (OpenRLHF's
// --data.input_key and --data.label_key).
type PromptKeys struct {
	InputKey string // the prompt: a string or a list of {role, content} messages
	LabelKey string // "" = no label
}

// ErrNoTemplate is returned (wrapped) for a chat prompt when the encoder
// has no chat template.
var ErrNoTemplate = errors.New("a chat prompt needs a chat template")

// PromptEncoder turns prompts into the token ids generation starts from,
// the one way the RL trainer, generate, serve and the recipes do it
// (OpenRLHF's PromptDataset):
//
//   - a plain string gets the input template, or with ChatText becomes
//     one user message;
//   - a conversation (a list of messages, System first when set) is
//     rendered with the chat template and its assistant header, special
//     tokens written by the template becoming their ids;
//   - BOS is put first when the encoder has one and it is not already
//     there. An empty plain prompt starts from the tokenizer's BOS in any
//     case (unconditional generation, as llama2.c's run.c and Hugging
//     Face's generate do).
//
// Encoding never changes the encoder, so one may serve concurrent callers.
type PromptEncoder struct {
	Tok tokenizer.Tokenizer
	// Template renders conversations; nil refuses them (ErrNoTemplate).
	Template *chattmpl.Template
	// ChatText renders plain-text prompts as one user message (with the
	// template); false keeps them as text.
	ChatText bool
	// System, when set, is a system message put before every conversation.
	System string
	// InputTemplate formats plain-text prompts kept as text, "{}" standing
	// for the prompt (OpenRLHF's --data.input_template); "" uses them as
	// they are.
	InputTemplate string
	// BOS is put first (load.Bundle.BOS); −1 means none.
	BOS int32
	// MaxTokens is the most tokens a prompt may have; 0 means no limit.
	MaxTokens int
}

// Validate checks the input template and that ChatText has a template.
func (e *PromptEncoder) Validate() error {
	switch {
	case e.Tok == nil:
		return errors.New("data: prompt encoder: no tokenizer")
	case e.InputTemplate != "" && !strings.Contains(e.InputTemplate, "{}"):
		return fmt.Errorf("data: --data.input_template %q has no {} for the prompt", e.InputTemplate)
	case e.ChatText && e.Template == nil:
		return fmt.Errorf("data: --data.apply_chat_template: %w", ErrNoTemplate)
	}
	return nil
}

// Text encodes a plain-text prompt.
func (e *PromptEncoder) Text(s string) (Prompt, error) {
	if e.ChatText {
		return e.Chat([]chattmpl.Message{{Role: "user", Content: s}})
	}
	if e.InputTemplate != "" {
		s = strings.Replace(e.InputTemplate, "{}", s, 1)
	}
	return e.finish(s, false)
}

// Chat renders and encodes a conversation.
func (e *PromptEncoder) Chat(msgs []chattmpl.Message) (Prompt, error) {
	return e.ChatContext(context.Background(), msgs)
}

// ChatContext is Chat whose rendering also stops when ctx ends
// (chattmpl.Template.RenderContext).
func (e *PromptEncoder) ChatContext(ctx context.Context, msgs []chattmpl.Message) (Prompt, error) {
	if e.Template == nil {
		return Prompt{}, ErrNoTemplate
	}
	if e.System != "" {
		msgs = append([]chattmpl.Message{{Role: "system", Content: e.System}}, msgs...)
	}
	text, err := e.Template.RenderContext(ctx, msgs, chattmpl.RenderOptions{AddGenerationPrompt: true})
	if err != nil {
		return Prompt{}, fmt.Errorf("chat template: %w", err)
	}
	return e.finish(text, true)
}

// Value encodes a prompt given as JSON: a string (Text) or a list of
// {role, content} messages (Chat).
func (e *PromptEncoder) Value(raw json.RawMessage) (Prompt, error) {
	text, msgs, err := promptValue(raw)
	switch {
	case err != nil:
		return Prompt{}, err
	case msgs != nil:
		return e.Chat(msgs)
	}
	return e.Text(text)
}

// Record encodes one dataset record; the error is why it is skipped.
func (e *PromptEncoder) Record(rec Record, k PromptKeys) (Prompt, error) {
	raw, ok := rec.Fields[k.InputKey]
	if !ok {
		return Prompt{}, skipError(fmt.Sprintf("missing key %q", k.InputKey))
	}
	text, msgs, err := promptValue(raw)
	var p Prompt
	switch {
	case errors.Is(err, errNotPrompt):
		return Prompt{}, skipError(fmt.Sprintf("key %q is neither a string nor a chat", k.InputKey))
	case err != nil:
		return Prompt{}, skipError(fmt.Sprintf("key %q: %v", k.InputKey, err))
	case msgs != nil && e.Template == nil:
		return Prompt{}, skipError(fmt.Sprintf("key %q is a chat; set --data.apply_chat_template", k.InputKey))
	case msgs != nil:
		p, err = e.Chat(msgs)
	default:
		p, err = e.Text(text)
	}
	if err != nil {
		return Prompt{}, skipError(err.Error())
	}
	if k.LabelKey != "" {
		lab, ok := rec.Fields[k.LabelKey]
		if !ok {
			return Prompt{}, skipError(fmt.Sprintf("missing label key %q", k.LabelKey))
		}
		p.Label = labelText(lab)
	}
	return p, nil
}

// ReadPrompts reads dataset files (see ReadFiles) and encodes their
// records as prompts. Records that cannot be used are skipped and counted
// in the report; none usable is an error.
func (e *PromptEncoder) ReadPrompts(spec string, maxSamples int, k PromptKeys) ([]Prompt, *Report, error) {
	recs, rep, err := ReadFiles(spec, maxSamples)
	if err != nil {
		return nil, nil, err
	}
	rep.Name = spec
	var out []Prompt
	for _, rec := range recs {
		p, err := e.Record(rec, k)
		if err != nil {
			rep.Skip(rec.Pos, err.Error())
			continue
		}
		out = append(out, p)
	}
	rep.Used = len(out)
	return out, rep, rep.Err()
}

// finish tokenizes text (parsing special tokens in rendered templates),
// puts BOS first and checks the length.
func (e *PromptEncoder) finish(text string, special bool) (Prompt, error) {
	opts := tokenizer.EncodeOptions{ParseSpecial: special}
	var tokIDs []int
	if e.MaxTokens > 0 { // enough tokens to tell a prompt over the limit, not all of a huge one
		tokIDs = encodePrefix(e.Tok, text, opts, e.MaxTokens+1)
	} else {
		tokIDs = e.Tok.EncodeWith(text, opts)
	}
	ids := make([]int32, 0, len(tokIDs)+1)
	bos := e.BOS
	if len(tokIDs) == 0 && bos < 0 {
		bos = int32(e.Tok.Specials().BOS) // unconditional generation
	}
	if bos >= 0 && (len(tokIDs) == 0 || int32(tokIDs[0]) != bos) {
		ids = append(ids, bos)
	}
	for _, id := range tokIDs {
		ids = append(ids, int32(id))
	}
	switch {
	case len(ids) == 0:
		return Prompt{}, errors.New("empty prompt")
	case e.MaxTokens > 0 && len(ids) > e.MaxTokens:
		return Prompt{}, fmt.Errorf("prompt longer than %d tokens", e.MaxTokens)
	}
	return Prompt{Text: text, IDs: ids}, nil
}

// errNotPrompt is a JSON value that is neither a string nor a list.
var errNotPrompt = errors.New("the prompt must be a string or a list of {role, content} messages")

// promptValue reads a prompt field: a string, or a non-empty list of
// messages (msgs != nil).
func promptValue(raw json.RawMessage) (string, []chattmpl.Message, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", nil, errors.New("bad string")
		}
		return s, nil, nil
	case len(raw) > 0 && raw[0] == '[':
		msgs, err := messages(raw)
		if err == nil && len(msgs) == 0 {
			err = errors.New("not a list of {role, content} messages")
		}
		return "", msgs, err
	}
	return "", nil, errNotPrompt
}

// labelText is a label field as text: a string as is, anything else
// (a number, a list) as its JSON.
func labelText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(bytes.TrimSpace(raw))
}
