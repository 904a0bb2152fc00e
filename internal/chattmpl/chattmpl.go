// Package chattmpl renders conversations into prompt strings with a model's
// Hugging Face chat template, so that a Go trainer feeds a model exactly the
// text that transformers' tokenizer.apply_chat_template would produce.
//
// A prompt that differs by one newline from what the model was trained on
// tokenizes differently and silently degrades training and evaluation, so
// the package aims at byte parity with HF, not at "looks similar". It uses
// the pure-Go engine github.com/ardanlabs/jinja, and since the engine cannot
// be changed it works around the engine's gaps before and around it:
//
//   - the template is lexed here with Jinja2's rules (newline normalization,
//     one trailing newline dropped, "-"/"+" signs, trim_blocks and
//     lstrip_blocks with Python's notion of whitespace, {% raw %}); the
//     engine gets a source whose literal text sits in string-literal output
//     tags, because its own trimming skips over {{ }} tags and eats newlines
//     Jinja2 keeps;
//   - tojson is HF's filter (Python json.dumps with ensure_ascii=False,
//     indent, separators, sort_keys), reached by renaming the filter, as the
//     engine's built-in filters cannot be replaced;
//   - every {{ expression }} is printed with Python's str() (None, floats,
//     lists and dicts print as in Python);
//   - string and number literals are re-spelled for the engine (Python
//     escapes such as \r \x41 \u00e9; 1e5, 1_000, 0x1f);
//   - raise_exception returns a *RaiseError carrying the template's message;
//   - strftime_now follows glibc strftime and reads an injectable clock;
//   - map key order is kept for JSON inputs (json.RawMessage), since tojson
//     output depends on it;
//   - block nesting is checked with line numbers; engine panics become errors;
//   - rendering is bounded (Limits: output size, loop iterations and macro
//     calls, recursion depth, time, and range() as Jinja2's sandbox bounds
//     it) by calls the engine source gets at every loop and macro body and
//     piece of text, so a template that runs away ends with a *LimitError
//     and RenderContext stops when its context ends.
//
// Differences that remain, all inside the engine's evaluator (none affects
// the Qwen3 template): {% set %} inside a loop body leaks into the next
// iteration; // and % truncate toward zero for negatives; ** gives a float;
// ~ and + print operands with Go's rules; str.split ignores maxsplit,
// startswith/endswith take no tuples, upper/lower are Go's case mappings;
// "%" string formatting and the format filter are missing; tuples are lists;
// \N{name} escapes are not decoded; {{ {'a': {'b': 1}} }} ends at the first
// "}}"; the sandbox does not forbid list.append/dict.update as
// ImmutableSandboxedEnvironment does.
package chattmpl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ardanlabs/jinja"
)

// Message is one conversation turn in the OpenAI/HF layout. Optional fields
// are passed to the template only when non-empty, like keys absent from the
// message dict in Python.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	// ReasoningContent is the assistant's thinking (Qwen3 renders it in
	// <think></think>). Empty means absent: Qwen3 then extracts thinking
	// from a "<think>...</think>" prefix of Content.
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	Name             string     `json:"name,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
}

// ToolCall is one function call requested by an assistant message.
type ToolCall struct {
	ID       string           `json:"id,omitempty"`
	Type     string           `json:"type,omitempty"` // usually "function"; omitted from the template when empty
	Function ToolCallFunction `json:"function"`
}

// ToolCallFunction names the function and its arguments. Arguments holds raw
// JSON: an object is given to the template as a dict with its key order kept
// (templates tojson it), a JSON string is given as a string (OpenAI style).
type ToolCallFunction struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments,omitempty"`
}

// Specials are the special-token strings HF passes to every template
// (tokenizer.special_tokens_map). Empty means unset: as in HF, the variable
// is then undefined in the template rather than "".
type Specials struct {
	BOS string // bos_token
	EOS string // eos_token
	PAD string // pad_token
	UNK string // unk_token
}

