package env

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpjson"
)

// serveChain starts a chain environment server on loopback behind wrap
// (nil: none).
func serveChain(t *testing.T, cfg ServerConfig, wrap func(http.Handler) http.Handler) (*Server, string) {
	t.Helper()
	f, err := ChainFactory(DefaultChainConfig())
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = s
	if wrap != nil {
		h = wrap(s)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return s, hs.URL
}

func fastRemote(url string) RemoteConfig {
	return RemoteConfig{URL: url, HTTP: httpjson.Config{Timeout: 2 * time.Second, Attempts: 3, Backoff: time.Millisecond,
		MaxBackoff: 5 * time.Millisecond, MaxResponseBytes: 1 << 20}}
}

func TestRemote_SameAsLocal(t *testing.T) {
	// An episode played through the server equals one played locally,
	// and Close frees it on the server.
	ctx := context.Background()
	srv, url := serveChain(t, DefaultServerConfig(), nil)
	f, err := OpenRemote("url="+url+",timeout=5s,attempts=2", "")
	if err != nil {
		t.Fatal(err)
	}
	local, _ := ChainFactory(DefaultChainConfig())
	for _, prompt := range []string{"23+4=", "88+8=", "10-3="} {
		e := f()
		got, err := Run(ctx, e, prompt, "", chainOracle, DefaultRunConfig())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := Run(ctx, local(), prompt, "", chainOracle, DefaultRunConfig())
		if got.Transcript != want.Transcript || got.Return != want.Return || got.Done != want.Done {
			t.Fatalf("%s: remote %+v, local %+v", prompt, got, want)
		}
		if err := e.(Closer).Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st := srv.Stats(); st.Episodes != 3 || st.Steps != 9 || st.Open != 0 || st.Errors != 0 {
		t.Fatalf("server stats %+v", st)
	}
}

func TestRemote_RetriedStepIsReplayed(t *testing.T) {
	// The first answer to turn 2 is lost (the server did the step, the
	// client sees a 502): the client retries turn 2 and the server replays
	// its answer instead of stepping again.
	ctx := context.Background()
	var steps atomic.Int64
	srv, url := serveChain(t, DefaultServerConfig(), func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/step" && steps.Add(1) == 2 {
				h.ServeHTTP(httptest.NewRecorder(), r) // done, answer dropped
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f, _ := RemoteFactory(fastRemote(url))
	got, err := Run(ctx, f(), "23+4=", "", chainOracle, DefaultRunConfig())
	if err != nil {
		t.Fatal(err)
	}
	local, _ := ChainFactory(DefaultChainConfig())
	want, _ := Run(ctx, local(), "23+4=", "", chainOracle, DefaultRunConfig())
	if got.Transcript != want.Transcript || got.Return != 1 {
		t.Fatalf("remote %q (return %g), local %q", got.Transcript, got.Return, want.Transcript)
	}
	if st := srv.Stats(); st.Replays != 1 || st.Steps != 3 {
		t.Fatalf("server stats %+v, want 3 steps and 1 replay", st)
	}
}

func TestRemote_Errors(t *testing.T) {
	ctx := context.Background()
	cfg := DefaultServerConfig()
	cfg.APIKey = "secret"
	_, url := serveChain(t, cfg, nil)
	withKey := fastRemote(url)
	withKey.HTTP.APIKey = "secret"
	f, _ := RemoteFactory(withKey)

	// the environment refuses the prompt: 422, not retried, the server's
	// message in the error
	_, err := f().Reset(ctx, "Once upon a time", "")
	for _, want := range []string{url + "/reset", "HTTP 422", `is not a problem like`, "not retried"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad prompt: %v, want %q in it", err, want)
		}
	}
	// no token: 401
	noKey, _ := RemoteFactory(fastRemote(url))
	if _, err := noKey().Reset(ctx, "1+1=", ""); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Errorf("without the token: %v", err)
	}
	// a step after the end, and a step of a closed episode
	e := f()
	if _, err := e.Reset(ctx, "1+1=", ""); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"2", "3", "4"} {
		if _, _, _, err := e.Step(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := e.Step(ctx, "5"); err == nil || !strings.Contains(err.Error(), "HTTP 409") || !strings.Contains(err.Error(), "is over") {
		t.Errorf("step after done: %v", err)
	}
	id := e.(*remoteEnv).id
	e.(Closer).Close(ctx)
	e.(*remoteEnv).id = id
	if _, _, _, err := e.Step(ctx, "5"); err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "unknown episode") {
		t.Errorf("step of a closed episode: %v", err)
	}
	// nobody listening: retried, then an error naming the URL
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	df, _ := RemoteFactory(fastRemote(deadURL))
	if _, err := df().Reset(ctx, "1+1=", ""); err == nil || !strings.Contains(err.Error(), deadURL) || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Errorf("server down: %v", err)
	}
	// configuration
	for _, args := range []string{"", "url=ftp://x", "url=http://x,timeout=5", "url=http://x,attempts=0", "url=http://x,port=1"} {
		if _, err := Open("remote", args); err == nil {
			t.Errorf("Open(remote, %q) accepted", args)
		}
	}
}

func TestServer_Capacity(t *testing.T) {
	// A full server answers 503 (retried, then an error); an idle episode
	// is forgotten after the TTL, which frees room.
	ctx := context.Background()
	cfg := DefaultServerConfig()
	// The TTL must outlast the refused Reset's retries even on a loaded
	// machine (50 ms did not at load ~30: the first episode expired and
	// the second Reset got in).
	cfg.MaxEpisodes, cfg.IdleTTL = 1, time.Second
	srv, url := serveChain(t, cfg, nil)
	f, _ := RemoteFactory(fastRemote(url))
	if _, err := f().Reset(ctx, "1+1=", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f().Reset(ctx, "1+1=", ""); err == nil || !strings.Contains(err.Error(), "HTTP 503") || !strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("full server: %v", err)
	}
	time.Sleep(1100 * time.Millisecond)
	if _, err := f().Reset(ctx, "1+1=", ""); err != nil {
		t.Fatalf("after the idle TTL: %v", err)
	}
	if st := srv.Stats(); st.Open != 1 || st.Episodes != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestServer_Auth: the bearer scheme is matched in any case (RFC 7235), a
// 401 names the scheme in WWW-Authenticate, and GET /health is open, as on
// gorlhf's other servers.
func TestServer_Auth(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.APIKey = "secret"
	_, url := serveChain(t, cfg, nil)
	for _, c := range []struct {
		method, path, auth string
		status             int
	}{
		{"GET", "/health", "", 200},
		{"POST", "/reset", "", 401},
		{"POST", "/reset", "Bearer wrong", 401},
		{"POST", "/reset", "bearer secret", 200},
		{"POST", "/reset", "BEARER  secret", 200},
	} {
		req, err := http.NewRequest(c.method, url+c.path, strings.NewReader(`{"prompt": "1+1=", "label": ""}`))
		if err != nil {
			t.Fatal(err)
		}
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s with %q: HTTP %d, want %d", c.method, c.path, c.auth, resp.StatusCode, c.status)
		}
		if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s %s: 401 without a Bearer challenge", c.method, c.path)
		}
	}
}

// TestServer_TrailingData (issue 17): a request body with anything after
// its JSON is a 400, not half-read.
func TestServer_TrailingData(t *testing.T) {
	_, url := serveChain(t, DefaultServerConfig(), nil)
	resp, err := http.Post(url+"/reset", "application/json", strings.NewReader(`{"prompt": "23+4="} xyz`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "trailing data") {
		t.Errorf("status %d: %s", resp.StatusCode, b)
	}
}
