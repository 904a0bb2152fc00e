package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
)

// The control endpoints an RL trainer drives between rollouts, as vLLM's
// dev-mode server and SGLang name them:
//
//	POST /pause?mode=wait|keep|abort   stop admitting generation requests
//	POST /resume                       admit them again
//	GET  /is_paused                    {"is_paused": bool}
//
// While paused, new generation requests wait (until /resume or until
// their client gives up); they are not refused. The modes differ in what
// happens to requests already generating:
//
//   - wait: they finish; /pause answers once they are done.
//   - keep (what TRL's async GRPO client sends): /pause answers at once
//     and they finish on the weights they started with. vLLM freezes them
//     instead and resumes them on the new weights; gorlhf's engine loads
//     weights only between requests (generate.Engine.LoadWeights), so a
//     completion is always the work of one weight version.
//   - abort (vLLM's default): they stop now and answer 503 (code
//     "aborted", Retry-After: 1), so a retrying client sends them again
//     after /resume; /pause answers once they are gone. vLLM returns
//     their partial output with finish_reason "abort" instead.
//
// clear_cache is accepted and changes nothing: the engine drops its
// prefix cache on every weight load anyway.

// WeightVersionHeader carries the served weight version on every answer
// (SGLang and vLLM name none; the JSON bodies of completions and of the
// control endpoints carry it as "weight_version", SGLang's name).
const WeightVersionHeader = "X-Weight-Version"

// errAborted is the cause of a generation request stopped by
// /pause?mode=abort.
var errAborted = errors.New("serve: request aborted by /pause?mode=abort")

// gate holds generation requests while the server is paused and tracks
// those in flight.
type gate struct {
	mu       sync.Mutex
	paused   bool
	resumed  chan struct{}                      // closed by resume; a new one per pause
	changed  chan struct{}                      // closed (and replaced) whenever a request leaves
	inflight map[uint64]context.CancelCauseFunc // running requests
	next     uint64
}

func newGate() *gate {
	return &gate{resumed: make(chan struct{}), changed: make(chan struct{}), inflight: map[uint64]context.CancelCauseFunc{}}
}

// enter waits while the gate is paused, then registers a request; leave
// must be called with the id when it ends.
func (g *gate) enter(ctx context.Context) (context.Context, uint64, error) {
	g.mu.Lock()
	for g.paused {
		ch := g.resumed
		g.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		g.mu.Lock()
	}
	defer g.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	g.next++
	g.inflight[g.next] = cancel
	return ctx, g.next, nil
}

func (g *gate) leave(id uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cancel, ok := g.inflight[id]; ok {
		cancel(nil)
		delete(g.inflight, id)
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// pause closes the gate; with abort it stops the requests in flight, and
// with wait or abort it returns once none is left (or ctx ends).
func (g *gate) pause(ctx context.Context, mode string) (int, error) {
	g.mu.Lock()
	if !g.paused {
		g.paused = true
		g.resumed = make(chan struct{})
	}
	n := len(g.inflight)
	if mode == "abort" {
		for _, cancel := range g.inflight {
			cancel(errAborted)
		}
	}
	g.mu.Unlock()
	if mode == "keep" {
		return n, nil
	}
	return n, g.drained(ctx)
}

// drained waits until no request is in flight.
func (g *gate) drained(ctx context.Context) error {
	for {
		g.mu.Lock()
		left, ch := len(g.inflight), g.changed
		g.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("serve: %d requests still in flight: %w", left, ctx.Err())
		}
	}
}

// abortAll stops the requests in flight without pausing and waits until
// they are gone (SGLang's abort_all_requests).
func (g *gate) abortAll(ctx context.Context) error {
	g.mu.Lock()
	for _, cancel := range g.inflight {
		cancel(errAborted)
	}
	g.mu.Unlock()
	return g.drained(ctx)
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.resumed)
	}
}

func (g *gate) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// generation wraps a generation endpoint: it waits at the gate and
// answers 503 "aborted" for a request that /pause?mode=abort stopped
// before it wrote anything.
func (s *Server) generation(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, id, err := s.gate.enter(r.Context())
		if err != nil {
			return // the client went away while the server was paused
		}
		defer s.gate.leave(id)
		rw := &trackingWriter{ResponseWriter: w}
		next(rw, r.WithContext(ctx))
		if !rw.wrote && errors.Is(context.Cause(ctx), errAborted) {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "server_error", errAborted.Error()+"; send it again after /resume", "aborted")
		}
	}
}

// trackingWriter records whether a handler answered.
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// Flush keeps streaming working through the wrapper.
func (t *trackingWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		t.wrote = true
		f.Flush()
	}
}

// versioned sets the weight-version header to the version served when
// the request arrives (completions overwrite it with the version that
// produced their tokens before they answer).
func (s *Server) versioned(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(WeightVersionHeader, strconv.FormatInt(s.eng.Stats().WeightVersion, 10))
		next.ServeHTTP(w, r)
	})
}

// pauseModes are the /pause modes served.
var pauseModes = map[string]bool{"wait": true, "keep": true, "abort": true}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return
	}
	mode := r.URL.Query().Get("mode")
	if mode == "" {
		mode = "abort" // vLLM's default
	}
	if !pauseModes[mode] {
		badRequest(w, "mode", fmt.Errorf("must be wait, keep or abort, got %q", mode))
		return
	}
	if v := r.URL.Query().Get("clear_cache"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			badRequest(w, "clear_cache", fmt.Errorf("must be true or false, got %q", v))
			return
		}
	}
	n, err := s.gate.pause(r.Context(), mode)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "server_error", err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "paused", "mode": mode, "num_paused_requests": n,
		"weight_version": s.eng.Stats().WeightVersion})
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return
	}
	s.gate.resume()
	writeJSON(w, http.StatusOK, map[string]any{"status": "resumed", "weight_version": s.eng.Stats().WeightVersion})
}

func (s *Server) isPaused(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"is_paused": s.gate.isPaused(), "weight_version": s.eng.Stats().WeightVersion})
}

// weightVersion answers SGLang's GET /get_weight_version.
func (s *Server) weightVersion(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		methodNotAllowed(w, r, "GET")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"weight_version": s.eng.Stats().WeightVersion})
}
