package reward

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpauth"
	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/reward/grade"
)

// ServerConfig configures a reward server.
type ServerConfig struct {
	// Path is where rewards are served (OpenRLHF: /get_reward).
	Path string
	// APIKey, when set, must come as "Authorization: Bearer APIKey" (the
	// scheme in any case); GET /health stays open.
	APIKey string
	// BatchSize is how many samples the server gathers from concurrent
	// requests before scoring them together; Window is how long it waits
	// for more after the first request arrives. A reward model scores a
	// batch of B sequences much faster than B batches of one, and RL
	// clients send many small requests at once.
	BatchSize int
	Window    time.Duration
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// Logger receives one line per scored batch and per failure; nil
	// discards them.
	Logger *slog.Logger
}

// DefaultServerConfig serves /get_reward with batches of 16 and a 5 ms
// window.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{Path: DefaultPath, BatchSize: 16, Window: 5 * time.Millisecond, MaxBodyBytes: 64 << 20}
}

// Validate checks the configuration.
func (c ServerConfig) Validate() error {
	switch {
	case !strings.HasPrefix(c.Path, "/"):
		return fmt.Errorf("reward: server path %q must start with /", c.Path)
	case c.BatchSize < 1:
		return fmt.Errorf("reward: server batch size %d must be ≥ 1", c.BatchSize)
	case c.Window < 0:
		return fmt.Errorf("reward: server window %v must be ≥ 0", c.Window)
	case c.MaxBodyBytes <= 0:
		return fmt.Errorf("reward: server max body %d must be positive", c.MaxBodyBytes)
	}
	return nil
}

// Server serves a Source over HTTP with OpenRLHF's protocol (see
// Request), so that an OpenRLHF trainer (--reward.remote_url) or a gorlhf
// Remote can use it. Concurrent requests are merged into batches by one
// scoring goroutine. Errors are JSON: {"error": "…"}.
type Server struct {
	src    Source
	cfg    ServerConfig
	log    *slog.Logger
	jobs   chan *job
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	requests, batches, samples atomic.Int64
}

// job is one request waiting for its results.
type job struct {
	ctx     context.Context
	samples []grade.Sample
	done    chan jobResult // buffered: the scorer never blocks on it
}

type jobResult struct {
	rs  []grade.Result
	err error
}

// NewServer starts the scoring goroutine; Close stops it.
func NewServer(src Source, cfg ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{src: src, cfg: cfg, log: log, jobs: make(chan *job), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go s.loop()
	return s, nil
}

// Close stops scoring; requests still waiting fail. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		s.cancel()
		<-s.done
	})
}

// Stats reports how many requests, scoring batches and samples the server
// has handled.
func (s *Server) Stats() (requests, batches, samples int64) {
	return s.requests.Load(), s.batches.Load(), s.samples.Load()
}

// ServeHTTP implements http.Handler: POST Path scores, GET /health
// answers {"status": "ok"}.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/health" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case r.URL.Path != s.cfg.Path:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %s (rewards are at POST %s)", r.URL.Path, s.cfg.Path))
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use POST", r.Method, s.cfg.Path))
	case !httpauth.Valid(r, s.cfg.APIKey):
		httpauth.Challenge(w)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer <key>)")
	default:
		s.serveReward(w, r)
	}
}

func (s *Server) serveReward(w http.ResponseWriter, r *http.Request) {
	var req Request
	if err := httpjson.DecodeOne(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), &req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", tooBig.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, "malformed JSON request: "+err.Error())
		return
	}
	if req.Query == nil {
		writeError(w, http.StatusBadRequest, `"query" (a list of texts) is required`)
		return
	}
	samples, err := req.samples()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.requests.Add(1)
	rs, err := s.submit(r.Context(), samples)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client is gone
		}
		s.log.Warn("reward request failed", "queries", len(samples), "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, newResponse(rs))
}

// submit queues samples for the scoring goroutine and waits.
func (s *Server) submit(ctx context.Context, samples []grade.Sample) ([]grade.Result, error) {
	if len(samples) == 0 {
		return []grade.Result{}, nil
	}
	j := &job{ctx: ctx, samples: samples, done: make(chan jobResult, 1)}
	select {
	case s.jobs <- j:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, errors.New("server is shutting down")
	}
	select {
	case res := <-j.done:
		return res.rs, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loop gathers jobs into batches and scores them, one batch at a time.
func (s *Server) loop() {
	defer close(s.done)
	for {
		var first *job
		select {
		case first = <-s.jobs:
		case <-s.ctx.Done():
			return
		}
		batch := s.gather(first)
		s.score(batch)
	}
}

// gather collects jobs after first until BatchSize samples or the window
// closes.
func (s *Server) gather(first *job) []*job {
	batch, n := []*job{first}, len(first.samples)
	if n >= s.cfg.BatchSize || s.cfg.Window == 0 {
		return batch
	}
	timer := time.NewTimer(s.cfg.Window)
	defer timer.Stop()
	for n < s.cfg.BatchSize {
		select {
		case j := <-s.jobs:
			batch, n = append(batch, j), n+len(j.samples)
		case <-timer.C:
			return batch
		case <-s.ctx.Done():
			return batch
		}
	}
	return batch
}

// score runs one merged batch. If it fails and holds several requests,
// each is scored alone, so that one bad request (say, a label a grader
// rejects) fails only itself.
func (s *Server) score(batch []*job) {
	live := batch[:0]
	var all []grade.Sample
	for _, j := range batch {
		if j.ctx.Err() != nil {
			j.done <- jobResult{err: j.ctx.Err()}
			continue
		}
		live = append(live, j)
		all = append(all, j.samples...)
	}
	if len(live) == 0 {
		return
	}
	start := time.Now()
	rs, err := s.src.Score(s.ctx, all)
	if err == nil {
		err = grade.CheckResults(rs, len(all))
	}
	s.batches.Add(1)
	s.samples.Add(int64(len(all)))
	if err != nil && len(live) > 1 {
		for _, j := range live {
			s.score([]*job{j})
		}
		return
	}
	s.log.Info("scored", "requests", len(live), "samples", len(all), "elapsed", time.Since(start).Round(time.Microsecond), "err", err)
	off := 0
	for _, j := range live {
		if err != nil {
			j.done <- jobResult{err: err}
			continue
		}
		j.done <- jobResult{rs: rs[off : off+len(j.samples) : off+len(j.samples)]}
		off += len(j.samples)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
