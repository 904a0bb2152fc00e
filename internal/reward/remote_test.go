package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// lenServer is a real reward server on loopback: the reward of a query is
// its length in bytes, the score 1 when the response (query minus prompt)
// equals the label. It records every request it receives.
type lenServer struct {
	mu   sync.Mutex
	reqs []Request
	auth []string
	hits atomic.Int64
	// fail, when set, answers the n-th request (1-based) instead.
	fail func(n int64, w http.ResponseWriter, r *http.Request) bool
}

func (s *lenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.hits.Add(1)
	// Read the whole body first: only then does net/http watch the
	// connection and cancel r.Context() when the client goes away.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if s.fail != nil && s.fail(n, w, r) {
		return
	}
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.reqs = append(s.reqs, req)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	s.mu.Unlock()
	resp := map[string]any{"rewards": []float64{}, "scores": []float64{}, "extra_logs": map[string]any{
		"batch": float64(len(req.Query)), "per": []float64{}, "text": "ignored"}}
	for i, q := range req.Query {
		resp["rewards"] = append(resp["rewards"].([]float64), float64(len(q)))
		score := 0.0
		if strings.TrimPrefix(q, req.Prompts[i]) == req.Labels[i] {
			score = 1
		}
		resp["scores"] = append(resp["scores"].([]float64), score)
		resp["extra_logs"].(map[string]any)["per"] = append(resp["extra_logs"].(map[string]any)["per"].([]float64), float64(i))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(resp)
}

func fastRemote(urls ...string) RemoteConfig {
	c := DefaultRemoteConfig()
	c.URLs, c.Timeout, c.Attempts, c.Backoff, c.MaxBackoff = urls, 2*time.Second, 3, time.Millisecond, 5*time.Millisecond
	return c
}

func samplesN(n int) []grade.Sample {
	out := make([]grade.Sample, n)
	for i := range out {
		out[i] = grade.Sample{Prompt: "Q" + strings.Repeat("?", i) + " ", Response: fmt.Sprint(i), Label: fmt.Sprint(i % 2)}
	}
	return out
}

func TestRemote_Score(t *testing.T) {
	ls := &lenServer{}
	srv := httptest.NewServer(ls)
	defer srv.Close()
	cfg := fastRemote(srv.URL + DefaultPath)
	cfg.APIKey = "sekret"
	r, err := NewRemote(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := samplesN(5)
	in[3].Query = "custom query text"
	rs, err := r.Score(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.reqs) != 1 || ls.auth[0] != "Bearer sekret" {
		t.Fatalf("%d requests, auth %q", len(ls.reqs), ls.auth)
	}
	req := ls.reqs[0]
	for i, s := range in {
		if req.Query[i] != s.Text() || req.Prompts[i] != s.Prompt || req.Labels[i] != s.Label {
			t.Errorf("request item %d: query %q prompt %q label %q", i, req.Query[i], req.Prompts[i], req.Labels[i])
		}
		wantScore := 0.0
		if s.Query == "" && s.Response == s.Label {
			wantScore = 1
		}
		if rs[i].Reward != float64(len(s.Text())) || rs[i].Score != wantScore {
			t.Errorf("result %d: %+v, want reward %d score %g", i, rs[i], len(s.Text()), wantScore)
		}
		if rs[i].Extra["batch"] != 5 || rs[i].Extra["per"] != float64(i) || len(rs[i].Extra) != 2 {
			t.Errorf("result %d extras %v", i, rs[i].Extra)
		}
	}
	if rs, err := r.Score(context.Background(), nil); err != nil || len(rs) != 0 || ls.hits.Load() != 1 {
		t.Errorf("empty batch: %v, %v, %d requests", rs, err, ls.hits.Load())
	}
}

// TestRemote_Shards checks that several URLs split a batch into contiguous
// shards, one request each, and that results come back in order.
func TestRemote_Shards(t *testing.T) {
	for _, n := range []int{7, 2, 1} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var servers []*lenServer
			var urls []string
			for range 3 {
				ls := &lenServer{}
				srv := httptest.NewServer(ls)
				defer srv.Close()
				servers, urls = append(servers, ls), append(urls, srv.URL+DefaultPath)
			}
			r, err := NewRemote(fastRemote(urls...))
			if err != nil {
				t.Fatal(err)
			}
			in := samplesN(n)
			rs, err := r.Score(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			per := (n + 2) / 3
			next := 0
			for k, ls := range servers {
				want := max(0, min(per, n-k*per))
				got := 0
				if len(ls.reqs) > 0 {
					got = len(ls.reqs[0].Query)
					for i, q := range ls.reqs[0].Query {
						if q != in[next+i].Text() {
							t.Errorf("server %d item %d: %q, want %q", k, i, q, in[next+i].Text())
						}
					}
				}
				if got != want || len(ls.reqs) > 1 || (want == 0) != (len(ls.reqs) == 0) {
					t.Errorf("server %d: %d requests, first of %d queries; want one of %d", k, len(ls.reqs), got, want)
				}
				next += got
			}
			for i, s := range in {
				if rs[i].Reward != float64(len(s.Text())) {
					t.Errorf("result %d out of order: %g", i, rs[i].Reward)
				}
			}
		})
	}
}