// RenderOptions are the apply_chat_template arguments besides the messages.
type RenderOptions struct {
	// AddGenerationPrompt appends the assistant header so the model answers.
	AddGenerationPrompt bool
	// Tools are tool (function) schemas. Go maps are unordered, so their keys
	// reach tojson sorted; use ToolsJSON to keep the schema's own order.
	Tools []map[string]any
	// ToolsJSON is a JSON array of tool schemas, decoded with key order kept
	// (what Python's json.loads gives HF). Mutually exclusive with Tools.
	ToolsJSON json.RawMessage
	// Extra holds further template variables, e.g. "enable_thinking": false.
	// Values: nil, bool, ints, floats, string, json.RawMessage (order kept),
	// slices and string-keyed maps (keys sorted). They may not shadow the
	// standard variables (messages, tools, add_generation_prompt, ...).
	Extra map[string]any
	// Now is the clock for strftime_now; nil means time.Now.
	Now func() time.Time
	// Limits bound the rendering (output size, steps, recursion, time);
	// the zero value means the defaults.
	Limits Limits
}

// RaiseError is the error a template raises with raise_exception(msg), e.g.
// when conversation roles do not alternate. Message is the template's text.
type RaiseError struct {
	Message string
}

func (e *RaiseError) Error() string { return e.Message }

// engineEOFToken is how the engine words "expression ended too early".
const engineEOFToken = `unexpected token "" (kind=18)`

// Template is a compiled chat template. It is safe for concurrent use.
type Template struct {
	src      string // as given (before normalization and rewriting)
	compiled *jinja.Template
	specials Specials
}

// Parse compiles a chat template source. Specials supply bos_token and
// friends. Syntax errors name the problem and, nearly always, the line.
func Parse(src string, specials Specials) (t *Template, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("chattmpl: parse: template engine panicked: %v", r)
		}
	}()
	toks, err := lexTemplate(normalizeSource(src))
	if err != nil {
		return nil, fmt.Errorf("chattmpl: parse: %w", err)
	}
	if err := checkBlocks(toks); err != nil {
		return nil, fmt.Errorf("chattmpl: parse: %w", err)
	}
	// Compile without the str() wrappers first: the engine's syntax errors
	// then describe the template as written rather than "(expr) | str".
	if _, err := jinja.Compile(engineSource(toks, false)); err != nil {
		return nil, engineParseError(err)
	}
	compiled, err := jinja.Compile(engineSource(instrument(toks), true))
	if err != nil {
		return nil, engineParseError(err)
	}
	return &Template{src: src, compiled: compiled, specials: specials}, nil
}

// engineParseError rewords the engine's name for a truncated expression.
func engineParseError(err error) error {
	if msg := err.Error(); strings.Contains(msg, engineEOFToken) {
		return fmt.Errorf("chattmpl: parse: %s", strings.ReplaceAll(msg, engineEOFToken, "unexpected end of expression"))
	}
	return fmt.Errorf("chattmpl: parse: %w", err)
}

// Source returns the template text as loaded.
func (t *Template) Source() string { return t.src }

// Specials returns the special tokens passed to the template.
func (t *Template) Specials() Specials { return t.specials }

// reserved are the variables Render defines itself; Extra may not override them.
var reserved = []string{
	"messages", "tools", "documents", "add_generation_prompt",
	"bos_token", "eos_token", "pad_token", "unk_token",
	"raise_exception", "strftime_now", tojsonName, strName,
	"range", stepName, enterName, leaveName, outName,
}

// Render formats msgs with the template, as apply_chat_template(msgs,
// tokenize=False, ...) does. A raise_exception call in the template comes
// back as a *RaiseError, a rendering stopped by o.Limits as a *LimitError
// (use errors.As).
func (t *Template) Render(msgs []Message, o RenderOptions) (string, error) {
	return t.RenderContext(context.Background(), msgs, o)
}

