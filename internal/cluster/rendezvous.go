package cluster

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Member is one worker process as it announces itself to the driver.
type Member struct {
	Rank    int    `json:"rank"`
	Host    string `json:"host"`    // the worker's host name, for error messages
	Addr    string `json:"addr"`    // host:port of its role server
	PID     int    `json:"pid"`     // its process id on Host
	Version string `json:"version"` // gorlhf version of the worker binary
	Digest  string `json:"digest"`  // digest of the run configuration it was started with
}

// Lost reports a worker whose watch connection to the driver dropped:
// the process died, was killed, or lost the network.
type Lost struct {
	Member Member
	Err    error
}

// Error names the worker.
func (l Lost) Error() string {
	return fmt.Sprintf("cluster: worker rank %d (pid %d on %s) lost its connection to the driver: %v", l.Member.Rank, l.Member.PID, l.Member.Host, l.Err)
}

// RendezvousConfig sets up the driver's side.
type RendezvousConfig struct {
	// Secret is the per-run secret every request must carry as
	// "Authorization: Bearer <Secret>". Never logged.
	Secret string
	// Version and Digest are the driver's gorlhf version and config
	// digest; a worker that differs in either is refused.
	Version, Digest string
	// Ranks are the worker ranks expected to register (the driver is
	// rank 0 and never registers).
	Ranks []int
	// Assignment returns what a worker of the given rank must run (plain
	// JSON: its roles and their settings). Called once per registration.
	Assignment func(rank int) (json.RawMessage, error)
	// Heartbeat is how often the watch stream writes a line, so that a
	// half-open connection is noticed; default 2 s.
	Heartbeat time.Duration
}

// Validate checks the configuration.
func (c RendezvousConfig) Validate() error {
	var errs []error
	if c.Secret == "" {
		errs = append(errs, errors.New("cluster: rendezvous: empty run secret"))
	}
	if c.Assignment == nil {
		errs = append(errs, errors.New("cluster: rendezvous: no assignment function"))
	}
	seen := map[int]bool{}
	for _, r := range c.Ranks {
		if r < 1 || seen[r] {
			errs = append(errs, fmt.Errorf("cluster: rendezvous: bad or repeated worker rank %d", r))
		}
		seen[r] = true
	}
	return errors.Join(errs...)
}

// Rendezvous is the driver's side of the handshake: an HTTP handler where
// workers register (POST /v1/register) and then hold a watch stream open
// (GET /v1/watch?rank=R) for as long as the run lasts. A watch that ends
// without the driver closing the run reports the worker Lost; closing the
// run ends every watch with "bye", on which workers exit.
type Rendezvous struct {
	cfg      RendezvousConfig
	expected map[int]bool

	mu       sync.Mutex
	members  map[int]Member
	watching map[int]bool
	board    map[string]string // board.go
	complete chan struct{}     // closed when every expected rank registered and holds its watch stream
	lost     chan Lost
	closed   chan struct{}
	once     sync.Once
}

// NewRendezvous returns the driver's side.
func NewRendezvous(cfg RendezvousConfig) (*Rendezvous, error) {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 2 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	r := &Rendezvous{cfg: cfg, expected: map[int]bool{}, members: map[int]Member{}, watching: map[int]bool{}, board: map[string]string{},
		complete: make(chan struct{}), lost: make(chan Lost, len(cfg.Ranks)+1), closed: make(chan struct{})}
	for _, k := range cfg.Ranks {
		r.expected[k] = true
	}
	if len(cfg.Ranks) == 0 {
		close(r.complete)
	}
	return r, nil
}

// Handler serves the endpoints: registration, watch and the board.
func (r *Rendezvous) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/register", r.register)
	mux.HandleFunc("GET /v1/watch", r.watch)
	mux.HandleFunc("PUT /v1/board/{key}", r.post)
	mux.HandleFunc("GET /v1/board/{key}", r.read)
	return r.auth(mux)
}

// auth refuses a request without the run secret.
func (r *Rendezvous) auth(next http.Handler) http.Handler {
	want := []byte("Bearer " + r.cfg.Secret)
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got := []byte(req.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			http.Error(w, "missing or wrong run secret", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, req)
	})
}

// registration is the answer to a registration.
type registration struct {
	Assignment json.RawMessage `json:"assignment"`
}

