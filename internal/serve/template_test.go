package serve

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/chattmpl"
)

// TestServer_TemplateErrors: a model whose chat template does not parse
// answers chat requests 500 with the parse error and its line (not "no
// chat template"); a model without one answers 400 as before; a template
// that recurses without end is stopped (500) instead of killing the
// process with a stack overflow.
func TestServer_TemplateErrors(t *testing.T) {
	f := newFixture(t, Options{})
	chat := map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}, "max_tokens": 2}
	_, parseErr := chattmpl.Parse("{% for m in messages %}\n{{ m.content }", chattmpl.Specials{})
	if parseErr == nil {
		t.Fatal("premise: the template parses")
	}
	for _, c := range []struct {
		name   string
		o      Options
		status int
		want   string
	}{
		{"broken", Options{TemplateError: fmt.Errorf("load: %w", parseErr)}, 500, "line 2"},
		{"none", Options{TemplateError: fmt.Errorf("the model has %w", chattmpl.ErrNoTemplate)}, 400, "no chat template"},
	} {
		c.o.BOS = 1
		f.srv.Config.Handler = New(f.eng, f.tok, c.o).Handler()
		status, out := f.post(t, "/v1/chat/completions", chat)
		if status != c.status || !strings.Contains(fmt.Sprint(out["error"]), c.want) {
			t.Errorf("%s: status %d %v; want %d naming %q", c.name, status, out, c.status, c.want)
		}
	}
	rec, err := chattmpl.Parse("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", chattmpl.Specials{})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = New(f.eng, f.tok, Options{Template: rec, BOS: 1}).Handler()
	status, out := f.post(t, "/v1/chat/completions", chat)
	if status != 500 || !strings.Contains(fmt.Sprint(out["error"]), "nested deeper") {
		t.Fatalf("recursive template: status %d %v", status, out)
	}
	if status, _ := f.post(t, "/v1/completions", map[string]any{"prompt": "Once", "max_tokens": 2}); status != 200 {
		t.Fatalf("completions after a runaway template: status %d", status)
	}
}

// TestServer_Drain: a chat request stuck rendering a template that loops
// (for seconds, within its limits) is stopped by Drain and answered 503 at
// once, so that http.Server.Shutdown is not held up.
func TestServer_Drain(t *testing.T) {
	loop, err := chattmpl.Parse("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", chattmpl.Specials{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, Options{Template: loop})
	s := New(f.eng, f.tok, Options{Template: loop, BOS: 1})
	f.srv.Config.Handler = s.Handler()
	done := make(chan int, 1) // the status, or −1 when the request failed
	go func() {
		body := `{"messages": [{"role": "user", "content": "x"}]}`
		resp, err := f.client.Post(f.srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			done <- -1
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(200 * time.Millisecond)
	select {
	case status := <-done:
		t.Fatalf("the looping template answered before Drain: %d", status)
	default:
	}
	start := time.Now()
	s.Drain()
	select {
	case status := <-done:
		if status != http.StatusServiceUnavailable {
			t.Fatalf("drained: status %d, want 503", status)
		}
		t.Logf("answered %v after Drain", time.Since(start))
	case <-time.After(2 * time.Second):
		t.Fatal("Drain did not stop the rendering within 2 s")
	}
}
