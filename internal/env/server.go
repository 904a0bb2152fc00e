package env

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpauth"
	"github.com/gorlhf/gorlhf/internal/httpjson"
)

// ServerConfig configures an environment server.
type ServerConfig struct {
	// APIKey, when set, must come as "Authorization: Bearer APIKey" (the
	// scheme in any case) on every route but GET /health.
	APIKey string
	// MaxEpisodes bounds the episodes held at once (a reset beyond it is
	// answered 503, which clients retry); IdleTTL forgets an episode no
	// call has touched for that long (one a client never closed).
	MaxEpisodes int
	IdleTTL     time.Duration
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64
	// Logger receives one line per failed call; nil discards them.
	Logger *slog.Logger
}

// DefaultServerConfig holds up to 65,536 episodes, idle ones for 30 min.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{MaxEpisodes: 1 << 16, IdleTTL: 30 * time.Minute, MaxBodyBytes: 16 << 20}
}

// Validate checks the configuration.
func (c ServerConfig) Validate() error {
	if c.MaxEpisodes < 1 || c.IdleTTL <= 0 || c.MaxBodyBytes <= 0 {
		return fmt.Errorf("env: server: max episodes %d, idle TTL %v and max body %d must be positive", c.MaxEpisodes, c.IdleTTL, c.MaxBodyBytes)
	}
	return nil
}

// Server serves environments made by a Factory over the remote
// environment protocol (see ResetRequest), one instance per episode. It
// is an http.Handler; safe for concurrent use. Errors are JSON
// {"error": "…"}: 400 for a bad request, 404 for an unknown episode, 409
// for a step out of turn, 422 when the environment itself fails (a prompt
// it cannot use), 503 when full.
type Server struct {
	f   Factory
	cfg ServerConfig
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex
	episodes map[string]*served
	stats    ServerStats
}

// served is one episode and the last step it answered (replayed when a
// client retries that turn).
type served struct {
	mu      sync.Mutex
	env     Env
	turn    int
	last    StepResponse
	touched time.Time
}

// ServerStats counts what a server did.
type ServerStats struct {
	Episodes, Steps, Replays, Errors int64
	Open                             int
}

// NewServer returns a server of f's environments.
func NewServer(f Factory, cfg ServerConfig) (*Server, error) {
	if f == nil {
		return nil, fmt.Errorf("env: server: no environment factory")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{f: f, cfg: cfg, log: cfg.Logger, episodes: map[string]*served{}, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.mux.HandleFunc("POST /reset", s.reset)
	s.mux.HandleFunc("POST /step", s.step)
	s.mux.HandleFunc("POST /close", s.close)
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	return s, nil
}

// ServeHTTP implements http.Handler.
// GET /health is open, as on gorlhf's other servers, so that probes
// need no key.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	health := r.URL.Path == "/health" && r.Method == http.MethodGet
	if !health && !httpauth.Valid(r, s.cfg.APIKey) {
		httpauth.Challenge(w)
		s.fail(w, r, http.StatusUnauthorized, "missing or wrong bearer token (send Authorization: Bearer <key>)")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	s.mux.ServeHTTP(w, r)
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Open = len(s.episodes)
	return st
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	var req ResetRequest
	if !s.decode(w, r, &req) {
		return
	}
	id, ep, ok := s.open(w, r)
	if !ok {
		return
	}
	obs, err := ep.env.Reset(r.Context(), req.Prompt, req.Label)
	if err != nil {
		s.forget(id)
		s.fail(w, r, http.StatusUnprocessableEntity, "reset: "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ResetResponse{EpisodeID: id, Observation: obs})
}

// open registers a fresh episode, after forgetting idle ones.
func (s *Server) open(w http.ResponseWriter, r *http.Request) (string, *served, bool) {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.episodes {
		if now.Sub(e.touched) > s.cfg.IdleTTL {
			delete(s.episodes, k)
		}
	}
	if len(s.episodes) >= s.cfg.MaxEpisodes {
		s.stats.Errors++
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": fmt.Sprintf("%d episodes open, the most this server holds", len(s.episodes))})
		return "", nil, false
	}
	ep := &served{env: s.f(), touched: now}
	s.episodes[id] = ep
	s.stats.Episodes++
	return id, ep, true
}

func (s *Server) step(w http.ResponseWriter, r *http.Request) {
	var req StepRequest
	if !s.decode(w, r, &req) {
		return
	}
	if req.EpisodeID == "" {
		s.fail(w, r, http.StatusBadRequest, "no episode_id")
		return
	}
	s.mu.Lock()
	ep := s.episodes[req.EpisodeID]
	s.mu.Unlock()
	if ep == nil {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("unknown episode %q (never started, closed, or idle longer than %v)", req.EpisodeID, s.cfg.IdleTTL))
		return
	}
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.touched = time.Now()
	switch {
	case req.Turn == ep.turn && req.Turn > 0: // a retry of the last step
		s.count(func(st *ServerStats) { st.Replays++ })
		writeJSON(w, http.StatusOK, ep.last)
		return
	case req.Turn != ep.turn+1:
		s.fail(w, r, http.StatusConflict, fmt.Sprintf("episode %s: turn %d, expected %d", req.EpisodeID, req.Turn, ep.turn+1))
		return
	case ep.turn > 0 && ep.last.Done:
		s.fail(w, r, http.StatusConflict, fmt.Sprintf("episode %s is over (turn %d said done)", req.EpisodeID, ep.turn))
		return
	}
	fb, rew, done, err := ep.env.Step(r.Context(), req.Action)
	if err != nil {
		s.fail(w, r, http.StatusUnprocessableEntity, fmt.Sprintf("episode %s: turn %d: %v", req.EpisodeID, req.Turn, err))
		return
	}
	ep.turn, ep.last = req.Turn, StepResponse{Feedback: fb, Reward: rew, Done: done}
	s.count(func(st *ServerStats) { st.Steps++ })
	writeJSON(w, http.StatusOK, ep.last)
}

func (s *Server) close(w http.ResponseWriter, r *http.Request) {
	var req CloseRequest
	if !s.decode(w, r, &req) {
		return
	}
	ep := s.forget(req.EpisodeID)
	if c, ok := ep.(Closer); ok {
		if err := c.Close(r.Context()); err != nil {
			s.log.Warn("env: close", "episode", req.EpisodeID, "err", err)
		}
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// forget drops an episode and returns its environment (nil if unknown).
func (s *Server) forget(id string) Env {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep := s.episodes[id]
	delete(s.episodes, id)
	if ep == nil {
		return nil
	}
	return ep.env
}

func (s *Server) count(f func(*ServerStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// decode reads a JSON body, answering 400 when it cannot.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := httpjson.DecodeOne(r.Body, v); err != nil {
		s.fail(w, r, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.count(func(st *ServerStats) { st.Errors++ })
	s.log.Warn("env: request failed", "path", r.URL.Path, "status", status, "error", msg)
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