func (r *Rendezvous) register(w http.ResponseWriter, req *http.Request) {
	var m Member
	if err := json.NewDecoder(io.LimitReader(req.Body, 1<<16)).Decode(&m); err != nil {
		http.Error(w, "bad registration: "+err.Error(), http.StatusBadRequest)
		return
	}
	if msg := r.mismatch(m); msg != "" {
		http.Error(w, msg, http.StatusConflict)
		return
	}
	a, err := r.cfg.Assignment(m.Rank)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	r.mu.Lock()
	if _, dup := r.members[m.Rank]; dup {
		r.mu.Unlock()
		http.Error(w, fmt.Sprintf("rank %d already registered", m.Rank), http.StatusConflict)
		return
	}
	r.members[m.Rank] = m
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(registration{Assignment: a})
}

// mismatch says why a worker cannot join ("" when it can).
func (r *Rendezvous) mismatch(m Member) string {
	switch {
	case !r.expected[m.Rank]:
		return fmt.Sprintf("rank %d is not a worker rank of this run (workers: %v)", m.Rank, r.cfg.Ranks)
	case m.Version != r.cfg.Version:
		return fmt.Sprintf("version mismatch: driver runs gorlhf %s, worker rank %d on %s runs gorlhf %s", r.cfg.Version, m.Rank, m.Host, m.Version)
	case m.Digest != r.cfg.Digest:
		return fmt.Sprintf("config digest mismatch: driver %s, worker rank %d on %s %s (started with other settings)", r.cfg.Digest, m.Rank, m.Host, m.Digest)
	}
	return ""
}

func (r *Rendezvous) watch(w http.ResponseWriter, req *http.Request) {
	var rank int
	if _, err := fmt.Sscan(req.URL.Query().Get("rank"), &rank); err != nil {
		http.Error(w, "watch: bad rank", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	m, ok := r.members[rank]
	r.mu.Unlock()
	if !ok {
		http.Error(w, fmt.Sprintf("watch: rank %d is not registered", rank), http.StatusNotFound)
		return
	}
	fl, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/plain")
	// A first line at once: the worker's request returns and its silence
	// timer runs from the start, not only after the first heartbeat.
	_, _ = io.WriteString(w, "ok\n")
	if fl != nil {
		fl.Flush()
	}
	r.watched(rank)
	tick := time.NewTicker(r.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.closed:
			_, _ = io.WriteString(w, "bye\n")
			return
		case <-req.Context().Done():
			r.report(Lost{Member: m, Err: errors.New("watch connection closed")})
			return
		case <-tick.C:
			if _, err := io.WriteString(w, "ok\n"); err != nil {
				r.report(Lost{Member: m, Err: err})
				return
			}
			if fl != nil {
				fl.Flush()
			}
		}
	}
}

// watched records that rank holds its watch stream; the rendezvous is
// complete once every rank does, so that a worker dying at any moment
// after Wait returns is reported Lost.
func (r *Rendezvous) watched(rank int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watching[rank] {
		return
	}
	r.watching[rank] = true
	if len(r.watching) == len(r.expected) {
		close(r.complete)
	}
}

// report queues a Lost unless the run is closing.
func (r *Rendezvous) report(l Lost) {
	select {
	case <-r.closed:
	case r.lost <- l:
	default:
	}
}

// Wait blocks until every expected worker registered and opened its
// watch stream, and returns them by rank. On ctx's end it names the ranks still missing.
func (r *Rendezvous) Wait(ctx context.Context) ([]Member, error) {
	select {
	case <-r.complete:
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: waiting for workers: %s: %w", r.missing(), context.Cause(ctx))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rank < out[j].Rank })
	return out, nil
}

func (r *Rendezvous) missing() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var never, quiet []string
	for _, k := range r.cfg.Ranks {
		if _, ok := r.members[k]; !ok {
			never = append(never, fmt.Sprint(k))
		} else if !r.watching[k] {
			quiet = append(quiet, fmt.Sprint(k))
		}
	}
	var parts []string
	if len(never) > 0 {
		parts = append(parts, "ranks "+strings.Join(never, ", ")+" never registered")
	}
	if len(quiet) > 0 {
		parts = append(parts, "ranks "+strings.Join(quiet, ", ")+" registered but never opened their watch stream")
	}
	return strings.Join(parts, "; ")
}

// Lost delivers workers whose watch ended while the run was going on.
func (r *Rendezvous) Lost() <-chan Lost { return r.lost }

// Close ends the run: every watch answers "bye" and its worker exits.
func (r *Rendezvous) Close() { r.once.Do(func() { close(r.closed) }) }
