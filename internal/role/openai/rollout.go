package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorlhf/gorlhf/internal/httpjson"
	"github.com/gorlhf/gorlhf/internal/role"
)

// Rollout is role.Rollout over OpenAI-compatible engines. Safe for
// concurrent use; Close releases its connections.
type Rollout struct {
	cfg  Config
	gen  *httpjson.Client // completions
	ctl  *httpjson.Client // pause, resume, weight updates
	hc   *http.Client
	log  *slog.Logger
	bal  *balancer
	urls []string // without a trailing slash

	// mu orders generation and weight loads: a Generate call holds it
	// shared for its whole duration, LoadWeights exclusively, so no
	// request is in flight while weights change and every answer must
	// carry the version last pushed.
	mu      sync.RWMutex
	version int64
	synced  string // the snapshot the engines last loaded (removed after the next sync)
	inited  bool   // vLLM weight transfer initialised
	last    SyncStats
	retired []bool // engines lost at a weight sync, never asked again
}

var _ role.Rollout = (*Rollout)(nil)

// New returns the rollout over cfg's engines; log may be nil (silent).
// It does not contact them: the first Generate does.
func New(cfg Config, log *slog.Logger) (*Rollout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// No proxy from the environment: engines are reached directly.
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		MaxIdleConnsPerHost: cfg.MaxInflight, IdleConnTimeout: 90 * time.Second}}
	hj := func(timeout time.Duration, attempts int) (*httpjson.Client, error) {
		return httpjson.New(httpjson.Config{Timeout: timeout, Attempts: attempts, Backoff: cfg.Backoff, MaxBackoff: 10 * cfg.Backoff,
			APIKey: cfg.APIKey, MaxResponseBytes: 256 << 20, Client: hc})
	}
	gen, err := hj(cfg.Timeout, cfg.Attempts)
	if err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	ctl, err := hj(cfg.SyncTimeout, cfg.Attempts)
	if err != nil {
		return nil, fmt.Errorf("openai: %w", err)
	}
	urls := make([]string, len(cfg.URLs))
	for i, u := range cfg.URLs {
		urls[i] = strings.TrimRight(u, "/")
	}
	return &Rollout{cfg: cfg, gen: gen, ctl: ctl, hc: hc, log: log, bal: newBalancer(len(urls), cfg.MaxInflight), urls: urls,
		retired: make([]bool, len(urls))}, nil
}

// Close closes idle connections.
func (r *Rollout) Close() error {
	r.hc.CloseIdleConnections()
	return nil
}

// Version is the weight version last pushed (0: the engines' initial
// weights).
func (r *Rollout) Version() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.version
}

// Generate implements role.Rollout: one request per prompt (its n samples
// and seed), spread over the engines by least outstanding requests. A
// prompt whose engine fails transiently (no connection, timeout, 5xx
// after its retries) goes to another engine, and that engine is left out
// for the rest of the call (engines retired by LoadWeights for good); an answer that breaks the protocol fails the
// call. Results do not depend on which engine served which prompt: a
// sample depends only on the prompt, its seed and the weights.
func (r *Rollout) Generate(ctx context.Context, req role.GenerateRequest) (role.GenerateResult, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	out := make([]role.Generation, len(req.Prompts))
	down := newDownSet(r.retired)
	var wg sync.WaitGroup
	for i, p := range req.Prompts {
		wg.Go(func() {
			g, err := r.prompt(ctx, p, down)
			if err != nil {
				cancel(fmt.Errorf("openai: rollout: prompt %d (id %q): %w", i, p.ID, err))
				return
			}
			out[i] = g
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return role.GenerateResult{}, err
	}
	return role.GenerateResult{Results: out}, nil
}

// prompt sends one prompt to engines until one answers.
func (r *Rollout) prompt(ctx context.Context, p role.Prompt, down *downSet) (role.Generation, error) {
	q := r.request(p)
	body, err := json.Marshal(q)
	if err != nil {
		return role.Generation{}, err
	}
	var failures []string
	for {
		e, err := r.bal.acquire(ctx, down)
		if err != nil {
			if len(failures) > 0 {
				return role.Generation{}, fmt.Errorf("every engine failed: %s", strings.Join(failures, "; "))
			}
			return role.Generation{}, err
		}
		var g role.Generation
		err = r.gen.Post(ctx, r.urls[e]+"/v1/completions", body, func(_ string, data []byte) error {
			var err error
			g, err = r.generation(p, &q, data, r.version)
			return err
		})
		r.bal.release(e)
		if err == nil {
			return g, nil
		}
		if ctx.Err() != nil {
			return role.Generation{}, context.Cause(ctx)
		}
		if !httpjson.Transient(err) {
			return role.Generation{}, fmt.Errorf("engine %s: %w", r.urls[e], err)
		}
		failures = append(failures, fmt.Sprintf("%s: %v", r.urls[e], err))
		if down.add(e) {
			r.log.Warn("openai: rollout engine failed; its prompts go to the others", "engine", r.urls[e], "err", err)
		}
	}
}

// downSet is the engines left out of one Generate call.
type downSet struct {
	mu   sync.Mutex
	down []bool
}

func newDownSet(retired []bool) *downSet { return &downSet{down: slices.Clone(retired)} }

// add marks e down and reports whether it was up.
func (d *downSet) add(e int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	was := d.down[e]
	d.down[e] = true
	return !was
}

func (d *downSet) has(e int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.down[e]
}

// balancer hands out engines by least outstanding requests (the lowest
// index on ties), at most max at a time each.
type balancer struct {
	mu      sync.Mutex
	out     []int
	max     int
	changed chan struct{} // closed and replaced on every release
}

func newBalancer(n, max int) *balancer {
	return &balancer{out: make([]int, n), max: max, changed: make(chan struct{})}
}

// errNoEngine ends a prompt when every engine is down.
var errNoEngine = errors.New("no engine left")

// acquire picks an engine not in down, waiting while all are busy.
func (b *balancer) acquire(ctx context.Context, down *downSet) (int, error) {
	for {
		b.mu.Lock()
		best, up := -1, false
		for e, n := range b.out {
			if down.has(e) {
				continue
			}
			up = true
			if n < b.max && (best < 0 || n < b.out[best]) {
				best = e
			}
		}
		if best >= 0 {
			b.out[best]++
			b.mu.Unlock()
			return best, nil
		}
		ch := b.changed
		b.mu.Unlock()
		if !up {
			return 0, errNoEngine
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
	}
}

func (b *balancer) release(e int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.out[e]--
	close(b.changed)
	b.changed = make(chan struct{})
}
