package reward

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

func post(t *testing.T, url, auth, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("HTTP %d: body %q is not JSON", resp.StatusCode, data)
	}
	return resp.StatusCode, out
}

// TestServer_HTTP checks the protocol edges with a rule grader behind the
// server.
func TestServer_HTTP(t *testing.T) {
	math, _ := grade.NewRule(grade.RuleConfig{Kind: grade.RuleMath})
	cfg := DefaultServerConfig()
	cfg.APIKey, cfg.MaxBodyBytes = "k", 4096
	srv, err := NewServer(math, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	u := hs.URL + DefaultPath
	cases := []struct {
		name, path, auth, body string
		status                 int
		check                  func(map[string]any) string
	}{
		{"ok", u, "Bearer k", `{"query": ["Q: 1+1? #### 2", "Q: 2+2? The answer is 5"], "prompts": ["Q: 1+1? ", "Q: 2+2? "], "labels": ["2", "4"]}`, 200,
			func(m map[string]any) string {
				if fmt.Sprint(m["rewards"]) != "[1 0]" || fmt.Sprint(m["scores"]) != "[1 0]" {
					return fmt.Sprint(m)
				}
				return ""
			}},
		{"numeric and null labels", u, "Bearer k", `{"query": ["#### 18", "#### 7"], "prompts": ["", ""], "labels": [18, null]}`, 500,
			func(m map[string]any) string {
				if !strings.Contains(fmt.Sprint(m["error"]), "sample 1: math grader needs a label") {
					return fmt.Sprint(m)
				}
				return ""
			}},
		{"trailing data", u, "Bearer k", `{"query": ["#### 18"], "labels": ["18"]} {"query": []}`, 400,
			func(m map[string]any) string {
				if !strings.Contains(fmt.Sprint(m["error"]), "trailing data") {
					return fmt.Sprint(m)
				}
				return ""
			}},
		{"numeric label", u, "Bearer k", `{"query": ["#### 18.0"], "labels": [18]}`, 200,
			func(m map[string]any) string {
				if fmt.Sprint(m["rewards"]) != "[1]" {
					return fmt.Sprint(m)
				}
				return ""
			}},
		{"empty", u, "Bearer k", `{"query": []}`, 200, nil},
		{"no token", u, "", `{"query": ["x"]}`, 401, nil},
		{"wrong token", u, "Bearer K", `{"query": ["x"]}`, 401, nil},
		{"scheme in any case", u, "bearer k", `{"query": []}`, 200, nil},
		{"wrong path", hs.URL + "/reward", "Bearer k", `{"query": ["x"]}`, 404, nil},
		{"malformed", u, "Bearer k", `{"query": ["x"`, 400, nil},
		{"no query", u, "Bearer k", `{"prompts": ["x"]}`, 400, nil},
		{"query not texts", u, "Bearer k", `{"query": [{"a": 1}]}`, 400, nil},
		{"prompts length", u, "Bearer k", `{"query": ["a", "b"], "prompts": ["a"]}`, 400,
			func(m map[string]any) string {
				if m["error"] != "1 prompts for 2 queries" {
					return fmt.Sprint(m)
				}
				return ""
			}},
		{"too large", u, "Bearer k", `{"query": ["` + strings.Repeat("x", 5000) + `"]}`, 413, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := post(t, c.path, c.auth, c.body)
			if status != c.status {
				t.Errorf("HTTP %d %v, want %d", status, body, c.status)
			}
			if status != 200 && body["error"] == nil {
				t.Errorf("error answer %v has no \"error\"", body)
			}
			if c.check != nil {
				if msg := c.check(body); msg != "" {
					t.Errorf("answer %s", msg)
				}
			}
		})
	}
	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
		resp, err = http.Get(hs.URL + "/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("health: HTTP %d", resp.StatusCode)
		}
	})
}

// TestServer_Isolation: a request the grader rejects, batched with a good
// one, fails alone.
func TestServer_Isolation(t *testing.T) {
	math, _ := grade.NewRule(grade.RuleConfig{Kind: grade.RuleMath})
	cfg := DefaultServerConfig()
	cfg.BatchSize, cfg.Window = 2, 2*time.Second // scored together as soon as both arrive
	srv, _ := NewServer(math, cfg)
	defer srv.Close()
	hs := httptest.NewServer(srv)
	defer hs.Close()
	bodies := []string{`{"query": ["#### 3"], "labels": ["3"]}`, `{"query": ["#### 3"], "labels": [""]}`}
	status := make([]int, 2)
	var wg sync.WaitGroup
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(hs.URL+DefaultPath, "application/json", bytes.NewReader([]byte(b)))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			status[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	_, batches, _ := srv.Stats()
	if status[0] != 200 || status[1] != 500 || batches != 3 {
		t.Errorf("statuses %v in %d scoring batches, want [200 500] in 3 (merged, then each alone)", status, batches)
	}
}

func TestServerConfig_Validate(t *testing.T) {
	for name, f := range map[string]func(*ServerConfig){
		"path": func(c *ServerConfig) { c.Path = "get_reward" }, "batch": func(c *ServerConfig) { c.BatchSize = 0 },
		"window": func(c *ServerConfig) { c.Window = -1 }, "body": func(c *ServerConfig) { c.MaxBodyBytes = 0 },
	} {
		c := DefaultServerConfig()
		f(&c)
		if _, err := NewServer(Func(nil), c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