// RenderContext is Render that also stops, with a *LimitError wrapping
// ctx.Err(), soon after ctx ends: a server cancels the renderings of the
// requests it gives up.
func (t *Template) RenderContext(ctx context.Context, msgs []Message, o RenderOptions) (out string, err error) {
	vars, err := t.variables(msgs, o)
	if err != nil {
		return "", fmt.Errorf("chattmpl: render: %w", err)
	}
	b := newBudget(ctx, o.Limits)
	b.functions(vars)
	defer func() {
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("chattmpl: render: template engine panicked: %v", r)
		}
	}()
	out, err = t.compiled.RenderValues(vars)
	if b.failed != nil { // however the engine wrapped it
		return "", fmt.Errorf("chattmpl: render: %w", b.failed)
	}
	if err != nil {
		return "", fmt.Errorf("chattmpl: render: %w", err)
	}
	return out, nil
}

// variables builds the render context HF gives a template: messages, tools
// (None when absent), documents (None), add_generation_prompt, the special
// tokens, the raise_exception/strftime_now globals, then the extra kwargs.
func (t *Template) variables(msgs []Message, o RenderOptions) (map[string]jinja.Value, error) {
	vars := make(map[string]jinja.Value, 12+len(o.Extra))
	list := make([]jinja.Value, len(msgs))
	for i, m := range msgs {
		v, err := messageValue(m)
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		list[i] = v
	}
	vars["messages"] = jinja.NewList(list)

	tools, err := toolsValue(o)
	if err != nil {
		return nil, err
	}
	vars["tools"] = tools
	vars["documents"] = jinja.None()
	vars["add_generation_prompt"] = jinja.NewBool(o.AddGenerationPrompt)
	setSpecial(vars, "bos_token", t.specials.BOS)
	setSpecial(vars, "eos_token", t.specials.EOS)
	setSpecial(vars, "pad_token", t.specials.PAD)
	setSpecial(vars, "unk_token", t.specials.UNK)

	now := o.Now
	if now == nil {
		now = time.Now
	}
	vars["raise_exception"] = jinja.NewCallable("raise_exception", raiseException)
	vars["strftime_now"] = jinja.NewCallable("strftime_now", func(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
		if len(args) != 1 || !args[0].IsString() {
			return jinja.Undefined(), fmt.Errorf("strftime_now: want one format string argument")
		}
		return jinja.NewString(strftime(now(), args[0].AsString())), nil
	})
	vars[tojsonName] = jinja.NewCallable("tojson", pyJSONFilter)
	vars[strName] = jinja.NewCallable("str", pyStrFilter)

	for k, x := range o.Extra {
		for _, r := range reserved {
			if k == r {
				return nil, fmt.Errorf("extra variable %q would shadow a standard template variable", k)
			}
		}
		v, err := toValue(x)
		if err != nil {
			return nil, fmt.Errorf("extra variable %q: %w", k, err)
		}
		vars[k] = v
	}
	return vars, nil
}

func setSpecial(vars map[string]jinja.Value, name, tok string) {
	if tok != "" {
		vars[name] = jinja.NewString(tok)
	}
}

// toolsValue gives tools as HF does: None when none were passed.
func toolsValue(o RenderOptions) (jinja.Value, error) {
	if o.Tools != nil && len(o.ToolsJSON) > 0 {
		return jinja.Undefined(), errors.New("set either Tools or ToolsJSON, not both")
	}
	if len(o.ToolsJSON) > 0 {
		v, err := decodeJSONValue(o.ToolsJSON)
		if err != nil {
			return jinja.Undefined(), fmt.Errorf("ToolsJSON: %w", err)
		}
		if !v.IsList() {
			return jinja.Undefined(), fmt.Errorf("ToolsJSON: want a JSON array, got %s", v.String())
		}
		return v, nil
	}
	if o.Tools == nil {
		return jinja.None(), nil
	}
	v, err := toValue(o.Tools)
	if err != nil {
		return jinja.Undefined(), fmt.Errorf("tools: %w", err)
	}
	return v, nil
}

func raiseException(args []jinja.Value, _ map[string]jinja.Value) (jinja.Value, error) {
	msg := ""
	switch {
	case len(args) > 0 && args[0].IsString():
		msg = args[0].AsString()
	case len(args) > 0:
		msg = args[0].String()
	}
	return jinja.Undefined(), &RaiseError{Message: msg}
}
