package ppo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
	"github.com/gorlhf/gorlhf/internal/data"
	"github.com/gorlhf/gorlhf/internal/tokenizer"
)

// Prompt is one dataset prompt, ready for the rollout engine.
type Prompt struct {
	Text  string  // what the policy sees, templates applied
	IDs   []int32 // its tokens, BOS first when the tokenizer has one
	Label string  // the --data.label_key field as text ("" when none)
}

// promptEncoder turns dataset records into prompts (OpenRLHF's
// PromptDataset): the input field, a plain string or a chat, rendered with
// the chat template (with the assistant header) or the input template,
// then tokenized.
type promptEncoder struct {
	tok      tokenizer.Tokenizer
	tmpl     *chattmpl.Template // nil: plain text
	inputTpl string
	inputKey string
	labelKey string
	budget   int // most prompt tokens
	bos      int32
}

func newPromptEncoder(tok tokenizer.Tokenizer, tmpl *chattmpl.Template, d DataConfig, budget int) (*promptEncoder, error) {
	if d.InputTemplate != "" && !strings.Contains(d.InputTemplate, "{}") {
		return nil, fmt.Errorf("ppo: --data.input_template %q has no {} for the prompt", d.InputTemplate)
	}
	if d.ApplyChatTemplate && tmpl == nil {
		return nil, fmt.Errorf("ppo: --data.apply_chat_template needs a chat template")
	}
	if !d.ApplyChatTemplate {
		tmpl = nil
	}
	return &promptEncoder{tok: tok, tmpl: tmpl, inputTpl: d.InputTemplate, inputKey: d.InputKey,
		labelKey: d.LabelKey, budget: budget, bos: int32(tok.Specials().BOS)}, nil
}

// read reads the prompts of the comma-separated files of spec (at most max
// records; 0 = all). Records that cannot be used are skipped and counted
// in the report; none usable is an error.
func (e *promptEncoder) read(spec string, max int) ([]Prompt, *data.Report, error) {
	recs, rep, err := data.ReadFiles(spec, max)
	if err != nil {
		return nil, nil, err
	}
	rep.Name = spec
	var out []Prompt
	for _, rec := range recs {
		p, reason := e.encode(rec)
		if reason != "" {
			rep.Skip(rec.Pos, reason)
			continue
		}
		out = append(out, p)
	}
	rep.Used = len(out)
	return out, rep, rep.Err()
}

// encode returns the prompt of one record, or why it is skipped.
func (e *promptEncoder) encode(rec data.Record) (Prompt, string) {
	raw, ok := rec.Fields[e.inputKey]
	if !ok {
		return Prompt{}, fmt.Sprintf("missing key %q", e.inputKey)
	}
	text, special, reason := e.render(bytes.TrimSpace(raw))
	if reason != "" {
		return Prompt{}, reason
	}
	ids := toInt32(e.tok.EncodeWith(text, tokenizer.EncodeOptions{ParseSpecial: special}))
	if e.bos >= 0 && (len(ids) == 0 || ids[0] != e.bos) {
		ids = append([]int32{e.bos}, ids...)
	}
	switch {
	case len(ids) == 0:
		return Prompt{}, "empty prompt"
	case len(ids) > e.budget:
		return Prompt{}, fmt.Sprintf("prompt longer than %d tokens (data.max_len − rollout.max_new_tokens)", e.budget)
	}
	p := Prompt{Text: text, IDs: ids}
	if e.labelKey != "" {
		lab, ok := rec.Fields[e.labelKey]
		if !ok {
			return Prompt{}, fmt.Sprintf("missing label key %q", e.labelKey)
		}
		p.Label = labelText(lab)
	}
	return p, ""
}

// render returns the prompt text and whether special tokens written in it
// are to be parsed (rendered chat templates).
func (e *promptEncoder) render(raw []byte) (text string, special bool, reason string) {
	var msgs []chattmpl.Message
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, fmt.Sprintf("key %q: bad string", e.inputKey)
		}
		if e.tmpl == nil {
			if e.inputTpl != "" {
				s = strings.Replace(e.inputTpl, "{}", s, 1)
			}
			return s, false, ""
		}
		msgs = []chattmpl.Message{{Role: "user", Content: s}}
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &msgs); err != nil || len(msgs) == 0 {
			return "", false, fmt.Sprintf("key %q: not a list of {role, content} messages", e.inputKey)
		}
		if e.tmpl == nil {
			return "", false, fmt.Sprintf("key %q is a chat; set --data.apply_chat_template", e.inputKey)
		}
	default:
		return "", false, fmt.Sprintf("key %q is neither a string nor a chat", e.inputKey)
	}
	out, err := e.tmpl.Render(msgs, chattmpl.RenderOptions{AddGenerationPrompt: true})
	if err != nil {
		return "", false, "chat template: " + err.Error()
	}
	return out, true, ""
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

func toInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, id := range ids {
		out[i] = int32(id)
	}
	return out
}
