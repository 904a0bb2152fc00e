package chattmpl

import (
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string, sp Specials) *Template {
	t.Helper()
	tm, err := Parse(src, sp)
	if err != nil {
		t.Fatalf("Parse(%q): %v", src, err)
	}
	return tm
}

func render(t *testing.T, src string, msgs []Message, o RenderOptions) string {
	t.Helper()
	out, err := mustParse(t, src, Specials{}).Render(msgs, o)
	if err != nil {
		t.Fatalf("Render(%q): %v", src, err)
	}
	return out
}

func TestParse_errors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"unclosed expression", "hi\n {{ messages", "line 2: missing end of variable tag (}})"},
		{"unclosed comment", "{# note", "line 1: missing end of comment tag (#})"},
		{"unclosed if", "a\n{% if x %}\nb", "line 2: {% if %} is never closed with {% endif %}"},
		{"stray endfor", "{% if x %}{% endif %}\n\n{% endfor %}", "line 3: {% endfor %} without an opening block"},
		{"crossed blocks", "{% for m in messages %}\n{% if m %}\n{% endfor %}", "line 3: {% endfor %} found, but {% if %} from line 2 is still open"},
		{"else outside if", "{% else %}", "line 1: {% else %} outside of {% if %} or {% for %}"},
		{"break outside loop", "{% if x %}{% break %}{% endif %}", "{% break %} outside of {% for %}"},
		{"unknown statement", "{% frobnicate %}", `unknown statement "frobnicate"`},
		{"truncated expression", "{{ 1 + }}", "line 1: unexpected end of expression"},
		{"unclosed call", "{{ foo( }}", `expected ")"`},
		{"for without in", "{% for %}{% endfor %}", "for loop missing 'in'"},
		{"unclosed set block", "{% set x %}abc", "{% set %} is never closed with {% endset %}"},
		{"unclosed raw", "{% raw %}{% if %}", "line 1: missing end of raw directive"},
		{"engine error keeps line", "a\n\n  {% if x %}\n{{ x | }}{% endif %}", "line 4: expected filter name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tm, err := Parse(tc.src, Specials{})
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error containing %q", tc.src, tm, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "chattmpl: parse: ") {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParse_validBlocks(t *testing.T) {
	srcs := []string{
		"{% for m in messages %}{% if loop.first %}{% continue %}{% elif m %}x{% else %}{% break %}{% endif %}{% else %}none{% endfor %}",
		"{% set x = 1 %}{% set ns = namespace(a=1) %}{% set ns.a = x == 1 %}{{ ns.a }}",
		"{% set block %}captured{% endset %}{{ block }}",
		"{% raw %}{% endfor %}{{ x }}{% endraw %}",
		"{% macro greet(name) %}hi {{ name }}{% endmacro %}{{ greet('a') }}",
		"{# {% if %} in a comment #}ok",
		"{{ '{% if %}' }}",
		"{% generation %}kept{% endgeneration %}",
	}
	for _, src := range srcs {
		if _, err := Parse(src, Specials{}); err != nil {
			t.Errorf("Parse(%q): %v", src, err)
		}
	}
}

func TestTemplate_Render_raiseException(t *testing.T) {
	tm := mustParse(t, `{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('bad role: ' + m.role) }}{% endif %}{{ m.content }}{% endfor %}`, Specials{})
	out, err := tm.Render([]Message{{Role: "user", Content: "a"}, {Role: "robot", Content: "b"}}, RenderOptions{})
	var re *RaiseError
	if !errors.As(err, &re) {
		t.Fatalf("Render = %q, %v; want *RaiseError", out, err)
	}
	if re.Message != "bad role: robot" || out != "" {
		t.Fatalf("message %q, out %q", re.Message, out)
	}
	if !strings.HasPrefix(err.Error(), "chattmpl: render: ") {
		t.Fatalf("error not wrapped with context: %v", err)
	}
	out, err = tm.Render([]Message{{Role: "user", Content: "a"}}, RenderOptions{})
	if err != nil || out != "a" {
		t.Fatalf("valid conversation: %q, %v", out, err)
	}
}

func TestTemplate_Render_raiseExceptionInMacro(t *testing.T) {
	tm := mustParse(t, `{% macro check(x) %}{% if not x %}{{ raise_exception('empty') }}{% endif %}{% endmacro %}{{ check(messages) }}`, Specials{})
	_, err := tm.Render(nil, RenderOptions{})
	var re *RaiseError
	if !errors.As(err, &re) || re.Message != "empty" {
		t.Fatalf("err = %v", err)
	}
}

