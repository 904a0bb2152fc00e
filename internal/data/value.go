package data

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
)

// Value is a text field of a record: either a plain string or a chat
// conversation (a list of {"role", "content"} messages), the two shapes
// OpenRLHF's datasets accept for every key.
type Value struct {
	Text     string
	Messages []chattmpl.Message
	IsChat   bool
}

// skipError is a reason to skip one record; its text is the report key.
type skipError string

func (e skipError) Error() string { return string(e) }

// field returns rec[key] as a Value.
func field(rec Record, key string) (Value, error) {
	raw, ok := rec.Fields[key]
	if !ok {
		return Value{}, skipError(fmt.Sprintf("missing key %q", key))
	}
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return Value{}, skipError(fmt.Sprintf("key %q is null", key))
	case raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return Value{}, skipError(fmt.Sprintf("key %q: bad string", key))
		}
		return Value{Text: s}, nil
	case raw[0] == '[':
		msgs, err := messages(raw)
		if err != nil {
			return Value{}, skipError(fmt.Sprintf("key %q: %v", key, err))
		}
		return Value{Messages: msgs, IsChat: true}, nil
	}
	return Value{}, skipError(fmt.Sprintf("key %q is neither a string nor a list of messages", key))
}

// rawMessage is a message whose content may also be a list of OpenAI
// content parts ([{"type": "text", "text": "..."}]).
type rawMessage struct {
	chattmpl.Message
	Content json.RawMessage `json:"content"`
}

// messages decodes a JSON list of chat messages.
func messages(raw []byte) ([]chattmpl.Message, error) {
	var rms []rawMessage
	if err := json.Unmarshal(raw, &rms); err != nil {
		return nil, fmt.Errorf("not a list of {role, content} messages")
	}
	out := make([]chattmpl.Message, len(rms))
	for i, rm := range rms {
		if rm.Role == "" {
			return nil, fmt.Errorf("message %d has no role", i)
		}
		content, err := contentText(rm.Content)
		if err != nil {
			return nil, fmt.Errorf("message %d: %v", i, err)
		}
		out[i] = rm.Message
		out[i].Content = content
	}
	return out, nil
}

// contentText returns a message content given as a string, null, or a
// list of text parts (joined).
func contentText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if raw[0] == '"' {
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", fmt.Errorf("content is neither a string nor a list of text parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "" && p.Type != "text" {
			return "", fmt.Errorf("content part of type %q is not supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// number returns rec[key] as a float (0 when absent or null).
func number(rec Record, key string) (float64, error) {
	raw, ok := rec.Fields[key]
	if !ok || string(bytes.TrimSpace(raw)) == "null" {
		return 0, nil
	}
	var v float64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, skipError(fmt.Sprintf("key %q is not a number", key))
	}
	return v, nil
}
