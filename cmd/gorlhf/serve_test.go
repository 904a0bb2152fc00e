package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAPIKey: --api-key, else the server's own variable, else the shared
// GORLHF_API_KEY.
func TestAPIKey(t *testing.T) {
	t.Setenv(apiKeyEnv, "")
	t.Setenv(rmAPIKeyEnv, "")
	if key, from := apiKey("", rmAPIKeyEnv); key != "" || from != "" {
		t.Fatalf("nothing set: %q from %q", key, from)
	}
	t.Setenv(apiKeyEnv, "shared")
	for _, c := range []struct{ flag, own, key, from string }{
		{"", "", "shared", "$" + apiKeyEnv},
		{"", rmAPIKeyEnv, "shared", "$" + apiKeyEnv},
		{"cli", rmAPIKeyEnv, "cli", "--api-key"},
	} {
		if key, from := apiKey(c.flag, c.own); key != c.key || from != c.from {
			t.Errorf("apiKey(%q, %q) = %q from %q, want %q from %q", c.flag, c.own, key, from, c.key, c.from)
		}
	}
	t.Setenv(rmAPIKeyEnv, "rm")
	if key, from := apiKey("", rmAPIKeyEnv); key != "rm" || from != "$"+rmAPIKeyEnv {
		t.Fatalf("own variable set: %q from %q", key, from)
	}
	if key, _ := apiKey("", ""); key != "shared" {
		t.Fatalf("gorlhf serve reads only %s: got %q", apiKeyEnv, key)
	}
}

// stderrCapture collects what is written to os.Stderr while it is
// installed.
type stderrCapture struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	old  *os.File
	w    *os.File
	done chan struct{}
}

func captureStderr(t *testing.T) *stderrCapture {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &stderrCapture{old: os.Stderr, w: w, done: make(chan struct{})}
	os.Stderr = w
	go func() {
		defer close(c.done)
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			c.mu.Lock()
			c.buf.Write(b[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

func (c *stderrCapture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func (c *stderrCapture) stop() {
	if os.Stderr == c.w {
		os.Stderr = c.old
		c.w.Close()
		<-c.done
	}
}

// waitFor polls s until re matches it (for at most 60 s) and returns the
// first submatch.
func waitFor(t *testing.T, s func() string, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := re.FindStringSubmatch(s()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %v in:\n%s", re, s())
	return ""
}

// exposedListener listens on loopback but reports the wildcard address,
// so the servers' exposure warning can be checked without listening on
// every interface.
type exposedListener struct{ net.Listener }

func (l exposedListener) Addr() net.Addr {
	a := *l.Listener.Addr().(*net.TCPAddr)
	a.IP = net.IPv4zero
	return &a
}

var portRe = regexp.MustCompile(`http://0\.0\.0\.0:(\d+)`)

// TestServers_ExposedWithoutKey runs gorlhf serve, serve rm and serve env
// on 0.0.0.0 (as far as they can tell): each warns when it has no key,
// none warns with --api-key or with the shared GORLHF_API_KEY, and each
// then refuses a request without the key (401) and takes one with it in
// any case of the scheme.
func TestServers_ExposedWithoutKey(t *testing.T) {
	old := listen
	t.Cleanup(func() { listen = old })
	listen = func(network, addr string) (net.Listener, error) {
		if addr != "0.0.0.0:0" {
			t.Errorf("listen %s, want 0.0.0.0:0", addr)
		}
		ln, err := net.Listen(network, "127.0.0.1:0")
		return exposedListener{ln}, err
	}
	t.Setenv(rmAPIKeyEnv, "")
	t.Setenv(envAPIKeyEnv, "")
	servers := []struct {
		name        string
		run         func(context.Context, []string) error
		args        []string
		method, url string // an authenticated route
		body        string
	}{
		{"serve", runServe, []string{"--threads", "1"}, "GET", "/v1/models", ""},
		{"serve rm", runServeRM, []string{"--model", rewardModel(t), "--threads", "1"}, "POST", "/get_reward", `{"query": []}`},
		{"serve env", runServeEnv, []string{"--env", "chain"}, "POST", "/reset", `{"prompt": "1+1=", "label": ""}`},
	}
	for _, s := range servers {
		for _, c := range []struct {
			name, shared, flag string
			warn               bool
		}{
			{"no key", "", "", true},
			{"--api-key", "", "k3y", false},
			{"$" + apiKeyEnv, "k3y", "", false},
		} {
			t.Run(s.name+"/"+c.name, func(t *testing.T) {
				t.Setenv(apiKeyEnv, c.shared)
				args := append([]string{"--addr", "0.0.0.0:0"}, s.args...)
				if c.flag != "" {
					args = append(args, "--api-key", c.flag)
				}
				errOut := captureStderr(t)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- s.run(ctx, args) }()
				port := waitFor(t, errOut.String, portRe)
				status := func(auth string) int {
					req, _ := http.NewRequest(s.method, "http://127.0.0.1:"+port+s.url, strings.NewReader(s.body))
					if auth != "" {
						req.Header.Set("Authorization", auth)
					}
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					return resp.StatusCode
				}
				noKey, withKey := status(""), status("bEaReR k3y")
				cancel()
				if err := <-done; err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				errOut.stop()
				out := errOut.String()
				if warned := strings.Contains(out, "warning: listening on 0.0.0.0:"+port+" without --api-key"); warned != c.warn {
					t.Errorf("warning printed %v, want %v:\n%s", warned, c.warn, out)
				}
				if c.warn && (noKey != 200 || withKey != 200) || !c.warn && (noKey != 401 || withKey != 200) {
					t.Errorf("HTTP %d without the key, %d with it (key required: %v)", noKey, withKey, !c.warn)
				}
			})
		}
	}
}

// storiesFolder writes stories260K as an HF folder (gorlhf convert) with
// the chat template tmpl in chat_template.jinja.
func storiesFolder(t *testing.T, tmpl string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stories")
	if err := runConvert(context.Background(), []string{"--model", "stories260K", "--out", dir}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat_template.jinja"), []byte(tmpl), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var urlRe = regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/v1)`)

// TestServe_BrokenTemplate: a model whose chat template does not parse is
// served with a warning that names the error and its line, and chat
// requests are answered 500 with it, not "no chat template".
func TestServe_BrokenTemplate(t *testing.T) {
	dir := storiesFolder(t, "{% for m in messages %}\n{{ m.content }\n{% endfor %}")
	errOut := captureStderr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, []string{"--model", dir, "--addr", "127.0.0.1:0", "--threads", "1"}) }()
	url := waitFor(t, errOut.String, urlRe)
	resp, err := http.Post(url+"/chat/completions", "application/json", strings.NewReader(`{"messages": [{"role": "user", "content": "hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	errOut.stop()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "line 2") {
		t.Errorf("chat: HTTP %d %s; want 500 naming line 2", resp.StatusCode, body)
	}
	if out := errOut.String(); !strings.Contains(out, "chat template does not load") || !strings.Contains(out, "line 2") {
		t.Errorf("no warning naming the parse error and its line:\n%s", out)
	}
}