func TestTemplate_Render_enginePanicIsError(t *testing.T) {
	for _, src := range []string{"{{ 'a' * -1 }}", "{{ 'x' | indent(-3) }}"} {
		out, err := mustParse(t, src, Specials{}).Render(nil, RenderOptions{})
		if err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("%q: out %q, err %v; want a panic turned into an error", src, out, err)
		}
	}
}

func TestTemplate_Render_variables(t *testing.T) {
	src := `{{ bos_token is defined }} {{ eos_token }} {{ pad_token is defined }} {{ tools is none }} {{ documents is none }} {{ add_generation_prompt }}`
	tests := []struct {
		name string
		sp   Specials
		o    RenderOptions
		want string
	}{
		{"defaults", Specials{EOS: "</s>"}, RenderOptions{}, "False </s> False True True False"},
		{"all set", Specials{BOS: "<s>", EOS: "</s>", PAD: "<pad>"}, RenderOptions{AddGenerationPrompt: true, Tools: []map[string]any{}}, "True </s> True False True True"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := mustParse(t, src, tc.sp).Render(nil, tc.o)
			if err != nil || out != tc.want {
				t.Fatalf("got %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}

func TestTemplate_Render_messageFields(t *testing.T) {
	src := `{% for m in messages %}[{{ m.role }}|{{ m.content }}|{{ m.reasoning_content is defined }}|{{ m.name is defined }}|{{ m.tool_call_id }}|{{ m.tool_calls | length }}]{% endfor %}`
	msgs := []Message{
		{Role: "user", Content: "q", Name: "ann"},
		{Role: "assistant", Content: "", ReasoningContent: "r", ToolCalls: []ToolCall{{Function: ToolCallFunction{Name: "f", Arguments: json.RawMessage(`{"b":1,"a":2}`)}}}},
		{Role: "tool", Content: "42", ToolCallID: "c1"},
	}
	want := "[user|q|False|True||0][assistant||True|False||1][tool|42|False|False|c1|0]"
	if got := render(t, src, msgs, RenderOptions{}); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestTemplate_Render_toolCallArguments(t *testing.T) {
	src := `{% for c in messages[0].tool_calls %}{{ c.id }}/{{ c.type }}/{{ c.function.name }}:{% if c.function.arguments is string %}S{{ c.function.arguments }}{% else %}{{ c.function.arguments | tojson }}{% endif %};{% endfor %}`
	msgs := []Message{{Role: "assistant", ToolCalls: []ToolCall{
		{ID: "1", Type: "function", Function: ToolCallFunction{Name: "f", Arguments: json.RawMessage(`{"z": 1, "a": [1.0, "é"]}`)}},
		{Function: ToolCallFunction{Name: "g", Arguments: json.RawMessage(`"{\"x\":1}"`)}},
	}}}
	want := `1/function/f:{"z": 1, "a": [1.0, "é"]};//g:S{"x":1};`
	if got := render(t, src, msgs, RenderOptions{}); got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestTemplate_Render_badArguments(t *testing.T) {
	tm := mustParse(t, "x", Specials{})
	msgs := []Message{{Role: "user"}, {Role: "assistant", ToolCalls: []ToolCall{{}, {Function: ToolCallFunction{Name: "f", Arguments: json.RawMessage(`{"a":`)}}}}}
	_, err := tm.Render(msgs, RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), `messages[1]: tool_calls[1]: function "f" arguments`) {
		t.Fatalf("err = %v", err)
	}
}

func TestTemplate_Render_tools(t *testing.T) {
	src := `{% for t in tools %}{{ t | tojson }}
{% endfor %}`
	tool := map[string]any{"type": "function", "function": map[string]any{"name": "f", "parameters": map[string]any{"b": 1.5, "a": []any{int64(1), "x", nil, true}}}}
	tests := []struct {
		name string
		o    RenderOptions
		want string
	}{
		{"go maps get sorted keys", RenderOptions{Tools: []map[string]any{tool}},
			`{"function": {"name": "f", "parameters": {"a": [1, "x", null, true], "b": 1.5}}, "type": "function"}` + "\n"},
		{"JSON keeps its key order", RenderOptions{ToolsJSON: json.RawMessage(`[{"type":"function","function":{"parameters":{"b":1.5,"a":[1,"x",null,true]},"name":"f"}}]`)},
			`{"type": "function", "function": {"parameters": {"b": 1.5, "a": [1, "x", null, true]}, "name": "f"}}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(t, src, nil, tc.o); got != tc.want {
				t.Fatalf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestTemplate_Render_optionErrors(t *testing.T) {
	tm := mustParse(t, "x", Specials{})
	tests := []struct {
		name string
		o    RenderOptions
		want string
	}{
		{"both tools fields", RenderOptions{Tools: []map[string]any{}, ToolsJSON: json.RawMessage(`[]`)}, "either Tools or ToolsJSON"},
		{"tools JSON not array", RenderOptions{ToolsJSON: json.RawMessage(`{"a":1}`)}, "want a JSON array"},
		{"tools JSON malformed", RenderOptions{ToolsJSON: json.RawMessage(`[1,`)}, "ToolsJSON: decode JSON"},
		{"tools JSON trailing data", RenderOptions{ToolsJSON: json.RawMessage(`[] []`)}, "trailing data"},
		{"extra shadows messages", RenderOptions{Extra: map[string]any{"messages": 1}}, `extra variable "messages" would shadow`},
		{"extra unsupported type", RenderOptions{Extra: map[string]any{"c": make(chan int)}}, `extra variable "c": unsupported value of type chan int`},
		{"extra uint overflow", RenderOptions{Extra: map[string]any{"u": uint64(math.MaxUint64)}}, `extra variable "u": integer 18446744073709551615 does not fit`},
		{"tools unsupported value", RenderOptions{Tools: []map[string]any{{"f": func() {}}}}, `tools: [0]: "f": unsupported value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tm.Render(nil, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTemplate_Render_extra(t *testing.T) {
	src := `{{ enable_thinking is false }} {{ n + 1 }} {{ cfg | tojson }} {{ xs | tojson }} {{ p }}`
	x := 7
	o := RenderOptions{Extra: map[string]any{
		"enable_thinking": false,
		"n":               int32(41),
		"cfg":             json.RawMessage(`{"z":1,"a":{"k":[]}}`),
		"xs":              []string{"b", "a"},
		"p":               &x,
	}}
	want := `True 42 {"z": 1, "a": {"k": []}} ["b", "a"] 7`
	if got := render(t, src, nil, o); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTemplate_Render_strftimeNow(t *testing.T) {
	fixed := time.Date(2024, 2, 29, 23, 59, 1, 0, time.UTC)
	got := render(t, `{{ strftime_now("%d %b %Y %H:%M") }}`, nil, RenderOptions{Now: func() time.Time { return fixed }})
	if got != "29 Feb 2024 23:59" {
		t.Fatalf("got %q", got)
	}
	got = render(t, `{{ strftime_now("%Y") }}`, nil, RenderOptions{})
	if got != time.Now().Format("2006") && got != time.Now().Add(-time.Minute).Format("2006") {
		t.Fatalf("wall clock year %q", got)
	}
	if _, err := mustParse(t, `{{ strftime_now() }}`, Specials{}).Render(nil, RenderOptions{}); err == nil {
		t.Fatal("strftime_now() without a format: want error")
	}
}

func TestTemplate_Render_concurrent(t *testing.T) {
	tm, err := Load(filepath.Join("testdata", "qwen3"))
	if err != nil {
		t.Fatal(err)
	}
	msgs := []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}}
	want, err := tm.Render(msgs, RenderOptions{AddGenerationPrompt: true})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				got, err := tm.Render(msgs, RenderOptions{AddGenerationPrompt: true})
				if err != nil || got != want {
					errs <- got
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Fatalf("concurrent render differs: %q", got)
	}
}

func TestTemplate_Source(t *testing.T) {
	src := "{{ eos_token }}\r\n"
	tm := mustParse(t, src, Specials{EOS: "E"})
	if tm.Source() != src || tm.Specials().EOS != "E" {
		t.Fatalf("Source %q, Specials %+v", tm.Source(), tm.Specials())
	}
	// Jinja2 drops one trailing newline of the source (keep_trailing_newline=False).
	if out, _ := tm.Render(nil, RenderOptions{}); out != "E" {
		t.Fatalf("render %q", out)
	}
}

// BenchmarkTemplate_Render_qwen3 measures one prompt of the golden tool case
// (system + tools + tool calls + tool responses).
func BenchmarkTemplate_Render_qwen3(b *testing.B) {
	tm, err := Load(filepath.Join("testdata", "qwen3"))
	if err != nil {
		b.Fatal(err)
	}
	var c goldenCase
	for _, gc := range readGoldenSpec(b).Cases {
		if gc.Name == "qwen3_tools" {
			c = gc
		}
	}
	o := RenderOptions{ToolsJSON: c.Tools}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(c.Messages, o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTemplate_Render_qwen3Short is the common RLHF case: a system
// prompt and one user turn with the generation prompt.
func BenchmarkTemplate_Render_qwen3Short(b *testing.B) {
	tm, err := Load(filepath.Join("testdata", "qwen3"))
	if err != nil {
		b.Fatal(err)
	}
	msgs := []Message{{Role: "system", Content: "You are a helpful assistant."}, {Role: "user", Content: "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tm.Render(msgs, RenderOptions{AddGenerationPrompt: true}); err != nil {
			b.Fatal(err)
		}
	}
}
