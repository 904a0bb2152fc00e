package reward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// RemoteConfig configures a remote reward source.
type RemoteConfig struct {
	// URLs are the reward servers (OpenRLHF --reward.remote_url, comma
	// separated there). A batch is cut into len(URLs) contiguous shards,
	// one per server, sent concurrently.
	URLs []string
	// Timeout bounds one HTTP attempt, connection to last byte (OpenRLHF:
	// 180 s).
	Timeout time.Duration
	// Attempts is the number of tries per shard, the first included
	// (OpenRLHF: 5).
	Attempts int
	// Backoff is the wait before the first retry; it doubles on each
	// retry up to MaxBackoff, with jitter (a random 50–100 % of the
	// nominal wait) so that many clients do not retry in step.
	Backoff, MaxBackoff time.Duration
	// APIKey, when set, is sent as "Authorization: Bearer APIKey".
	APIKey string
	// MaxResponseBytes bounds the answer body.
	MaxResponseBytes int64
	// Client sends the requests; nil uses a default client. Timeouts come
	// from Timeout, not from the client.
	Client *http.Client
}

// DefaultRemoteConfig has OpenRLHF's timeout and attempt count and no URL.
func DefaultRemoteConfig() RemoteConfig {
	return RemoteConfig{Timeout: 180 * time.Second, Attempts: 5, Backoff: 500 * time.Millisecond,
		MaxBackoff: 10 * time.Second, MaxResponseBytes: 64 << 20}
}

// Validate checks the configuration.
func (c RemoteConfig) Validate() error {
	if len(c.URLs) == 0 {
		return errors.New("reward: remote: no URL")
	}
	for _, u := range c.URLs {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("reward: remote: %q is not an http(s) URL", u)
		}
	}
	switch {
	case c.Timeout <= 0:
		return fmt.Errorf("reward: remote: timeout %v must be positive", c.Timeout)
	case c.Attempts < 1:
		return fmt.Errorf("reward: remote: attempts %d must be ≥ 1", c.Attempts)
	case c.Backoff < 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("reward: remote: backoff %v, max %v: want 0 ≤ backoff ≤ max", c.Backoff, c.MaxBackoff)
	case c.MaxResponseBytes <= 0:
		return fmt.Errorf("reward: remote: max response bytes %d must be positive", c.MaxResponseBytes)
	}
	return nil
}

// Remote scores samples on reward servers speaking OpenRLHF's protocol.
// It is safe for concurrent use.
type Remote struct {
	cfg    RemoteConfig
	client *http.Client
}

// NewRemote returns a remote source.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.Client
	if c == nil {
		c = &http.Client{}
	}
	return &Remote{cfg: cfg, client: c}, nil
}

// Score implements Source. Every shard must succeed: if one server fails
// after its retries, the other shards are cancelled and Score returns the
// first error and no results.
func (r *Remote) Score(ctx context.Context, samples []Sample) ([]Result, error) {
	if len(samples) == 0 {
		return []Result{}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(r.cfg.URLs)
	per := (len(samples) + n - 1) / n
	out := make([]Result, len(samples))
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i, u := range r.cfg.URLs {
		lo, hi := min(i*per, len(samples)), min((i+1)*per, len(samples))
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := r.post(ctx, u, samples[lo:hi])
			if err != nil {
				once.Do(func() { first = err; cancel() })
				return
			}
			copy(out[lo:hi], rs)
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// httpError is a non-2xx answer.
type httpError struct {
	status int
	text   string
	body   []byte
	after  time.Duration // Retry-After, 0 if none
}

func (e *httpError) Error() string {
	return fmt.Sprintf("HTTP %s: body %s", e.text, snippet(e.body, 200))
}

// retryable reports whether another attempt may succeed: network errors,
// timeouts, 5xx, 408 and 429 are transient; other statuses and answers
// that do not follow the protocol are not.
func retryable(err error) bool {
	var he *httpError
	if errors.As(err, &he) {
		return he.status >= 500 || he.status == http.StatusTooManyRequests || he.status == http.StatusRequestTimeout
	}
	var pe *protocolError
	return !errors.As(err, &pe)
}

// protocolError is a 2xx answer that breaks the protocol.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return e.msg }

// post sends one shard with retries.
func (r *Remote) post(ctx context.Context, u string, samples []Sample) ([]Result, error) {
	body, err := json.Marshal(newRequest(samples))
	if err != nil {
		return nil, fmt.Errorf("reward: remote %s: encode request: %w", u, err)
	}
	var last error
	for attempt := 1; attempt <= r.cfg.Attempts; attempt++ {
		rs, err := r.attempt(ctx, u, body, len(samples))
		if err == nil {
			return rs, nil
		}
		last = err
		if ctx.Err() != nil {
			return nil, fmt.Errorf("reward: remote %s: %w", u, ctx.Err())
		}
		if !retryable(err) || attempt == r.cfg.Attempts {
			break
		}
		if err := sleep(ctx, r.wait(attempt, err)); err != nil {
			return nil, fmt.Errorf("reward: remote %s: %w (while waiting to retry after: %v)", u, err, last)
		}
	}
	return nil, fmt.Errorf("reward: remote %s: %d queries: %w", u, len(samples), attemptsError{last, r.cfg.Attempts, retryable(last)})
}

// attemptsError says how many attempts were made.
type attemptsError struct {
	err      error
	attempts int
	retried  bool
}

func (e attemptsError) Error() string {
	if !e.retried {
		return e.err.Error() + " (not retried)"
	}
	return fmt.Sprintf("%v (gave up after %d attempts)", e.err, e.attempts)
}

func (e attemptsError) Unwrap() error { return e.err }

// wait is the back-off before retry number attempt (1 = the first retry):
// Backoff·2^(attempt−1), capped at MaxBackoff, times a random 0.5–1, and
// at least the server's Retry-After (also capped).
func (r *Remote) wait(attempt int, err error) time.Duration {
	d := r.cfg.Backoff << min(attempt-1, 30)
	if d > r.cfg.MaxBackoff || d < 0 {
		d = r.cfg.MaxBackoff
	}
	d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
	var he *httpError
	if errors.As(err, &he) && he.after > d {
		d = min(he.after, r.cfg.MaxBackoff)
	}
	return d
}

// attempt makes one request and checks the answer.
func (r *Remote) attempt(ctx context.Context, u string, body []byte, n int) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, &protocolError{err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	if r.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.APIKey)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("no answer within the timeout of %v", r.cfg.Timeout)
		}
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, r.cfg.MaxResponseBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("HTTP %s, then no full body within the timeout of %v", resp.Status, r.cfg.Timeout)
		}
		return nil, fmt.Errorf("HTTP %s, reading the body: %w", resp.Status, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &httpError{status: resp.StatusCode, text: resp.Status, body: data, after: retryAfter(resp.Header)}
	}
	if int64(len(data)) > r.cfg.MaxResponseBytes {
		return nil, &protocolError{fmt.Sprintf("HTTP %s: answer larger than %d bytes", resp.Status, r.cfg.MaxResponseBytes)}
	}
	var ans Response
	if err := json.Unmarshal(data, &ans); err != nil {
		return nil, &protocolError{fmt.Sprintf("HTTP %s: malformed JSON (%v): body %s", resp.Status, err, snippet(data, 200))}
	}
	rs, err := ans.results(n)
	if err != nil {
		return nil, &protocolError{fmt.Sprintf("HTTP %s: %v: body %s", resp.Status, err, snippet(data, 200))}
	}
	return rs, nil
}

// retryAfter reads a Retry-After header given in seconds.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
