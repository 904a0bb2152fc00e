package chattmpl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// renderErr renders src and returns its *LimitError, failing otherwise.
func renderErr(t *testing.T, ctx context.Context, src string, o RenderOptions) *LimitError {
	t.Helper()
	msgs := []Message{{Role: "user", Content: strings.Repeat("x", 1000)}}
	start := time.Now()
	out, err := mustParse(t, src, Specials{}).RenderContext(ctx, msgs, o)
	var le *LimitError
	if !errors.As(err, &le) {
		t.Fatalf("%q: %d bytes, err %v; want a *LimitError", src, len(out), err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("%q: stopped after %v", src, d)
	}
	return le
}

// TestRender_Limits: templates that loop, recurse or write without end
// stop with a *LimitError naming the bound and, where it can, the line,
// instead of taking the process's CPU and memory.
func TestRender_Limits(t *testing.T) {
	bg := context.Background()
	loop := "a\n{% for i in range(100000) %}\n{% for j in range(100000) %}{% endfor %}{% endfor %}"
	if le := renderErr(t, bg, loop, RenderOptions{Limits: Limits{MaxSteps: 250_000}}); le.Line != 3 || !strings.Contains(le.What, "more than 250000") {
		t.Errorf("nested loops: %v; want line 3 and the step bound", le)
	}
	if le := renderErr(t, bg, loop, RenderOptions{Limits: Limits{Timeout: 100 * time.Millisecond}}); !strings.Contains(le.What, "longer than 100ms") {
		t.Errorf("nested loops, timeout: %v", le)
	}
	write := "{% for i in range(100000) %}<{{ messages[0].content }}>{% endfor %}"
	if le := renderErr(t, bg, write, RenderOptions{Limits: Limits{MaxOutputBytes: 1 << 20}}); !strings.Contains(le.What, "output over 1048576 bytes") {
		t.Errorf("output: %v", le)
	}
	text := "{% for i in range(100000) %}" + strings.Repeat("literal text ", 100) + "{% endfor %}"
	if le := renderErr(t, bg, text, RenderOptions{Limits: Limits{MaxOutputBytes: 1 << 20}}); !strings.Contains(le.What, "output over") {
		t.Errorf("literal output: %v", le)
	}
	// Recursion without end: the engine would exhaust the goroutine stack,
	// a fatal error no recover catches.
	rec := "{% macro f(n) %}\n{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
	if le := renderErr(t, bg, rec, RenderOptions{}); le.Line != 1 || !strings.Contains(le.What, "nested deeper than 1000") {
		t.Errorf("recursion: %v", le)
	}
	callRec := "{% macro m() %}{{ caller() }}{% endmacro %}{% macro g() %}{% call m() %}{{ g() }}{% endcall %}{% endmacro %}{{ g() }}"
	if le := renderErr(t, bg, callRec, RenderOptions{}); !strings.Contains(le.What, "nested deeper") {
		t.Errorf("recursion through a call block: %v", le)
	}
	if le := renderErr(t, bg, "{{ range(100001) | length }}", RenderOptions{}); !strings.Contains(le.What, "at most 100000") {
		t.Errorf("range: %v", le)
	}
	// The context ends a rendering too, and the error says so.
	ctx, cancel := context.WithTimeout(bg, 100*time.Millisecond)
	defer cancel()
	if le := renderErr(t, ctx, loop, RenderOptions{}); !errors.Is(le, context.DeadlineExceeded) {
		t.Errorf("context: %v", le)
	}
}

// TestRender_WithinLimits: bounded templates render as before, a deep but
// finite recursion and range at the sandbox's limit included, and the
// bookkeeping prints nothing.
func TestRender_WithinLimits(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"{% for i in range(3) %}{{ i }},{% endfor %}", "0,1,2,"},
		{"{{ range(5, 0, -2) | list }}", "[5, 3, 1]"},
		{"{{ range(100000) | length }}", "100000"},
		{"{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{% endif %}{{ n }}{% endmacro %}{{ f(900) | length }}", "2593"},
		{"{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}in{% endcall %}", "[in]"},
	} {
		if got := render(t, c.src, nil, RenderOptions{}); got != c.want {
			t.Errorf("%q = %q, want %q", c.src, got, c.want)
		}
	}
	if _, err := mustParse(t, "{{ range(1.5) }}", Specials{}).Render(nil, RenderOptions{}); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Errorf("range(1.5): %v", err)
	}
	if _, err := mustParse(t, "x", Specials{}).Render(nil, RenderOptions{Extra: map[string]any{"range": 1}}); err == nil {
		t.Error("an extra variable shadowed range")
	}
}