// TestRemote_Faults runs the client against faulty servers.
func TestRemote_Faults(t *testing.T) {
	status := func(code int, body string, times int64) func(int64, http.ResponseWriter, *http.Request) bool {
		return func(n int64, w http.ResponseWriter, _ *http.Request) bool {
			if n > times {
				return false
			}
			if code == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "0")
			}
			w.WriteHeader(code)
			fmt.Fprint(w, body)
			return true
		}
	}
	body := func(s string) func(int64, http.ResponseWriter, *http.Request) bool {
		return func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
			fmt.Fprint(w, s)
			return true
		}
	}
	slow := func(_ int64, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
		return true
	}
	cases := []struct {
		name     string
		fail     func(int64, http.ResponseWriter, *http.Request) bool
		timeout  time.Duration
		wantErr  []string // substrings; nil = success
		wantHits int64
	}{
		{"500 then OK", status(500, "busy", 1), 0, nil, 2},
		{"503 twice then OK", status(503, "warming up", 2), 0, nil, 3},
		{"429 then OK", status(429, "slow down", 1), 0, nil, 2},
		{"always 500", status(500, "Traceback: CUDA out of memory", 99), 0,
			[]string{"HTTP 500 Internal Server Error", "CUDA out of memory", "gave up after 3 attempts", "4 queries"}, 3},
		{"400 not retried", status(400, "bad labels", 99), 0, []string{"HTTP 400", "bad labels", "not retried"}, 1},
		{"slow beyond timeout", slow, 100 * time.Millisecond, []string{"timeout of 100ms", "gave up after 3 attempts"}, 3},
		{"malformed JSON", body(`{"rewards": [1, 2,`), 0, []string{"malformed JSON", `{\"rewards\": [1, 2,`, "not retried"}, 1},
		{"wrong length", body(`{"rewards": [1, 2, 3]}`), 0, []string{"3 rewards for 4 queries", "not retried"}, 1},
		{"wrong scores length", body(`{"rewards": [1, 2, 3, 4], "scores": [1]}`), 0, []string{"1 scores for 4 queries"}, 1},
		{"no rewards", body(`{"scores": [1, 2, 3, 4]}`), 0, []string{`no "rewards"`}, 1},
		{"null reward", body(`{"rewards": [1, null, 3, 4]}`), 0, []string{"malformed JSON"}, 1},
		{"HTML page", body(`<html>proxy error</html>`), 0, []string{"malformed JSON", "proxy error"}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ls := &lenServer{fail: c.fail}
			srv := httptest.NewServer(ls)
			defer srv.Close()
			cfg := fastRemote(srv.URL + DefaultPath)
			if c.timeout > 0 {
				cfg.Timeout = c.timeout
			}
			r, err := NewRemote(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rs, err := r.Score(context.Background(), samplesN(4))
			if hits := ls.hits.Load(); hits != c.wantHits {
				t.Errorf("%d requests, want %d", hits, c.wantHits)
			}
			if c.wantErr == nil {
				if err != nil || len(rs) != 4 || rs[3].Reward != float64(len(samplesN(4)[3].Text())) {
					t.Errorf("results %v, error %v", rs, err)
				}
				return
			}
			if err == nil || rs != nil {
				t.Fatalf("results %v, error %v; want an error and no results", rs, err)
			}
			for _, want := range append(c.wantErr, srv.URL+DefaultPath) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestRemote_ConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + DefaultPath
	srv.Close() // nothing listens there any more
	r, err := NewRemote(fastRemote(url))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs, err := r.Score(context.Background(), samplesN(2))
	if err == nil || rs != nil || !strings.Contains(err.Error(), url) || !strings.Contains(err.Error(), "refused") ||
		!strings.Contains(err.Error(), "gave up after 3 attempts") {
		t.Fatalf("results %v, error %v", rs, err)
	}
	t.Logf("%v in %v", err, time.Since(start))
}

// TestRemote_OneShardFails: a batch split over a good and a broken server
// fails as a whole; no partial results come back.
func TestRemote_OneShardFails(t *testing.T) {
	good := &lenServer{}
	bad := &lenServer{fail: func(_ int64, w http.ResponseWriter, _ *http.Request) bool {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	}}
	s1, s2 := httptest.NewServer(good), httptest.NewServer(bad)
	defer s1.Close()
	defer s2.Close()
	r, err := NewRemote(fastRemote(s1.URL, s2.URL))
	if err != nil {
		t.Fatal(err)
	}
	rs, err := r.Score(context.Background(), samplesN(6))
	if err == nil || rs != nil || !strings.Contains(err.Error(), s2.URL) || !strings.Contains(err.Error(), "down for maintenance") {
		t.Fatalf("results %v, error %v", rs, err)
	}
}

func TestRemote_Cancel(t *testing.T) {
	ls := &lenServer{fail: func(_ int64, w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return true
	}}
	srv := httptest.NewServer(ls)
	defer srv.Close()
	r, _ := NewRemote(fastRemote(srv.URL))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.Score(ctx, samplesN(1))
	if !errors.Is(err, context.DeadlineExceeded) || ls.hits.Load() != 1 {
		t.Errorf("error %v after %d requests, want the caller's deadline after 1", err, ls.hits.Load())
	}
}

func TestRemoteConfig_Validate(t *testing.T) {
	ok := fastRemote("http://127.0.0.1:5000/get_reward")
	cases := map[string]func(*RemoteConfig){
		"no url":     func(c *RemoteConfig) { c.URLs = nil },
		"not http":   func(c *RemoteConfig) { c.URLs = []string{"/path/reward_func.py"} },
		"timeout":    func(c *RemoteConfig) { c.Timeout = 0 },
		"attempts":   func(c *RemoteConfig) { c.Attempts = 0 },
		"backoff":    func(c *RemoteConfig) { c.MaxBackoff = 0 },
		"body limit": func(c *RemoteConfig) { c.MaxResponseBytes = 0 },
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, f := range cases {
		c := ok
		f(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
