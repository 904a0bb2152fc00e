package httpjson

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func fast() Config {
	return Config{Timeout: time.Second, Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, MaxResponseBytes: 1 << 20}
}

func TestWait(t *testing.T) {
	c := &Client{cfg: Config{Backoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for attempt, nominal := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		for range 50 {
			if d := c.wait(attempt, errors.New("x")); d < nominal/2 || d > nominal {
				t.Fatalf("attempt %d: wait %v outside [%v, %v]", attempt, d, nominal/2, nominal)
			}
		}
	}
	if d := c.wait(1, &httpError{status: 429, after: 3 * time.Second}); d != time.Second {
		t.Errorf("Retry-After 3s: wait %v, want the 1s cap", d)
	}
	if d := c.wait(1, &httpError{status: 429, after: 700 * time.Millisecond}); d != 700*time.Millisecond {
		t.Errorf("Retry-After 0.7s: wait %v", d)
	}
}

// TestPost runs each failure mode against a real server on loopback and
// counts the requests it saw.
func TestPost(t *testing.T) {
	cases := []struct {
		name    string
		handler func(hit int64, w http.ResponseWriter, r *http.Request)
		decode  error
		hits    int64
		want    string // "" = success
	}{
		{"ok", func(_ int64, w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }, nil, 1, ""},
		{"503 then ok", func(hit int64, w http.ResponseWriter, r *http.Request) {
			if hit == 1 {
				http.Error(w, "warming up", http.StatusServiceUnavailable)
				return
			}
			w.Write([]byte(`{}`))
		}, nil, 2, ""},
		{"always 500", func(_ int64, w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, nil, 3,
			`HTTP 500 Internal Server Error: body "boom\n" (gave up after 3 attempts)`},
		{"404 not retried", func(_ int64, w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, nil, 1, "HTTP 404 Not Found"},
		{"bad answer not retried", func(_ int64, w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) },
			errors.New("no field x"), 1, "HTTP 200 OK: no field x (not retried)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "Bearer k" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("headers %v", r.Header)
				}
				tc.handler(hits.Add(1), w, r)
			}))
			defer srv.Close()
			cfg := fast()
			cfg.APIKey = "k"
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = c.Post(context.Background(), srv.URL, []byte(`{}`), func(string, []byte) error { return tc.decode })
			if hits.Load() != tc.hits {
				t.Errorf("%d requests, want %d", hits.Load(), tc.hits)
			}
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if transient := err != nil && strings.Contains(err.Error(), "gave up"); Transient(err) != transient {
				t.Fatalf("Transient(%v) = %v", err, Transient(err))
			}
		})
	}
	// a cancelled context ends Post with its error
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, _ := New(fast())
	if err := c.Post(ctx, "http://127.0.0.1:1", nil, nil); !errors.Is(err, context.Canceled) || Transient(err) {
		t.Fatalf("cancelled: %v", err)
	}
	// no server at all is transient
	if err := c.Post(context.Background(), "http://127.0.0.1:1", nil, nil); !Transient(err) {
		t.Fatalf("connection refused: %v is not transient", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("the zero Config was accepted")
	}
}
